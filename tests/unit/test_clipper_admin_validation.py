"""Name validation and the local dry run of predict functions (test_predict_function)."""

from __future__ import annotations

import base64
import threading

import pytest

from clipper_admin import ClipperConnection, ClipperException, LocalContainerManager, _validation
from clipper_admin._validation import canonical_input_type, validate_versioned_model_name
from clipper_core.rpc import InputType


@pytest.fixture
def conn(tmp_path) -> ClipperConnection:
    # Never started or connected: test_predict_function must not need a cluster.
    return ClipperConnection(LocalContainerManager(cluster_name="unit", clipper_home=str(tmp_path)))


@pytest.mark.parametrize(
    ("name", "version"),
    [("m", "1"), ("my-model", "v1"), ("a1", "ii"), ("model.v2", "1.0.3"), ("x" * 63, "0")],
)
def test_valid_names_and_versions_pass(name: str, version: str) -> None:
    validate_versioned_model_name(name, version)


@pytest.mark.parametrize(
    "name", ["", "My-Model", "-m", "m-", "m_1", "m:1", "m,1", "m/1", "m..n", ".m", "m.", "a" * 254]
)
def test_invalid_model_names_are_refused_naming_the_field(name: str) -> None:
    with pytest.raises(ClipperException) as info:
        validate_versioned_model_name(name, "1")
    assert "model name must be a valid DNS-1123 subdomain" in str(info.value)
    assert repr(name) in str(info.value)


def test_invalid_version_is_refused_after_a_valid_name() -> None:
    with pytest.raises(ClipperException, match="model version must be a valid DNS-1123"):
        validate_versioned_model_name("good", "V_1")


def test_name_is_checked_before_version() -> None:
    with pytest.raises(ClipperException, match="model name"):
        validate_versioned_model_name("Bad", "Bad")


def test_build_model_validates_before_touching_the_manager(conn: ClipperConnection, tmp_path) -> None:
    with pytest.raises(ClipperException, match="model name must be"):
        conn.build_model("Bad_Name", 1, str(tmp_path), "clipper/noop-container:0.1.0")
    with pytest.raises(ClipperException, match="model version must be"):
        conn.build_model("good", "1_0", str(tmp_path), "clipper/noop-container:0.1.0")
    # Nothing was stored for the refused builds.
    assert not (tmp_path / "clusters" / "unit" / "images.json").exists()


@pytest.mark.parametrize(
    ("alias", "canonical"),
    [("ints", "integers"), ("I", "integers"), ("d", "doubles"), ("Float", "floats"),
     ("str", "strings"), ("b", "bytes"), (" strings ", "strings")],
)
def test_input_type_aliases(alias: str, canonical: str) -> None:
    assert canonical_input_type(alias) == canonical


def test_unknown_input_type_is_refused() -> None:
    with pytest.raises(ClipperException, match="Invalid input type 'tensors'"):
        canonical_input_type("tensors")


def feature_sum(xs):
    return [str(sum(x)) for x in xs]


def test_predict_single_input_returns_the_outputs(conn: ClipperConnection) -> None:
    assert conn.test_predict_function({"input": [1.5, 2.5, 3.0]}, feature_sum, "doubles") == ["7.0"]


def test_predict_batch_of_equal_length_inputs_arrives_as_one_2d_array(conn: ClipperConnection) -> None:
    def describe(xs):
        # The function runs on a reloaded copy: report what it saw through its outputs.
        return [f"{type(xs).__name__}{xs.shape}{xs.dtype}" for _ in xs]

    outputs = conn.test_predict_function({"input_batch": [[1, 2], [3, 4], [5, 6]]}, describe, "ints")
    assert outputs == ["ndarray(3, 2)int32"] * 3


def test_predict_batch_of_ragged_inputs_arrives_as_list_of_arrays(conn: ClipperConnection) -> None:
    outputs = conn.test_predict_function(
        {"input_batch": [[1.0], [1.0, 2.0]]}, lambda xs: [x.dtype.name for x in xs], "floats"
    )
    assert outputs == ["float32", "float32"]


def test_predict_strings_and_bytes(conn: ClipperConnection) -> None:
    assert conn.test_predict_function({"input": "hello"}, lambda xs: [x.upper() for x in xs], "strings") == [
        "HELLO"
    ]
    encoded = base64.b64encode(b"\x00\x01\x02").decode()
    assert conn.test_predict_function(
        {"input_batch": [encoded, b"abcd"]}, lambda xs: [str(len(x)) for x in xs], "bytes"
    ) == ["3", "4"]


