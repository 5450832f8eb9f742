# ruff: noqa: E501  (expected values read best unwrapped)
"""Container specs of a Docker cluster, for the host network and for a bridge network."""

from __future__ import annotations

from clipper_admin.container_manager import (
    CLIPPER_DOCKER_PORT_LABELS,
    CLIPPER_MGMT_FRONTEND_CONTAINER_LABEL,
    CLIPPER_MODEL_CONTAINER_LABEL,
    CLIPPER_QUERY_FRONTEND_CONTAINER_LABEL,
    CLIPPER_QUERY_FRONTEND_ID_LABEL,
)
from clipper_admin.docker.container_specs import (
    NetworkLayout,
    management_frontend_spec,
    model_replica_spec,
    query_frontend_address,
    query_frontend_spec,
    redis_address_for_frontends,
    redis_spec,
)

HOST = NetworkLayout(host_network=True, public_hostname="localhost")
BRIDGE = NetworkLayout(host_network=False, public_hostname="localhost")
BRIDGE_PUBLIC = NetworkLayout(host_network=False, public_hostname="10.0.0.5")


def test_host_network_processes_take_their_host_ports_by_flag() -> None:
    redis = redis_spec(HOST, "img/redis", 16379, "pw", "vol-1")
    assert redis.command is not None
    assert redis.command[:4] == ["sh", "-c", 'exec redis-server "$@" --requirepass "$REDIS_PASSWORD"', "redis-server"]
    assert redis.command[4:8] == ["--port", "16379", "--bind", "127.0.0.1"]
    assert redis.environment == {"REDIS_PORT": "16379", "REDIS_PASSWORD": "pw", "REDISCLI_AUTH": "pw"}
    assert redis.ports == {}
    assert redis.labels == {CLIPPER_DOCKER_PORT_LABELS["redis"]: "16379"}
    assert redis_address_for_frontends(HOST, "redis-1", 16379) == ("127.0.0.1", 16379)

    mgmt = management_frontend_spec(HOST, "img/mgmt", "127.0.0.1", 16379, 11338, "pw")
    assert mgmt.command == ["--redis_ip=127.0.0.1", "--redis_port=16379", "--host=127.0.0.1", "--port=11338"]
    assert mgmt.environment == {"HEALTHCHECK_URL": "http://127.0.0.1:11338/admin/ping", "REDIS_PASSWORD": "pw"}
    assert mgmt.ports == {}
    assert mgmt.labels == {
        CLIPPER_MGMT_FRONTEND_CONTAINER_LABEL: "",
        CLIPPER_DOCKER_PORT_LABELS["management"]: "11338",
    }

    query = query_frontend_spec(HOST, "img/qf", "127.0.0.1", 16379, 11337, 17000, 1024, "pw")
    assert query.command == [
        "--redis_ip=127.0.0.1", "--redis_port=16379", "--host=127.0.0.1", "--port=11337",
        "--rpc_host=127.0.0.1", "--rpc_service_port=17000", "--prediction_cache_size=1024",
    ]  # fmt: skip
    assert query.environment["REDIS_PASSWORD"] == "pw"
    assert query.ports == {}
    assert query.labels[CLIPPER_QUERY_FRONTEND_CONTAINER_LABEL] == ""
    assert query.labels[CLIPPER_DOCKER_PORT_LABELS["query_rest"]] == "11337"
    assert query.labels[CLIPPER_DOCKER_PORT_LABELS["query_rpc"]] == "17000"

    model = model_replica_spec(HOST, "m", "1", "doubles", "img/m", "query_frontend-7", 17000)
    assert model.environment == {
        "CLIPPER_MODEL_NAME": "m",
        "CLIPPER_MODEL_VERSION": "1",
        "CLIPPER_IP": "127.0.0.1",
        "CLIPPER_PORT": "17000",
        "CLIPPER_INPUT_TYPE": "doubles",
    }
    assert model.labels == {CLIPPER_MODEL_CONTAINER_LABEL: "m_1", CLIPPER_QUERY_FRONTEND_ID_LABEL: "0"}
    assert model.name_prefix == "m_1"


