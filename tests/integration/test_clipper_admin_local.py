"""clipper_admin against a real local cluster (LocalContainerManager): the behaviours of the
original's clipper_admin_tests.py (short and long suites), plus the local manager's own promises.

One cluster for the module (random free ports, a temporary CLIPPER_HOME); names are unique per
test. The test that stops every model container runs last but one; the last stops the cluster.
"""

from __future__ import annotations

import json
import logging
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import pytest
import requests

from clipper_admin import (
    ClipperConnection,
    ClipperException,
    LocalContainerManager,
    __registry__,
    __version__,
)
from clipper_admin.deployers import python as python_deployer
from clipper_admin.local.cluster_record import ClusterRecord
from tests.helpers import canned_http_server, free_port, tiny_wheel

NOOP_IMAGE = f"{__registry__}/noop-container:{__version__}"
ANSWER_TIMEOUT_S = 60.0


@dataclass
class Cluster:
    conn: ClipperConnection
    manager: LocalContainerManager
    home: Path
    occupied_port: int
    start_log: list[str]


class _ListHandler(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    home = tmp_path_factory.mktemp("clipper_home")
    blocker = socket.socket()
    blocker.bind(("127.0.0.1", 0))
    blocker.listen()
    occupied = blocker.getsockname()[1]
    manager = LocalContainerManager(
        cluster_name=f"admin-test-{uuid.uuid4().hex[:8]}",
        query_port=occupied,  # taken: must be replaced by a free port
        management_port=free_port(),
        rpc_port=free_port(),
        redis_port=free_port(),
        clipper_home=str(home),
    )
    conn = ClipperConnection(manager)
    handler = _ListHandler()
    admin_logger = logging.getLogger("clipper_admin")
    old_level = admin_logger.level
    admin_logger.addHandler(handler)
    admin_logger.setLevel(logging.INFO)
    try:
        conn.start_clipper()
    finally:
        admin_logger.removeHandler(handler)
        admin_logger.setLevel(old_level)
    try:
        yield Cluster(conn, manager, home, occupied, handler.messages)
    finally:
        conn.stop_all()
        blocker.close()


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


def predict(conn: ClipperConnection, app: str, body: dict[str, Any]) -> requests.Response:
    return requests.post(f"http://{conn.get_query_addr()}/{app}/predict", json=body, timeout=90)


def predict_until_model_answers(conn: ClipperConnection, app: str, body: dict[str, Any]) -> dict[str, Any]:
    """A new replica registers with the query frontend shortly after it is ready: poll."""
    deadline = time.monotonic() + ANSWER_TIMEOUT_S
    while True:
        reply = predict(conn, app, body).json()
        if not reply.get("default", False) or time.monotonic() > deadline:
            return reply
        time.sleep(0.2)


def eventually(read: Callable[[], Any], expected: Any, timeout_s: float = 10.0) -> None:
    """Deleting a model version only marks it; the query frontend removes it on the keyspace
    event a moment later. Poll until ``read()`` equals ``expected``."""
    deadline = time.monotonic() + timeout_s
    while (value := read()) != expected and time.monotonic() < deadline:
        time.sleep(0.1)
    assert value == expected


def live_replicas(cluster: Cluster) -> list[tuple[str, str]]:
    record = ClusterRecord.load(cluster.manager.paths)
    assert record is not None
    return [(r.name, r.version) for r in record.replicas if r.process.is_alive()]


# -- short suite ---------------------------------------------------------------------------------


def test_taken_default_port_is_replaced_and_reported(cluster: Cluster) -> None:
    port = int(cluster.conn.get_query_addr().rsplit(":", 1)[1])
    assert port != cluster.occupied_port
    prefix = f"[{cluster.manager.cluster_name}] "
    assert (
        f"{prefix}Port {cluster.occupied_port} for the query frontend is in use; using port {port} instead"
        in cluster.start_log
    )
    assert f"{prefix}Clipper is running" in cluster.start_log


def test_register_model_and_containerless_resize_fails(cluster: Cluster) -> None:
    conn, model = cluster.conn, unique("m")
    conn.register_model(model, "v1", "doubles")
    conn.register_model(model, "v2", "doubles")
    assert conn.get_model_info(model, "v1") is not None
    assert conn.get_model_info(model, "v2")["container_name"] == "NO_CONTAINER"
    with pytest.raises(ClipperException, match="containerless model"):
        conn.set_num_replicas(model, 5, "v1")
    with pytest.raises(ClipperException, match="already exists"):
        conn.register_model(model, "v1", "doubles")  # the server's text reaches the caller


def test_names_that_escape_are_refused_by_the_api_and_the_manager(cluster: Cluster) -> None:
    conn, escaping = cluster.conn, "../../../../escaped"
    before = sorted(cluster.home.parent.rglob("*escaped*"))
    with pytest.raises(ClipperException, match="must be a valid DNS-1123 subdomain"):
        conn.register_model(escaping, "1", "doubles", image=NOOP_IMAGE)
    # The management API refuses it on its own, for any client.
    reply = requests.post(
        f"http://{cluster.manager.get_admin_addr()}/admin/add_model",
        json={"model_name": escaping, "model_version": "1", "labels": [], "input_type": "doubles",
              "container_name": NOOP_IMAGE, "model_data_path": "DEPRECATED", "batch_size": -1},
        timeout=10,
    )
    assert reply.status_code == 400
    assert reply.text.startswith(f"Invalid model name supplied: {escaping!r}. A model name must be")
    assert conn.get_model_info("escaped", "1") is None
    with pytest.raises(ClipperException, match="must be a valid DNS-1123 subdomain"):
        conn.set_num_replicas(escaping, 1, "1")
    with pytest.raises(ClipperException, match="must be a valid DNS-1123 subdomain"):
        cluster.manager.set_num_replicas(escaping, "1", "doubles", NOOP_IMAGE, 1)
    assert sorted(cluster.home.parent.rglob("*escaped*")) == before == []
    assert all("escaped" not in r.replica_name for r in ClusterRecord.load(cluster.manager.paths).replicas)


def test_applications_and_links(cluster: Cluster) -> None:
    conn, app, model = cluster.conn, unique("app"), unique("m")
    conn.register_application(app, "doubles", "DEFAULT", 100000)
    assert app in conn.get_all_apps()
    info = conn.get_app_info(app)
    assert isinstance(info, dict) and info["latency_slo_micros"] == 100000
    assert conn.get_app_info("fake-app") is None
    with pytest.raises(ClipperException, match="No model with name"):
        conn.link_model_to_app(app, "test-model")
    assert conn.get_linked_models(app) == []
    conn.register_model(model, "1", "doubles")
    conn.link_model_to_app(app, model)
    assert conn.get_linked_models(app) == [model]
    conn.unlink_model_from_app(app, model)
    assert conn.get_linked_models(app) == []
    conn.unregister_application(app)
    assert app not in conn.get_all_apps()
    conn.register_application(app, "doubles", "DEFAULT", 100000)
    conn.delete_application(app)  # the deprecated alias
    assert app not in conn.get_all_apps()
    with pytest.raises(ClipperException, match="does not exist"):
        conn.unregister_application(app)


def test_model_version_sets_correctly(cluster: Cluster) -> None:
    conn, model = cluster.conn, unique("m")
    conn.register_model(model, "v1", "doubles")
    conn.register_model(model, "v2", "doubles")
    assert conn.get_current_model_version(model) == "v2"
    conn.set_model_version(model, "v1")
    entries = [m for m in conn.get_all_models(verbose=True) if m["model_name"] == model]
    assert {m["model_version"]: m["is_current_version"] for m in entries} == {"v1": True, "v2": False}


def test_set_num_replicas_up_and_down(cluster: Cluster, tmp_path: Path) -> None:
    conn, model = cluster.conn, unique("set-num-reps")
    with pytest.raises(ClipperException, match="contains the cluster directory"):
        conn.build_and_deploy_model(model, 1, "doubles", str(cluster.home), NOOP_IMAGE)
    conn.build_and_deploy_model(model, 1, "doubles", str(tmp_path), NOOP_IMAGE)  # fake model data
    assert isinstance(conn.get_model_info(model, 1), dict)
    assert conn.get_num_replicas(model) == 1
    conn.set_num_replicas(model, 4)
    assert conn.get_num_replicas(model) == 4
    conn.set_num_replicas(model, 2, 1)
    assert conn.get_num_replicas(model, "1") == 2
    assert live_replicas(cluster).count((model, "1")) == 2


def test_remove_inactive_versions(cluster: Cluster) -> None:
    conn, model = cluster.conn, unique("inactive")
    conn.deploy_model(model, 1, "doubles", NOOP_IMAGE, num_replicas=2)
    assert conn.get_num_replicas(model, 1) == 2
    conn.deploy_model(model, 2, "doubles", NOOP_IMAGE, num_replicas=3)
    assert [r for r in live_replicas(cluster) if r[0] == model].count((model, "2")) == 3
    conn.stop_inactive_model_versions([model])
    assert sorted(r for r in live_replicas(cluster) if r[0] == model) == [(model, "2")] * 3
    eventually(lambda: [m for m in conn.get_all_models() if m.startswith(f"{model}:")], [f"{model}:2"])


def test_get_logs_creates_log_files(cluster: Cluster, tmp_path: Path) -> None:
    logs = cluster.conn.get_clipper_logs(logging_dir=str(tmp_path / "logs"))
    assert len(logs) >= 3
    record = ClusterRecord.load(cluster.manager.paths)
    assert record is not None
    prefix = f"{cluster.manager.cluster_name}_{record.run_id}_"
    names = {Path(p).name for p in logs}
    assert all(name.startswith(prefix) for name in names), names
    assert {prefix + n for n in ("redis.log", "management_frontend.log", "query_frontend.log")} <= names
    assert all(Path(p).is_file() for p in logs)


def test_inspect_instance_returns_json_dict(cluster: Cluster) -> None:
    conn, app = cluster.conn, unique("inspect")
    conn.register_application(app, "doubles", "DEFAULT", 100000)
    predict(conn, app, {"input": [1.0]})  # so that at least one metric exists
    metrics = conn.inspect_instance()
    assert isinstance(metrics, dict) and len(metrics) >= 1


def test_query_specific_and_unknown_model_version(cluster: Cluster) -> None:
    conn, app, model = cluster.conn, unique("versions"), unique("testmodel")
    conn.register_application(app, "doubles", "DEFAULT", 3000000)
    python_deployer.deploy_python_closure(conn, model, 1, "doubles", lambda xs: ["1" for _ in xs])
    conn.link_model_to_app(app, model)
    python_deployer.deploy_python_closure(conn, model, 2, "doubles", lambda xs: ["2" for _ in xs])
    # The frontend learns that version 2 is current from a keyspace event: poll for it.
    eventually(lambda: predict(conn, app, {"input": [1.0]}).json()["output"], 2)
    reply = predict_until_model_answers(conn, app, {"input": [1.0], "version": "1"})
    assert (reply["output"], reply["default"]) == (1, False)
    response = predict(conn, app, {"input": [1.0], "version": "7"})
    assert response.status_code != 200
    assert response.json()["cause"] == f"Requested version: 7 does not exist for model: {model}"


def test_predictions_match_test_predict_function(cluster: Cluster) -> None:
    conn, app = cluster.conn, unique("hello-world")

    def feature_sum(xs):
        return [str(sum(x)) for x in xs]

    python_deployer.create_endpoint(
        conn, app, "doubles", feature_sum, default_output="-1.0", slo_micros=3000000
    )
    assert [m["model_version"] for m in conn.get_all_models(verbose=True) if m["model_name"] == app] == ["1"]
    assert conn.get_all_apps().count(app) == 1
    assert conn.get_linked_models(app) == [app]
    assert conn.get_num_replicas(app) == 1
    expected = conn.test_predict_function({"input": [1.1, 2.2, 3.3]}, feature_sum, "doubles")
    reply = predict_until_model_answers(conn, app, {"input": [1.1, 2.2, 3.3]})
    assert [str(reply["output"])] == expected
    batch = {"input_batch": [[1.0, 2.0], [3.5, 4.0]]}
    response = requests.post(f"http://{conn.get_query_addr()}/{app}/predict/", json=batch, timeout=30)
    outputs = [str(p["output"]) for p in response.json()["batch_predictions"]]
    assert outputs == conn.test_predict_function(batch, feature_sum, "doubles")


def test_replica_that_cannot_load_its_model_fails_deploy_with_its_log(
    cluster: Cluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A function from a module only this process can import: pickled by reference, so the
    # replica's unpickling fails with ModuleNotFoundError.
    (tmp_path / "ghost_module_for_clipper.py").write_text("def f(xs):\n    return ['x' for _ in xs]\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    import ghost_module_for_clipper

    model = unique("ghost")
    with pytest.raises(ClipperException) as info:
        python_deployer.deploy_python_closure(cluster.conn, model, 1, "doubles", ghost_module_for_clipper.f)
    assert "ghost_module_for_clipper" in str(info.value)
    assert (model, "1") not in live_replicas(cluster)


def test_connect_from_a_second_python_process(cluster: Cluster, subprocess_env: dict[str, str]) -> None:
    conn, app = cluster.conn, unique("connect")
    conn.register_application(app, "strings", "none", 100000)
    script = (
        "import json\n"
        "from clipper_admin import ClipperConnection, LocalContainerManager\n"
        f"conn = ClipperConnection(LocalContainerManager(cluster_name={cluster.manager.cluster_name!r}))\n"
        "conn.connect()\n"
        "print(json.dumps({'apps': conn.get_all_apps(), 'query': conn.get_query_addr()}))\n"
    )
    env = dict(subprocess_env, CLIPPER_HOME=str(cluster.home))
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert app in seen["apps"]
    assert seen["query"] == conn.get_query_addr()


def test_start_twice_is_refused(cluster: Cluster) -> None:
    again = ClipperConnection(
        LocalContainerManager(cluster_name=cluster.manager.cluster_name, clipper_home=str(cluster.home))
    )
    with pytest.raises(ClipperException, match=r"already exists\. Please use ClipperConnection\.connect"):
        again.start_clipper()


# -- long suite ----------------------------------------------------------------------------------


def test_unlinked_app_returns_default_predictions(cluster: Cluster) -> None:
    conn, app = cluster.conn, unique("app4")
    conn.register_application(app, "doubles", "DEFAULT", 3000000)
    reply = predict(conn, app, {"input": [1.0, 2.0]}).json()
    assert (reply["output"], reply["default"]) == ("DEFAULT", True)
    assert reply["default_explanation"] == "No connected models found for query"


def test_deployed_noop_model_answers_and_batches(cluster: Cluster) -> None:
    conn, app, model = cluster.conn, unique("app5"), unique("m6")
    conn.register_application(app, "doubles", "DEFAULT", 3000000)
    conn.deploy_model(model, 1, "doubles", NOOP_IMAGE)
    conn.link_model_to_app(app, model)
    reply = predict_until_model_answers(conn, app, {"input": [1.0, 2.0]})
    assert reply["default"] is False and reply["output"] != "DEFAULT"
    batch = predict(conn, app, {"input_batch": [[1.0], [2.0], [3.0], [4.0]]}).json()
    assert len(batch["batch_predictions"]) == 4
    assert f"{model}:1:0" in conn.get_all_model_replicas()
    (replica,) = [r for r in conn.get_all_model_replicas(verbose=True) if r["model_name"] == model]
    assert (replica["model_version"], replica["model_replica_id"]) == ("1", 0)
    assert conn.get_model_replica_info(model, 1, 0)["input_type"] == "doubles"
    assert conn.get_model_replica_info(model, 1, 99) is None


def test_python_closure_queried_successfully(cluster: Cluster) -> None:
    conn, app, model = cluster.conn, unique("app3"), unique("m4")
    conn.register_application(app, "doubles", "DEFAULT", 3000000)
    python_deployer.deploy_python_closure(conn, model, 1, "doubles", lambda xs: [str(len(x)) for x in xs])
    conn.link_model_to_app(app, model)
    reply = predict_until_model_answers(conn, app, {"input": [1.0, 2.0, 3.0]})
    assert int(reply["output"]) == 3


@pytest.mark.slow
def test_fixed_batch_size_is_used_when_saturated(cluster: Cluster) -> None:
    conn, app, model = cluster.conn, unique("app6"), unique("m7")
    conn.register_application(app, "doubles", "DEFAULT", 60_000_000)

    def slow_batch_length(xs):
        import time

        time.sleep(0.5)
        return [str(len(xs)) for _ in xs]

    # Three replicas keep the test short: 450 / 9 / 3 batches of 0.5 s each.
    python_deployer.deploy_python_closure(
        conn, model, 1, "doubles", slow_batch_length, batch_size=9, num_replicas=3
    )
    conn.link_model_to_app(app, model)
    predict_until_model_answers(conn, app, {"input": [0.0]})
    batch = predict(conn, app, {"input_batch": [[float(i)] for i in range(450)]}).json()
    outputs = [p["output"] for p in batch["batch_predictions"]]
    assert len(outputs) == 450
    assert max(outputs) == 9
    assert sum(1 for o in outputs if o == 9) >= 0.7 * 450


@pytest.mark.slow
def test_pkgs_to_install_go_into_a_per_model_venv(cluster: Cluster, tmp_path: Path) -> None:
    conn, app = cluster.conn, unique("venv-app")
    wheel = tiny_wheel(tmp_path, "clipper_venv_probe", "from-the-venv")

    def uses_the_package(xs):
        import clipper_venv_probe

        return [clipper_venv_probe.VALUE for _ in xs]

    with pytest.raises(ImportError):
        import clipper_venv_probe  # noqa: F401  (only the model's venv has it)
    python_deployer.create_endpoint(
        conn, app, "doubles", uses_the_package, slo_micros=3000000, pkgs_to_install=[str(wheel)]
    )
    assert predict_until_model_answers(conn, app, {"input": [1.0]})["output"] == "from-the-venv"
    # create_endpoint names the model after the app; its replica runs the venv's python.
    venv_python = cluster.manager.paths.models_dir / f"{app}_1" / "venv" / "bin" / "python"
    assert venv_python.exists()
    record = ClusterRecord.load(cluster.manager.paths)
    assert record is not None
    (replica,) = [r for r in record.replicas if r.name == app]
    assert replica.process.process().cmdline()[0] == str(venv_python)


# -- stopping ------------------------------------------------------------------------------------


def test_stop_models_versions_and_all_model_containers(cluster: Cluster) -> None:
    conn = cluster.conn
    page, plant = unique("jimmypage"), unique("robertplant")
    for model in (page, plant):
        for version in ("i", "ii"):
            conn.deploy_model(model, version, "doubles", NOOP_IMAGE)

    def ours() -> list[tuple[str, str]]:
        return sorted(r for r in live_replicas(cluster) if r[0] in (page, plant))

    def registered() -> list[str]:
        return sorted(m for m in conn.get_all_models() if m.split(":")[0] in (page, plant))

    assert len(ours()) == 4 and len(registered()) == 4
    conn.stop_models([page])
    assert ours() == [(plant, "i"), (plant, "ii")]
    eventually(registered, [f"{plant}:i", f"{plant}:ii"])
    conn.stop_versioned_models({plant: ["ii"]})
    assert ours() == [(plant, "i")]
    eventually(registered, [f"{plant}:i"])
    conn.stop_all_model_containers()
    assert live_replicas(cluster) == []
    eventually(conn.get_all_models, [])


def test_stop_all_leaves_no_process_behind(cluster: Cluster) -> None:
    conn, model = cluster.conn, unique("last")
    conn.deploy_model(model, 1, "doubles", NOOP_IMAGE, num_replicas=2)
    record = ClusterRecord.load(cluster.manager.paths)
    assert record is not None
    assert sorted(record.core) == ["management_frontend", "query_frontend", "redis", "supervisor"]
    assert [r.name for r in record.replicas if r.name == model] == [model, model]
    roots = [h.process() for h in [*record.core.values(), *(r.process for r in record.replicas)]]
    assert all(roots)
    everyone = [p for root in roots for p in [root, *root.children(recursive=True)]]
    conn.stop_all()
    still_running = [p for p in everyone if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    assert still_running == []
    assert not cluster.manager.paths.record_file.exists()
    with pytest.raises(ClipperException, match="No local Clipper cluster"):
        ClipperConnection(
            LocalContainerManager(cluster_name=cluster.manager.cluster_name, clipper_home=str(cluster.home))
        ).connect()


# -- without a shared cluster --------------------------------------------------------------------


def test_missing_redis_server_says_how_to_install_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no redis-server there
    conn = ClipperConnection(
        LocalContainerManager(cluster_name="no-redis", clipper_home=str(tmp_path), redis_port=free_port())
    )
    with pytest.raises(ClipperException, match="make install") as info:
        conn.start_clipper()
    assert "apt-get install redis-server" in str(info.value)
    assert not (tmp_path / "clusters" / "no-redis" / "cluster.json").exists()
    assert not list((tmp_path / "clusters" / "no-redis" / "logs").glob("*frontend.log"))


def test_package_imports_without_docker_and_kubernetes_sdks(subprocess_env: dict[str, str]) -> None:
    script = (
        "import sys\n"
        "sys.modules['docker'] = None\n"
        "sys.modules['kubernetes'] = None\n"
        "import clipper_admin\n"
        "from clipper_admin import *\n"
        "from clipper_admin.deployers import python\n"
        "try:\n"
        "    clipper_admin.DockerContainerManager\n"
        "except ImportError as exc:\n"
        "    print('ImportError:', exc)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], env=subprocess_env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert "ImportError: clipper_admin.DockerContainerManager is unavailable" in done.stdout


@pytest.mark.timeout(30)  # without HTTP timeouts these calls would hang forever
def test_a_silent_management_frontend_times_out(tmp_path: Path) -> None:
    # A listening socket nobody accepts from: connections succeed, answers never come.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        port = silent.getsockname()[1]
        manager = LocalContainerManager(cluster_name="silent", clipper_home=str(tmp_path))
        ClusterRecord("silent", "127.0.0.1", "127.0.0.1", 1, port, port, 1).save(manager.paths)
        conn = ClipperConnection(manager)
        conn.connect()
        conn.http_timeout_s = 0.5
        url = f"http://127.0.0.1:{port}/admin/get_all_applications"
        expected = f"Could not reach the Clipper management frontend at {url}.*timed out"
        with pytest.raises(ClipperException, match=expected):
            conn.get_all_apps()
        with pytest.raises(ClipperException, match="Could not reach the query frontend"):
            conn.inspect_instance()


def test_frontend_that_never_answers_fails_start_with_its_log_and_leaves_nothing(tmp_path: Path) -> None:
    # An external Redis that does not exist: the query frontend waits for it and never answers.
    manager = LocalContainerManager(
        cluster_name="no-answer", clipper_home=str(tmp_path), redis_ip="127.0.0.1",
        redis_port=free_port(), query_port=free_port(), management_port=free_port(),
        rpc_port=free_port(), startup_timeout_s=3.0,
    )
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    with pytest.raises(ClipperException) as info:
        ClipperConnection(manager).start_clipper()
    text = str(info.value)
    assert "did not answer" in text and "within 3.0 s. Last lines of" in text
    assert str(manager.paths.log_dir) in text
    assert not manager.paths.record_file.exists()
    left = [p for p in psutil.Process().children(recursive=True) if p.pid not in before]
    assert [p for p in left if p.status() != psutil.STATUS_ZOMBIE] == []


def test_partly_running_cluster_must_be_stopped_before_restart(tmp_path: Path) -> None:
    def manager() -> LocalContainerManager:
        return LocalContainerManager(
            cluster_name="partial", clipper_home=str(tmp_path), redis_port=free_port(),
            query_port=free_port(), management_port=free_port(), rpc_port=free_port(),
        )

    conn = ClipperConnection(manager())
    conn.start_clipper()
    try:
        record = ClusterRecord.load(conn.cm.paths)
        assert record is not None
        crashed = record.core["query_frontend"].process()
        assert crashed is not None
        crashed.kill()
        crashed.wait(10)
        with pytest.raises(ClipperException, match="partly running \\(query_frontend stopped"):
            ClipperConnection(manager()).start_clipper()
    finally:
        conn.stop_all()
    restarted = ClipperConnection(manager())
    restarted.start_clipper()
    try:
        assert restarted.get_all_apps() == []
    finally:
        restarted.stop_all()


def test_start_refuses_a_port_taken_by_another_server_after_the_check(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Someone binds the query port between the free-port check and the frontend's bind: the
    health answer comes from a process that is not ours, so start_clipper must not say "up"."""
    import clipper_admin.local.local_container_manager as lcm

    real_choose = lcm.choose_port
    # The race, made certain: the check says the query port is free although it is not.
    monkeypatch.setattr(
        lcm, "choose_port",
        lambda port, what, *a, **k: port if what == "query frontend" else real_choose(port, what, *a, **k),
    )
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    # Another cluster's frontend on the port: healthy, but not the process we started.
    with canned_http_server(200, json.dumps({"status": "ok", "pid": 1}).encode()) as taken:
        manager = LocalContainerManager(
            cluster_name="port-race", clipper_home=str(tmp_path), redis_port=free_port(),
            query_port=taken, management_port=free_port(), rpc_port=free_port(), startup_timeout_s=20.0,
        )
        with pytest.raises(ClipperException, match=r"query frontend .*(another process|exited)"):
            ClipperConnection(manager).start_clipper()
    assert not manager.paths.record_file.exists()
    left = [p for p in psutil.Process().children(recursive=True) if p.pid not in before]
    assert [p for p in left if p.status() != psutil.STATUS_ZOMBIE] == []


def test_start_moves_to_other_ports_when_one_is_lost_to_a_bind_race(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The Redis port is taken after the free-port check (once): start_clipper starts again on
    other ports instead of failing."""
    import clipper_admin.local.local_container_manager as lcm

    blocker = socket.socket()
    blocker.bind(("127.0.0.1", 0))
    blocker.listen()
    lost = blocker.getsockname()[1]
    real_choose = lcm.choose_port
    calls: list[int] = []

    def racy_choose(port: int, what: str, *args: Any, **kwargs: Any) -> int:
        if what == "Redis server" and not calls:
            calls.append(port)
            return lost  # "free" when checked, bound by someone else when Redis binds
        return real_choose(port, what, *args, **kwargs)

    monkeypatch.setattr(lcm, "choose_port", racy_choose)
    conn = ClipperConnection(LocalContainerManager(
        cluster_name="bind-race", clipper_home=str(tmp_path), redis_port=free_port(),
        query_port=free_port(), management_port=free_port(), rpc_port=free_port(),
    ))
    try:
        conn.start_clipper()
        assert calls and conn.cm.redis_port != lost
        assert conn.get_all_apps() == []
    finally:
        conn.stop_all()
        blocker.close()