def test_predict_input_wins_over_input_batch(conn: ClipperConnection) -> None:
    outputs = conn.test_predict_function(
        {"input": [1.0], "input_batch": [[1.0], [2.0]]}, feature_sum, "doubles"
    )
    assert outputs == ["1.0"]


@pytest.mark.parametrize(
    ("query", "input_type", "message"),
    [
        ({"input": [1, 2, 3]}, "doubles", "holds 1 \\(int\\)"),
        ({"input": [1.0, True]}, "integers", "holds 1.0 \\(float\\)"),
        ({"input": [True]}, "integers", "holds True \\(bool\\)"),
        ({"input": "1.0"}, "doubles", "must be a list of numbers"),
        ({"input": 5}, "strings", "must be a str"),
        ({"input": "not base64!"}, "bytes", "not valid base64"),
        ({"inputs": [1.0]}, "doubles", "needs the key 'input' or 'input_batch'"),
        ({"input_batch": [1.0]}, "doubles", "must be a list of numbers"),
        ({"input_batch": "x"}, "doubles", "'input_batch' must be a list"),
        ([1.0], "doubles", "must be a dict"),
    ],
)
def test_predict_refuses_bad_queries_saying_what_is_wrong(
    conn: ClipperConnection, query, input_type: str, message: str
) -> None:
    with pytest.raises(ClipperException, match=message):
        conn.test_predict_function(query, feature_sum, input_type)


@pytest.mark.parametrize(
    ("func", "message"),
    [
        (lambda xs: [float(sum(x)) for x in xs], "Output 0 of the predict function is a float"),
        (lambda xs: "7.0", "it returned a str"),
        (lambda xs: (str(sum(x)) for x in xs), "it returned a generator"),
        (lambda xs: ["1", "2"], "returned 2 outputs for 1 inputs"),
        (lambda xs: [], "returned 0 outputs for 1 inputs"),
        (lambda xs: 1 / 0, "raised ZeroDivisionError: division by zero"),
    ],
)
def test_predict_refuses_bad_outputs_saying_what_is_wrong(conn: ClipperConnection, func, message) -> None:
    with pytest.raises(ClipperException, match=message):
        conn.test_predict_function({"input": [1.0, 2.0]}, func, "doubles")


def test_predict_refuses_an_unpicklable_closure(conn: ClipperConnection) -> None:
    lock = threading.Lock()

    def predict(xs):
        with lock:
            return [str(len(x)) for x in xs]

    with pytest.raises(ClipperException, match="Function does not properly serialize and reload"):
        conn.test_predict_function({"input": [1.0]}, predict, "doubles")


def test_predict_runs_the_reloaded_copy_not_the_original(conn: ClipperConnection) -> None:
    calls = []

    def predict(xs):
        calls.append(1)  # mutates the pickled copy of ``calls``, not ours
        return [str(len(calls))]

    assert conn.test_predict_function({"input": [1.0]}, predict, "doubles") == ["1"]
    assert calls == []


def test_a_list_of_query_dicts_is_one_batch_in_order(conn: ClipperConnection) -> None:
    def lengths(xs):
        return [str(len(x)) for x in xs]

    queries = [{"input": [1.0]}, {"input_batch": [[1.0, 2.0], [1.0, 2.0, 3.0]]}, {"input": [0.5] * 4}]
    assert conn.test_predict_function(queries, lengths, "doubles") == ["1", "2", "3", "4"]


@pytest.mark.parametrize(
    ("queries", "message"), [([], "empty"), ([{"input": [1.0]}, 7], "or a list of such")]
)
def test_a_bad_list_of_queries_is_a_clear_error(conn: ClipperConnection, queries: list, message: str) -> None:
    with pytest.raises(ClipperException, match=message):
        conn.test_predict_function(queries, lambda xs: [str(x) for x in xs], "doubles")


def test_admin_input_type_aliases_agree_with_the_core() -> None:
    # clipper_admin must not import the core, so it keeps its own copy of the alias table;
    # this is what keeps the two copies one table.
    core_names = set(InputType.accepted_names())
    assert set(_validation._CANONICAL_INPUT_TYPE) == core_names
    for name in core_names:
        assert canonical_input_type(name) == InputType.parse(name).readable_name, name
