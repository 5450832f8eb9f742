"""DockerContainerManager with several query frontends (issue 16.3): the container specs, and
the manager driving a recording stand-in for the Docker engine (no engine needed)."""

from __future__ import annotations

from typing import Any

import pytest

from clipper_admin.container_manager import (
    CLIPPER_DOCKER_PORT_LABELS,
    CLIPPER_MGMT_FRONTEND_CONTAINER_LABEL,
    CLIPPER_MODEL_CONTAINER_LABEL,
    CLIPPER_QUERY_FRONTEND_CONTAINER_LABEL,
    CLIPPER_QUERY_FRONTEND_ID_LABEL,
)
from clipper_admin.docker import docker_container_manager as manager_module
from clipper_admin.docker.container_specs import NetworkLayout, model_replica_spec, query_frontend_spec
from clipper_admin.docker.docker_container_manager import DockerContainerManager
from clipper_admin.exceptions import ClipperException

HOST = NetworkLayout(host_network=True, public_hostname="localhost")
BRIDGE = NetworkLayout(host_network=False, public_hostname="localhost")


def test_a_frontend_sharing_the_rest_port_serves_its_instance_port_and_is_checked_there() -> None:
    spec = query_frontend_spec(HOST, "img/qf", "127.0.0.1", 16379, 11337, 17001, 1024, "pw",
                               frontend_id=1, instance_port=21337)
    assert spec.command is not None
    assert "--port=11337" in spec.command and "--rpc_service_port=17001" in spec.command
    assert spec.command[-2:] == ["--reuse_port=true", "--instance_port=21337"]
    assert spec.environment["HEALTHCHECK_URL"] == "http://127.0.0.1:21337/metrics"
    assert spec.labels[CLIPPER_QUERY_FRONTEND_ID_LABEL] == "1"
    assert spec.labels[CLIPPER_DOCKER_PORT_LABELS["query_instance"]] == "21337"
    alone = query_frontend_spec(HOST, "img/qf", "127.0.0.1", 16379, 11337, 17000, 1024)
    assert not any("reuse_port" in part or "instance_port" in part for part in alone.command or [])
    assert CLIPPER_DOCKER_PORT_LABELS["query_instance"] not in alone.labels
    with pytest.raises(ValueError, match="host network"):
        query_frontend_spec(BRIDGE, "img/qf", "redis", 6379, 11337, 17001, 1024, instance_port=21337)


def test_a_replica_names_its_frontend() -> None:
    replica = model_replica_spec(HOST, "m", "1", "doubles", "img/m", "query_frontend-2", 17001, frontend_id=1)
    assert replica.environment["CLIPPER_PORT"] == "17001"
    assert replica.labels[CLIPPER_QUERY_FRONTEND_ID_LABEL] == "1"


class FakeContainer:
    def __init__(self, name: str, image: str, labels: dict[str, str], environment: dict[str, str],
                 command: list[str] | None, restart_policy: dict[str, Any] | None = None) -> None:
        self.name, self.image, self.labels, self.command = name, image, labels, command
        self.environment, self.restart_policy = environment, restart_policy
        self.attrs = {"Config": {"Env": [f"{k}={v}" for k, v in environment.items()]}}


class FakeEngine:
    """``containers.run`` and ``containers.list(filters={"label": ...})`` over a list."""

    def __init__(self) -> None:
        self.running: list[FakeContainer] = []
        self.containers = self

    def run(self, image: str, name: str, labels: dict[str, str], environment: dict[str, str] | None = None,
            command: list[str] | None = None, restart_policy: dict[str, Any] | None = None,
            **_: Any) -> FakeContainer:
        container = FakeContainer(name, image, labels, environment or {}, command, restart_policy)
        self.running.append(container)
        return container

    def list(self, filters: dict[str, Any] | None = None, **_: Any) -> list[FakeContainer]:
        wanted = (filters or {}).get("label", [])
        wanted = [wanted] if isinstance(wanted, str) else wanted
        return [c for c in self.running if all(_matches(c.labels, w) for w in wanted)]


def _matches(labels: dict[str, str], selector: str) -> bool:
    key, _, value = selector.partition("=")
    return key in labels and (not value or labels[key] == value)


@pytest.fixture
def engine(monkeypatch: pytest.MonkeyPatch) -> FakeEngine:
    fake = FakeEngine()
    monkeypatch.setattr(manager_module, "ensure_image", lambda *args, **kwargs: None)
    monkeypatch.setattr(manager_module.api, "wait_for_containers", lambda containers, **kwargs: None)
    monkeypatch.setattr(
        manager_module.api, "remove_containers",
        lambda containers, graceful=True: [fake.running.remove(c) for c in containers],
    )
    monkeypatch.setattr(DockerContainerManager, "_create_redis_volume", lambda self: "volume")
    return fake


def make_manager(engine: FakeEngine, network: str = "host") -> DockerContainerManager:
    manager = DockerContainerManager(cluster_name="fe", docker_network=network)
    manager._docker_client = engine  # type: ignore[assignment]
    return manager


def management_of(engine: FakeEngine) -> FakeContainer:
    (only,) = [c for c in engine.running if CLIPPER_MGMT_FRONTEND_CONTAINER_LABEL in c.labels]
    return only


