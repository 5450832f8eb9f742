"""DockerContainerManager(secure_rpc=True) hands the cluster's RPC secret to the query frontend
and to every model replica through the environment, never the command line (issue 11 item 4)."""

from __future__ import annotations

from clipper_admin.container_manager import RPC_SECRET_ENV
from clipper_admin.docker.container_specs import NetworkLayout, model_replica_spec, query_frontend_spec

HOST = NetworkLayout(host_network=True, public_hostname="localhost")


def test_the_secret_reaches_the_query_frontend_and_the_replicas_by_environment() -> None:
    query = query_frontend_spec(HOST, "img/query", "127.0.0.1", 16379, 11337, 17000, 1024, "pw", "s3cret")
    assert query.environment[RPC_SECRET_ENV] == "s3cret"
    assert not any("s3cret" in part for part in query.command or [])
    replica = model_replica_spec(HOST, "m", "1", "doubles", "img/m:1", "query-1", 17000, "s3cret")
    assert replica.environment[RPC_SECRET_ENV] == "s3cret"


def test_without_a_secret_nothing_changes() -> None:
    query = query_frontend_spec(HOST, "img/query", "127.0.0.1", 16379, 11337, 17000, 1024, "pw")
    assert RPC_SECRET_ENV not in query.environment
    replica = model_replica_spec(HOST, "m", "1", "doubles", "img/m:1", "query-1", 17000)
    assert RPC_SECRET_ENV not in replica.environment