def test_bridge_network_uses_internal_ports_published_on_requested_ones() -> None:
    redis = redis_spec(BRIDGE, "img/redis", 16379, "pw", "vol-1")
    assert redis.command is not None and redis.command[4:8] == ["--port", "6379", "--bind", "0.0.0.0"]
    assert redis.environment["REDIS_PORT"] == "6379"
    assert redis.ports == {"6379/tcp": ("127.0.0.1", 16379)}
    assert redis_address_for_frontends(BRIDGE, "redis-1", 16379) == ("redis-1", 6379)

    mgmt = management_frontend_spec(BRIDGE, "img/mgmt", "redis-1", 6379, 11338)
    assert "--host=0.0.0.0" in (mgmt.command or [])
    assert "--port=1338" in (mgmt.command or [])
    assert mgmt.ports == {"1338/tcp": ("127.0.0.1", 11338)}
    assert mgmt.labels[CLIPPER_DOCKER_PORT_LABELS["management"]] == "11338"

    query = query_frontend_spec(BRIDGE_PUBLIC, "img/qf", "redis-1", 6379, 11337, 17000, 1024)
    assert "--rpc_service_port=7000" in (query.command or [])
    assert "--rpc_host=0.0.0.0" in (query.command or [])  # model containers connect over the bridge
    assert "REDIS_PASSWORD" not in query.environment  # an external Redis without a password
    assert query.ports == {"1337/tcp": 11337, "7000/tcp": 17000}
    assert query.environment["HEALTHCHECK_URL"] == "http://127.0.0.1:1337/metrics"

    model = model_replica_spec(BRIDGE, "m", "1", "doubles", "img/m", "query_frontend-7", 17000)
    assert model.environment["CLIPPER_IP"] == "query_frontend-7"
    assert model.environment["CLIPPER_PORT"] == "7000"


def test_managed_redis_persists_in_its_volume_and_restarts() -> None:
    for layout in (HOST, BRIDGE):
        redis = redis_spec(layout, "img/redis", 16379, "pw", "vol-1")
        args = redis.command or []
        assert args[args.index("--appendonly") + 1] == "yes"
        assert args[args.index("--appendfsync") + 1] == "everysec"
        assert args[args.index("--dir") + 1] == "/data"
        assert "--protected-mode" not in args  # a password, not an open server
        assert "pw" not in args  # from the environment, not the command line
        assert redis.volumes == {"vol-1": {"bind": "/data", "mode": "rw"}}
        assert redis.restart_policy == {"Name": "unless-stopped"}


def test_admin_token_reaches_the_management_frontend_by_environment() -> None:
    mgmt = management_frontend_spec(HOST, "img/mgmt", "127.0.0.1", 16379, 11338, None, "tok")
    assert mgmt.environment["CLIPPER_ADMIN_TOKEN"] == "tok"
    assert "REDIS_PASSWORD" not in mgmt.environment
    assert not any("tok" in arg for arg in mgmt.command or [])


def test_the_dashboard_reads_each_query_frontend_where_only_it_answers() -> None:
    assert query_frontend_address(HOST, "query_frontend-7", 11337) == "127.0.0.1:11337"
    assert query_frontend_address(HOST, "query_frontend-7", 11337, 21337) == "127.0.0.1:21337"
    assert query_frontend_address(BRIDGE, "query_frontend-7", 11337) == "query_frontend-7:1337"

    sources = ["127.0.0.1:21337", "127.0.0.1:21338"]
    mgmt = management_frontend_spec(HOST, "img/mgmt", "127.0.0.1", 16379, 11338, "pw", None, sources)
    assert mgmt.command == ["--redis_ip=127.0.0.1", "--redis_port=16379", "--host=127.0.0.1", "--port=11338",
                            "--query_frontend_address=127.0.0.1:21337,127.0.0.1:21338"]  # fmt: skip
    alone = management_frontend_spec(HOST, "img/mgmt", "127.0.0.1", 16379, 11338)
    assert not any("query_frontend_address" in arg for arg in alone.command or [])


def test_every_container_restarts_unless_stopped() -> None:
    """As the local supervisor restarts every process of its cluster."""
    for layout in (HOST, BRIDGE):
        specs = [
            redis_spec(layout, "img/redis", 16379, "pw", "vol-1"),
            management_frontend_spec(layout, "img/mgmt", "redis-1", 6379, 11338),
            query_frontend_spec(layout, "img/qf", "redis-1", 6379, 11337, 17000, 1024),
            model_replica_spec(layout, "m", "1", "doubles", "img/m", "query_frontend-7", 17000),
        ]
        assert [spec.restart_policy for spec in specs] == [{"Name": "unless-stopped"}] * 4
    shared = query_frontend_spec(HOST, "img/qf", "127.0.0.1", 16379, 11337, 17001, 1024, instance_port=21337)
    assert shared.restart_policy == {"Name": "unless-stopped"}