def dashboard_sources(engine: FakeEngine) -> list[str]:
    """The --query_frontend_address list the management frontend was started with."""
    flags = [a for a in management_of(engine).command or [] if a.startswith("--query_frontend_address=")]
    assert len(flags) == 1, management_of(engine).command
    return flags[0].partition("=")[2].split(",")


def frontends_of(engine: FakeEngine) -> list[FakeContainer]:
    found = [c for c in engine.running if CLIPPER_QUERY_FRONTEND_CONTAINER_LABEL in c.labels]
    return sorted(found, key=lambda c: c.labels[CLIPPER_QUERY_FRONTEND_ID_LABEL])


def test_two_frontends_share_the_rest_port_and_each_gets_its_own_replicas(engine: FakeEngine) -> None:
    manager = make_manager(engine)
    manager.start_clipper(num_frontend_replicas=2)
    first, second = frontends_of(engine)
    ports = CLIPPER_DOCKER_PORT_LABELS
    shared = str(manager.clipper_query_port)
    assert first.labels[ports["query_rest"]] == second.labels[ports["query_rest"]] == shared
    rpc = [int(c.labels[ports["query_rpc"]]) for c in (first, second)]
    instance = [int(c.labels[ports["query_instance"]]) for c in (first, second)]
    assert len({*rpc, *instance, manager.clipper_query_port}) == 5
    for container, rpc_port, instance_port in zip((first, second), rpc, instance, strict=True):
        assert container.command is not None
        assert "--reuse_port=true" in container.command
        assert f"--rpc_service_port={rpc_port}" in container.command
        assert f"--instance_port={instance_port}" in container.command
    assert manager.get_query_addr() == f"localhost:{manager.clipper_query_port}"
    assert manager.get_query_frontend_addrs() == [f"localhost:{p}" for p in instance]
    # The dashboard sums every frontend, each read on its own instance port.
    assert dashboard_sources(engine) == [f"127.0.0.1:{p}" for p in instance]

    manager.set_num_replicas("m", "1", "doubles", "img/m:1", 2)
    replicas = [c for c in engine.running if CLIPPER_MODEL_CONTAINER_LABEL in c.labels]
    frontend_id = CLIPPER_QUERY_FRONTEND_ID_LABEL
    placed = sorted((c.labels[frontend_id], c.environment["CLIPPER_PORT"]) for c in replicas)
    assert placed == [("0", str(rpc[0])), ("0", str(rpc[0])), ("1", str(rpc[1])), ("1", str(rpc[1]))]
    assert all(c.restart_policy == {"Name": "unless-stopped"} for c in engine.running)
    assert manager.get_num_replicas("m", "1") == 2

    # Another process connects: it finds both frontends, and scaling down reaches both.
    other = make_manager(engine)
    other.connect()
    assert other.get_query_frontend_addrs() == manager.get_query_frontend_addrs()
    other.set_num_replicas("m", "1", "doubles", "img/m:1", 1)
    replicas = [c for c in engine.running if CLIPPER_MODEL_CONTAINER_LABEL in c.labels]
    assert sorted(c.labels[CLIPPER_QUERY_FRONTEND_ID_LABEL] for c in replicas) == ["0", "1"]
    assert other.get_num_replicas("m", "1") == 1


def test_one_frontend_is_laid_out_as_before(engine: FakeEngine) -> None:
    manager = make_manager(engine)
    manager.start_clipper()
    (only,) = frontends_of(engine)
    assert only.command is not None and not any("reuse_port" in part for part in only.command)
    assert manager.get_query_frontend_addrs() == [manager.get_query_addr()]
    assert dashboard_sources(engine) == [f"127.0.0.1:{manager.clipper_query_port}"]
    # Redis, the query frontend, the management frontend: the engine restarts each.
    assert [c.restart_policy for c in engine.running] == [{"Name": "unless-stopped"}] * 3


def test_on_a_bridge_the_dashboard_reaches_the_query_frontend_by_container_name(
    engine: FakeEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(manager_module.api, "create_network", lambda *args: True)
    manager = make_manager(engine, network="clipper_network")
    manager.start_clipper()
    (only,) = frontends_of(engine)
    assert dashboard_sources(engine) == [f"{only.name}:1337"]


def test_several_frontends_need_the_host_network(engine: FakeEngine) -> None:
    with pytest.raises(ClipperException, match="docker_network='host'"):
        make_manager(engine, network="clipper_network").start_clipper(num_frontend_replicas=2)
    assert engine.running == []


def test_a_failed_scale_up_deletes_the_replicas_it_added(
    engine: FakeEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """They restart unless stopped: left behind, a replica that crashed would loop (and count)."""
    manager = make_manager(engine)
    manager.start_clipper(num_frontend_replicas=2)

    def crashed(containers: list[FakeContainer], **_: Any) -> None:
        raise ClipperException(f"Container {containers[0].name} failed to start")

    monkeypatch.setattr(manager_module.api, "wait_for_containers", crashed)
    with pytest.raises(ClipperException, match="failed to start"):
        manager.set_num_replicas("m", "1", "doubles", "img/m:1", 1)
    assert [c for c in engine.running if CLIPPER_MODEL_CONTAINER_LABEL in c.labels] == []
    assert len(frontends_of(engine)) == 2
