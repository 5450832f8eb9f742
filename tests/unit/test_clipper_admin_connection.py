"""ClipperConnection without a cluster: exceptions, connection guard, retry, package surface."""

from __future__ import annotations

import logging

import psutil
import pytest

import clipper_admin
from clipper_admin import ClipperConnection, ClipperException, LocalContainerManager, UnconnectedException
from clipper_admin.decorators import retry


@pytest.fixture
def conn(tmp_path) -> ClipperConnection:
    return ClipperConnection(LocalContainerManager(cluster_name="unit", clipper_home=str(tmp_path)))


def test_clipper_exception_carries_its_message() -> None:
    exc = ClipperException("something broke", 1)
    assert exc.msg == "something broke"
    assert str(exc) == "something broke"


def test_unconnected_exception_tells_how_to_connect() -> None:
    exc = UnconnectedException()
    assert isinstance(exc, ClipperException)
    assert exc.message == exc.msg == str(exc)
    assert "ClipperConnection.connect" in str(exc) and "ClipperConnection.start_clipper" in str(exc)


# (method, args): every method that needs a running cluster.
NEEDS_CONNECTION = [
    ("register_application", ("a", "doubles", "d", 1000)),
    ("unregister_application", ("a",)),
    ("set_selection_policy", ("a", "exp4")),
    ("delete_application", ("a",)),
    ("link_model_to_app", ("a", "m")),
    ("unlink_model_from_app", ("a", "m")),
    ("build_and_deploy_model", ("m", 1, "doubles", "/tmp", "clipper/noop-container:0.1.0")),
    ("deploy_model", ("m", 1, "doubles", "clipper/noop-container:0.1.0")),
    ("register_model", ("m", 1, "doubles")),
    ("get_current_model_version", ("m",)),
    ("get_num_replicas", ("m",)),
    ("set_num_replicas", ("m", 2)),
    ("get_all_apps", ()),
    ("get_app_info", ("a",)),
    ("get_linked_models", ("a",)),
    ("get_all_models", ()),
    ("get_model_info", ("m", 1)),
    ("get_all_model_replicas", ()),
    ("get_model_replica_info", ("m", 1, 0)),
    ("get_clipper_logs", ()),
    ("inspect_instance", ()),
    ("set_model_version", ("m", 1)),
    ("get_query_addr", ()),
    ("get_metric_addr", ()),
    ("stop_models", (["m"],)),
    ("stop_versioned_models", ({"m": ["1"]},)),
    ("stop_inactive_model_versions", (["m"],)),
    # stop_all_model_containers needs no connection (issue 10): tests/integration/test_local_stopping.py
]


@pytest.mark.parametrize(("method", "args"), NEEDS_CONNECTION, ids=[m for m, _ in NEEDS_CONNECTION])
def test_methods_raise_unconnected_before_connect(conn: ClipperConnection, method: str, args) -> None:
    with pytest.raises(UnconnectedException):
        getattr(conn, method)(*args)


def test_selection_policy_keys_are_sent_only_when_a_policy_is_named(conn: ClipperConnection) -> None:
    sent: list[tuple[str, dict[str, object]]] = []
    conn._post_admin = lambda endpoint, body: sent.append((endpoint, dict(body)))  # type: ignore[method-assign,assignment,return-value]
    conn.connected = True
    conn.register_application("a", "doubles", "d", 1000)
    conn.register_application("e", "doubles", "d", 1000, selection_policy="exp4", confidence_threshold=0.8)
    conn.set_selection_policy("e", "ab", policy_weights={"m1": 0.9, "m2": 0.1})
    app = {"input_type": "doubles", "default_output": "d", "latency_slo_micros": 1000}
    assert sent == [
        ("add_app", {"name": "a", **app}),
        ("add_app", {"name": "e", **app, "selection_policy": "exp4", "confidence_threshold": 0.8}),
        ("set_selection_policy", {"app_name": "e", "selection_policy": "ab",
                                  "policy_weights": {"m1": 0.9, "m2": 0.1}}),
    ]
    with pytest.raises(ClipperException, match="need a selection_policy"):
        conn.register_application("x", "doubles", "d", 1000, confidence_threshold=0.5)


