"""Persistence and recovery (issue 4, item 3): restart the query frontend, or both frontends, on
the same ports while a real closure container stays up. The container must re-register through
its heartbeat (the new frontend does not know its identity and asks for its metadata) and serve
again with no user action; apps, models and links come back from Redis."""

from __future__ import annotations

from tests.integration.cluster_processes import Cluster, cluster, eventually, make_sum_model

__all__ = ["cluster"]  # the fixture, imported so pytest finds it

X = [1.1, 2.2, 3.3]
SUM = float(sum(X))


def _deploy(cluster: Cluster) -> None:
    cluster.start_management()
    cluster.start_query()
    cluster.add_app("app")
    cluster.add_model("m", "1")
    cluster.admin("add_model_links", {"app_name": "app", "model_names": ["m"]})
    cluster.start_container(make_sum_model(), "m", "1")
    assert eventually(lambda: cluster.real_output("app", X), what="first real output") == SUM


def _container_records(cluster: Cluster) -> list[object] | None:
    import json

    records = json.loads(cluster.admin("get_all_containers", {"verbose": True}))
    return records or None


def test_query_frontend_restart_container_reregisters_and_serves(cluster: Cluster) -> None:
    _deploy(cluster)
    container = cluster.containers[0]
    cluster.stop_query()
    cluster.start_query()  # same REST and RPC ports; the container never restarted
    served = eventually(lambda: cluster.real_output("app", X), what="real output after restart")
    assert served == SUM, cluster.logs()
    assert container.poll() is None
    # The new frontend wrote the re-registered container back into DB 3.
    records = eventually(lambda: _container_records(cluster), what="container record")
    assert len(records) == 1 and records[0]["model_name"] == "m", records  # type: ignore[index]


def test_restart_of_both_frontends_keeps_state_and_serves_again(cluster: Cluster) -> None:
    _deploy(cluster)
    cluster.stop_query()
    cluster.stop_management()
    cluster.start_management()
    cluster.start_query()
    # State came back from Redis through the restarted management frontend ...
    import json

    app = json.loads(cluster.admin("get_application", {"name": "app"}))
    assert app["linked_models"] == ["m"] and app["default_output"] == "-1.0"
    model = json.loads(cluster.admin("get_model", {"model_name": "m", "model_version": "1"}))
    assert model["is_current_version"] is True
    # ... and the untouched container serves the restarted query frontend again.
    served = eventually(lambda: cluster.real_output("app", X), what="real output after restart")
    assert served == SUM, cluster.logs()
    # Live changes keep working after the restart: a new app follows at once.
    cluster.add_app("later")
    cluster.admin("add_model_links", {"app_name": "later", "model_names": ["m"]})
    assert eventually(lambda: cluster.real_output("later", [1.0]), what="new app served") == 1.0


def test_query_frontend_killed_hard_then_restarted_serves_again(cluster: Cluster) -> None:
    """SIGKILL leaves stale DB 3 records and no goodbye; the restart must still recover."""
    _deploy(cluster)
    assert cluster.query is not None
    cluster.query.kill()
    cluster.query.wait(10)
    cluster.start_query()
    served = eventually(lambda: cluster.real_output("app", X), what="real output after kill")
    assert served == SUM, cluster.logs()
