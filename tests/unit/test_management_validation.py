# ruff: noqa: E501  (expected-message tables read best unwrapped)
"""Per-endpoint request validation: field order, schema strings, pre-Redis checks (no HTTP)."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from clipper_core.errors import Rejected
from clipper_core.management_frontend import validation as v
from clipper_core.state import InputType

# The schema strings of core spec Appendix A, transcribed independently of the module.
ADD_APP_SCHEMA = (
    '\n  {\n   "name" := string,\n   "input_type" := "integers" | "bytes" | "floats" | "doubles" | '
    '"strings",\n   "default_output" := string,\n   "latency_slo_micros" := int\n  }\n'
)
ADD_MODEL_LINKS_SCHEMA = '\n  {\n    "app_name" := string,\n    "model_names" := [string]\n  }\n'
DELETE_MODEL_LINKS_SCHEMA = '\n  {\n  "app_name" := string,\n  "model_names" := [string]\n  }\n'
GET_LINKED_MODELS_SCHEMA = '\n  {\n    "app_name" := string\n  }\n'
VERBOSE_SCHEMA = '\n  {\n    "verbose" := bool\n  }\n'
GET_APPLICATION_SCHEMA = '\n  {\n    "name" := string\n  }\n'
GET_MODEL_SCHEMA = '\n  {\n    "model_name" := string,\n    "model_version" := string\n  }\n'
GET_CONTAINER_SCHEMA = (
    '\n  {\n    "model_name" := string,\n    "model_version" := string,\n    "replica_id" := int\n  }\n'
)
ADD_MODEL_SCHEMA = (
    '\n  {\n   "model_name" := string,\n   "model_version" := string,\n   "labels" := [string],\n'
    '   "input_type" := "integers" | "bytes" | "floats" | "doubles" | "strings",\n'
    '   "container_name" := string,\n   "model_data_path" := string\n  }\n'
)
VERSIONED_MODEL_SCHEMA = '\n  {\n   "model_name" := string,\n   "model_version" := string,\n  }\n'
GET_STATE_SCHEMA = '\n  {\n   "app_name" := string,\n   "uid" := int,\n  }\n'

Parser = Callable[[bytes], object]

PARSERS_AND_SCHEMAS: list[tuple[Parser, str]] = [
    (v.parse_add_app, ADD_APP_SCHEMA),
    (v.parse_delete_app, ADD_APP_SCHEMA),  # the original's quirk
    (v.parse_add_model_links, ADD_MODEL_LINKS_SCHEMA),
    (v.parse_delete_model_links, DELETE_MODEL_LINKS_SCHEMA),
    (v.parse_linked_models_request, GET_LINKED_MODELS_SCHEMA),
    (v.parse_verbose, VERBOSE_SCHEMA),
    (v.parse_get_application, GET_APPLICATION_SCHEMA),
    (v.parse_get_model, GET_MODEL_SCHEMA),
    (v.parse_container_ref, GET_CONTAINER_SCHEMA),
    (v.parse_add_model, ADD_MODEL_SCHEMA),
    (v.parse_set_model_version, VERSIONED_MODEL_SCHEMA),
    (v.parse_delete_versioned_model, VERSIONED_MODEL_SCHEMA),
    (v.parse_get_state, GET_STATE_SCHEMA),
]


def test_schema_constants_match_the_appendix() -> None:
    assert v.Schema.ADD_APP == ADD_APP_SCHEMA
    assert v.Schema.ADD_MODEL == ADD_MODEL_SCHEMA
    assert v.Schema.VERSIONED_MODEL == VERSIONED_MODEL_SCHEMA
    assert v.Schema.GET_STATE == GET_STATE_SCHEMA


def _rejected(parser: Parser, body: bytes | str | dict[str, object]) -> str:
    raw = body if isinstance(body, bytes) else (body if isinstance(body, str) else json.dumps(body)).encode()
    with pytest.raises(Rejected) as info:
        parser(raw)
    return info.value.message


@pytest.mark.parametrize(("parser", "schema"), PARSERS_AND_SCHEMAS)
def test_json_syntax_errors_cite_the_endpoint_schema(parser: Parser, schema: str) -> None:
    assert _rejected(parser, b"{") == (
        "Error parsing JSON: JSON parse error: Missing a name for object member. (offset 1)\n"
        f". Expected JSON schema: {schema}"
    )


@pytest.mark.parametrize(("parser", "schema"), PARSERS_AND_SCHEMAS)
def test_first_missing_key_cites_the_endpoint_schema(parser: Parser, schema: str) -> None:
    message = _rejected(parser, {})
    assert message.startswith("Error parsing JSON: JSON object does not have required key: ")
    assert message.endswith(f". Expected JSON schema: {schema}")


GOOD_ADD_APP = {"name": "a", "input_type": "doubles", "default_output": "-1", "latency_slo_micros": 100}
GOOD_ADD_MODEL = {
    "model_name": "m", "model_version": "1", "labels": ["x"], "input_type": "ints",
    "container_name": "img", "model_data_path": "DEPRECATED", "batch_size": -1,
}


def _without(base: dict[str, object], *keys: str, **changes: object) -> dict[str, object]:
    body = {k: val for k, val in base.items() if k not in keys}
    body.update(changes)
    return body


@pytest.mark.parametrize(
    ("body", "inner"),
    [
        (_without(GOOD_ADD_APP, "name"), "JSON object does not have required key: name"),
        (_without(GOOD_ADD_APP, "name", "input_type"), "JSON object does not have required key: name"),
        (_without(GOOD_ADD_APP, "input_type"), "JSON object does not have required key: input_type"),
        (_without(GOOD_ADD_APP, name=1), "Type mismatch! JSON key name expected type Stringbut found type Number"),
        (_without(GOOD_ADD_APP, "default_output"), "JSON object does not have required key: default_output"),
        (_without(GOOD_ADD_APP, latency_slo_micros="5"),
         "Type mismatch! JSON key latency_slo_micros expected type Numberbut found type String"),
        (_without(GOOD_ADD_APP, latency_slo_micros=1.5), "PredictionData of type Number is not of type int"),
    ],
)
def test_add_app_json_errors_in_field_order(body: dict[str, object], inner: str) -> None:
    assert _rejected(v.parse_add_app, body) == (
        f"Error parsing JSON: {inner}. Expected JSON schema: {ADD_APP_SCHEMA}"
    )


def test_add_app_invalid_input_type_lists_accepted_names_and_wins_over_later_fields() -> None:
    message = _rejected(v.parse_add_app, _without(GOOD_ADD_APP, "default_output", input_type="Doubles"))
    assert message.startswith("Doubles is not a valid input string. Accepted input types: ")
    for name in ("bytes", "integers", "floats", "doubles", "strings", "ints", "str", "b"):
        assert name in message


@pytest.mark.parametrize(
    ("alias", "expected"),
    [("i", InputType.INTS), ("strs", InputType.STRINGS), ("byte", InputType.BYTES), ("f", InputType.FLOATS)],
)
def test_add_app_accepts_aliases(alias: str, expected: InputType) -> None:
    request = v.parse_add_app(json.dumps(_without(GOOD_ADD_APP, input_type=alias)).encode())
    assert request == v.AddApp("a", expected, "-1", 100)


def test_add_model_parses_everything() -> None:
    request = v.parse_add_model(json.dumps(GOOD_ADD_MODEL).encode())
    assert request == v.AddModel("m", "1", ("x",), InputType.INTS, "img", "DEPRECATED", -1)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"batch_size": 0}, "The batch size must be positive or DEFAULT_BATCH_SIZE, which is -1"),
        ({"batch_size": -2}, "The batch size must be positive or DEFAULT_BATCH_SIZE, which is -1"),
        # The batch size check comes before the name checks.
        ({"batch_size": 0, "model_name": "a:b"}, "The batch size must be positive or DEFAULT_BATCH_SIZE, which is -1"),
        ({"model_name": "a:b"}, "Invalid model name supplied: a:b. Contains one of: ',', ':'"),
        ({"model_name": "a,b", "model_version": "1:2"}, "Invalid model name supplied: a,b. Contains one of: ',', ':'"),
        ({"model_version": "1,2"}, "Invalid model version supplied: 1,2. Contains one of: ',', ':'"),
        ({"labels": ["ok", "x:y"]}, "Invalid label supplied: x:y. Contains one of: ',', ':'"),
    ],
)
def test_add_model_checks_after_reading(changes: dict[str, object], message: str) -> None:
    assert _rejected(v.parse_add_model, _without(GOOD_ADD_MODEL, **changes)) == message


@pytest.mark.parametrize(
    ("keys", "changes", "inner"),
    [
        (("labels",), {}, "JSON object does not have required key: labels"),
        ((), {"labels": [1]}, "Array input of type Number is not of type string"),
        ((), {"labels": "x"}, "Type mismatch! JSON key labels expected type Arraybut found type String"),
        (("batch_size",), {}, "JSON object does not have required key: batch_size"),
        (("container_name",), {"model_data_path": 3}, "JSON object does not have required key: container_name"),
    ],
)
def test_add_model_json_errors(keys: tuple[str, ...], changes: dict[str, object], inner: str) -> None:
    assert _rejected(v.parse_add_model, _without(GOOD_ADD_MODEL, *keys, **changes)) == (
        f"Error parsing JSON: {inner}. Expected JSON schema: {ADD_MODEL_SCHEMA}"
    )


def test_add_model_invalid_input_type_comes_after_labels() -> None:
    assert _rejected(v.parse_add_model, _without(GOOD_ADD_MODEL, input_type="tensor")).startswith(
        "tensor is not a valid input string."
    )
    assert "labels" in _rejected(v.parse_add_model, _without(GOOD_ADD_MODEL, "labels", input_type="tensor"))


def test_other_endpoints_parse() -> None:
    assert v.parse_delete_app(b'{"name":"a"}') == v.AppName("a")
    assert v.parse_add_model_links(b'{"app_name":"a","model_names":["m"]}') == v.ModelLinks("a", ("m",))
    assert v.parse_delete_model_links(b'{"app_name":"a","model_names":[]}') == v.ModelLinks("a", ())
    assert v.parse_linked_models_request(b'{"app_name":"a"}') == v.AppName("a")
    assert v.parse_verbose(b'{"verbose":false}') == v.Verbose(False)
    assert v.parse_get_model(b'{"model_name":"m","model_version":"1"}') == v.ModelRef("m", "1")
    assert v.parse_container_ref(b'{"model_name":"m","model_version":"1","replica_id":2}') == (
        v.ContainerRef("m", "1", 2)
    )
    assert v.parse_get_state(b'{"app_name":"a","uid":3}') == v.SelectionStateRequest("a", 3)
    assert v.parse_set_batch_size(b'{"model_name":"m","model_version":"1","batch_size":8}') == (
        v.SetBatchSize("m", "1", 8)
    )


def test_set_batch_size_refuses_zero() -> None:
    assert _rejected(v.parse_set_batch_size, {"model_name": "m", "model_version": "1", "batch_size": 0}) == (
        "The batch size must be positive or DEFAULT_BATCH_SIZE, which is -1"
    )


def test_get_container_replica_must_be_int() -> None:
    assert _rejected(v.parse_container_ref, {"model_name": "m", "model_version": "1", "replica_id": "0"}) == (
        "Error parsing JSON: Type mismatch! JSON key replica_id expected type Numberbut found type String."
        f" Expected JSON schema: {GET_CONTAINER_SCHEMA}"
    )


def test_non_object_document() -> None:
    assert _rejected(v.parse_verbose, b"[]") == (
        f"Error parsing JSON: Can only get key-value pair from an object. Expected JSON schema: {VERBOSE_SCHEMA}"
    )


BAD_MODEL_NAMES = ["../../../../escaped", "My_Model", "m/1", "..", ".", "m..n", "-m", "a" * 254, ""]


@pytest.mark.parametrize("name", BAD_MODEL_NAMES)
def test_add_model_refuses_names_that_are_not_dns1123(name: str) -> None:
    message = _rejected(v.parse_add_model, _without(GOOD_ADD_MODEL, model_name=name))
    assert message.startswith(f"Invalid model name supplied: {name!r}. A model name must be a valid DNS-1123")


def test_add_model_refuses_a_version_that_is_not_dns1123_after_a_good_name() -> None:
    message = _rejected(v.parse_add_model, _without(GOOD_ADD_MODEL, model_version="../1"))
    assert message.startswith("Invalid model version supplied: '../1'.")


def test_original_texts_win_for_what_the_original_refused() -> None:
    # ',' and ':' keep the original's message although they also fail the DNS-1123 rule.
    assert _rejected(v.parse_add_model, _without(GOOD_ADD_MODEL, model_name="A:b")) == (
        "Invalid model name supplied: A:b. Contains one of: ',', ':'"
    )


@pytest.mark.parametrize("name", BAD_MODEL_NAMES)
def test_set_model_version_refuses_names_that_are_not_dns1123(name: str) -> None:
    message = _rejected(v.parse_set_model_version, {"model_name": name, "model_version": "1"})
    assert message.startswith(f"Invalid model name supplied: {name!r}.")
    message = _rejected(v.parse_set_model_version, {"model_name": "m", "model_version": name})
    assert message.startswith(f"Invalid model version supplied: {name!r}.")


def test_lookups_and_deletes_accept_any_name() -> None:
    # An old record written before the rule can still be read and removed.
    assert v.parse_get_model(b'{"model_name":"Old_M","model_version":"1"}') == v.ModelRef("Old_M", "1")
    assert v.parse_delete_versioned_model(b'{"model_name":"Old_M","model_version":"1"}') == (
        v.ModelRef("Old_M", "1")
    )