def test_connect_to_a_missing_cluster_says_so(conn: ClipperConnection) -> None:
    with pytest.raises(ClipperException, match="No local Clipper cluster named unit found"):
        conn.connect()
    assert conn.connected is False


def test_stop_all_needs_no_connection_and_is_idempotent(conn: ClipperConnection, tmp_path) -> None:
    before = {child.pid for child in psutil.Process().children(recursive=True)}
    conn.stop_all()
    conn.stop_all(graceful=False)
    # Nothing was started and nothing is left: no new process, no cluster recorded.
    assert {child.pid for child in psutil.Process().children(recursive=True)} <= before
    assert not (tmp_path / "clusters" / "unit" / "cluster.json").exists()


def test_retry_retries_then_lets_the_last_error_through(caplog: pytest.LogCaptureFixture) -> None:
    attempts = []

    @retry(ValueError, tries=3, delay=0, backoff=2, logger=logging.getLogger("t"))
    def flaky() -> str:
        attempts.append(1)
        raise ValueError(f"boom {len(attempts)}")

    with caplog.at_level(logging.WARNING), pytest.raises(ValueError, match="boom 3"):
        flaky()
    assert len(attempts) == 3
    assert [r.getMessage() for r in caplog.records] == [
        "boom 1, Retrying in 0 seconds...",
        "boom 2, Retrying in 0 seconds...",
    ]


def test_retry_returns_the_first_success_and_ignores_other_errors() -> None:
    attempts = []

    @retry(KeyError, tries=5, delay=0)
    def succeeds_second() -> int:
        attempts.append(1)
        if len(attempts) == 1:
            raise KeyError("x")
        return 42

    assert succeeds_second() == 42

    @retry(KeyError, tries=5, delay=0)
    def wrong_error() -> None:
        attempts.append(1)
        raise TypeError("not retried")

    attempts.clear()
    with pytest.raises(TypeError):
        wrong_error()
    assert attempts == [1]


def test_package_surface_matches_the_original() -> None:
    for name in [
        "ClipperConnection", "ClipperException", "UnconnectedException", "deployers",
        "CLIPPER_TEMP_DIR", "DEFAULT_PREDICTION_CACHE_SIZE_BYTES", "DEFAULT_LABEL",
        "CONTAINERLESS_MODEL_IMAGE", "__version__", "__registry__", "LocalContainerManager",
    ]:
        assert hasattr(clipper_admin, name), name
    assert clipper_admin.DEFAULT_PREDICTION_CACHE_SIZE_BYTES == 33554432
    assert clipper_admin.DEFAULT_LABEL == []
    assert clipper_admin.CONTAINERLESS_MODEL_IMAGE == "NO_CONTAINER"
    assert clipper_admin.__version__ == "0.1.0"
    assert callable(clipper_admin.deployers.python.deploy_python_closure)
    assert "DockerContainerManager" in dir(clipper_admin)
    # Imported on first use from clipper_admin/docker/docker_container_manager.py.
    from clipper_admin import DockerContainerManager

    assert DockerContainerManager.__module__ == "clipper_admin.docker.docker_container_manager"
    assert issubclass(DockerContainerManager, clipper_admin.ContainerManager)
    with pytest.raises(AttributeError):
        _ = clipper_admin.NoSuchThing


def test_start_clipper_defaults_name_versioned_images() -> None:
    defaults = ClipperConnection.start_clipper.__defaults__
    assert defaults is not None
    version, registry = clipper_admin.__version__, clipper_admin.__registry__
    assert defaults[:3] == (
        f"{registry}/query_frontend:{version}",
        f"{registry}/management_frontend:{version}",
        f"{registry}/frontend-exporter:{version}",
    )
    assert defaults[3:] == (33554432, 1, 5, 300, 1)
