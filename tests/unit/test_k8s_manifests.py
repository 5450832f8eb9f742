"""The Kubernetes manifests of a Clipper cluster, checked as data (no API server)."""

from __future__ import annotations

from typing import Any

import pytest

from clipper_admin.container_manager import (
    CLIPPER_DOCKER_LABEL,
    CLIPPER_MODEL_CONTAINER_LABEL,
    CLIPPER_NAME_LABEL,
)
from clipper_admin.exceptions import ClipperException
from clipper_admin.kubernetes import manifests as m

CLUSTER = "c1"
NODE = m.PodNetwork(host_network=True)
POD = m.PodNetwork(host_network=False)


def container(manifest: dict[str, Any]) -> dict[str, Any]:
    (only,) = manifest["spec"]["template"]["spec"]["containers"]
    return only


def env(manifest: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container(manifest).get("env", [])}


def ports(manifest: dict[str, Any]) -> dict[str, int]:
    return {p["name"]: p["containerPort"] for p in container(manifest).get("ports", [])}


# ------------------------------------------------------------------------------ service types


def test_service_types_default_to_node_port() -> None:
    assert m.validate_service_types(None) == dict.fromkeys(
        ["redis", "management", "query", "query-rpc", "metric"], "NodePort"
    )


def test_valid_service_types_are_taken_and_defaults_stay_unchanged() -> None:
    given = {"redis": "ClusterIP", "management": "LoadBalancer", "query": "NodePort",
             "query-rpc": "ClusterIP", "metric": "NodePort"}  # fmt: skip
    assert m.validate_service_types(given) == given
    assert set(m.DEFAULT_SERVICE_TYPES.values()) == {"NodePort"}


@pytest.mark.parametrize(
    ("service_types", "text"),
    [
        (["redis", "management", "query", "query-rpc", "metric"], "service_types must be 'dict' type: "),
        ({"redis": "NodePort", "UNKNOWN_KEY": "NodePort", "query": "NodePort", "query-rpc": "NodePort",
          "metric": "NodePort"}, "service_types has unknown keys: "),
        ({"redis": "NodePort"}, "service_types has unknown keys: "),
        ({"redis": "NodePort", "management": "UNKNOWN", "query": "NodePort", "query-rpc": "NodePort",
          "metric": "NodePort"}, "service_types has unknown values: "),
        ({"redis": "ExternalName", "management": "NodePort", "query": "NodePort", "query-rpc": "NodePort",
          "metric": "NodePort"}, "Clipper does not support 'ExternalName' service"),
    ],
)  # fmt: skip
def test_invalid_service_types_raise_the_original_texts(service_types: Any, text: str) -> None:
    with pytest.raises(ClipperException) as info:
        m.validate_service_types(service_types)
    assert str(info.value).startswith(text)


# ------------------------------------------------------------------------------ ports


def test_cluster_network_uses_the_fixed_ports() -> None:
    plan = m.plan_ports(False, 2, 40000, 40001, 40002, 40003)
    assert plan == m.PortPlan(6379, 1338, (1337, 1337), (7000, 7000))


def test_node_network_gives_every_process_its_own_port() -> None:
    plan = m.plan_ports(True, 2, 6379, 1338, 1337, 7000)
    # Frontend 1 asks for 1338, which the management frontend has: it takes the next one.
    assert plan == m.PortPlan(6379, 1338, (1337, 1339), (7000, 7001))
    every = [plan.redis, plan.management, *plan.query, *plan.rpc]
    assert len(set(every)) == len(every)


def test_node_network_port_chooser_can_skip_bound_ports() -> None:
    bound = {7000, 7001}

    def choose(start: int, taken: Any) -> int:
        port = start
        while port in taken or port in bound:
            port += 1
        return port

    plan = m.plan_ports(True, 1, 6379, 1338, 1337, 7000, choose)
    assert plan.rpc == (7002,)


# ------------------------------------------------------------------------------ frontends


def test_every_deployment_carries_its_labels_and_selects_its_pods() -> None:
    """The original's model template wrote ``label:``: its Deployments had no labels."""
    bodies = [
        m.redis_deployment(CLUSTER, "r", "IfNotPresent", POD, 6379),
        m.management_deployment(CLUSTER, "mg", "IfNotPresent", POD, "redis-at-c1", 6379, 1338),
        m.query_frontend_deployment(
            CLUSTER, 0, "q", "IfNotPresent", POD, "redis-at-c1", 6379, 1337, 7000, 10
        ),
        m.model_deployment(CLUSTER, 0, "m", "1", "doubles", "img", "IfNotPresent", POD, "x", 7000, 1),
    ]
    for body in bodies:
        assert body["apiVersion"] == "apps/v1"
        labels = body["metadata"]["labels"]
        assert labels[CLIPPER_DOCKER_LABEL] == CLUSTER
        assert body["spec"]["template"]["metadata"]["labels"] == labels
        selector = body["spec"]["selector"]["matchLabels"]
        assert selector.items() <= labels.items()


def test_object_names_are_the_originals() -> None:
    assert m.redis_deployment(CLUSTER, "r", "Always", POD, 6379)["metadata"]["name"] == "redis-at-c1"
    assert m.management_service(CLUSTER, "NodePort")["metadata"]["name"] == "mgmt-frontend-at-c1"
    assert m.query_rpc_service(CLUSTER, 1, "NodePort")["metadata"]["name"] == "query-frontend-1-at-c1"
    assert m.query_service(CLUSTER, "NodePort")["metadata"]["name"] == "query-frontend-at-c1"
    assert m.metrics_config_map(CLUSTER)["metadata"]["name"] == "prometheus-config-at-c1"
    assert m.cluster_role(CLUSTER)["metadata"]["name"] == "c1-prometheus"
    assert m.model_deployment_name("m", "v2", 1, CLUSTER) == "m-v2-deployment-at-1-at-c1"


def test_query_frontend_on_the_cluster_network() -> None:
    body = m.query_frontend_deployment(
        CLUSTER, 1, "img:1", "IfNotPresent", POD, "redis-at-c1", 6380, 1337, 7000, 99
    )
    c = container(body)
    assert c["image"] == "img:1" and c["imagePullPolicy"] == "IfNotPresent"
    assert c["args"] == ["--redis_ip=redis-at-c1", "--redis_port=6380", "--host=0.0.0.0", "--port=1337",
                         "--rpc_service_port=7000", "--prediction_cache_size=99"]  # fmt: skip
    assert ports(body) == {"query": 1337, "rpc": 7000}
    assert c["readinessProbe"]["httpGet"] == {"path": "/metrics", "port": "query"}
    assert body["metadata"]["labels"][m.CLIPPER_QUERY_FRONTEND_ID_LABEL] == "1"
    assert body["metadata"]["labels"][CLIPPER_NAME_LABEL] == "query-frontend"
    annotations = body["spec"]["template"]["metadata"]["annotations"]
    assert annotations == {"prometheus.io/scrape": "true", "prometheus.io/port": "1337",
                           "prometheus.io/path": "/metrics"}  # fmt: skip
    assert "hostNetwork" not in body["spec"]["template"]["spec"]


def test_query_frontend_on_the_node_network_listens_on_the_node_address() -> None:
    body = m.query_frontend_deployment(
        CLUSTER, 0, "q", "IfNotPresent", NODE, "127.0.0.1", 40001, 40002, 40003, 5
    )
    pod = body["spec"]["template"]["spec"]
    assert pod["hostNetwork"] is True and pod["dnsPolicy"] == "ClusterFirstWithHostNet"
    assert "--host=$(NODE_IP)" in container(body)["args"]
    assert env(body)["NODE_IP"] == {"fieldRef": {"fieldPath": "status.hostIP"}}
    assert env(body)["HEALTHCHECK_URL"] == "http://$(NODE_IP):40002/metrics"
    assert ports(body) == {"query": 40002, "rpc": 40003}
    # NODE_IP must come first: $(VAR) only expands variables defined before it.
    assert container(body)["env"][0]["name"] == "NODE_IP"


def test_services_point_at_named_ports() -> None:
    redis = m.redis_service(CLUSTER, "ClusterIP", 6390)
    assert redis["spec"]["type"] == "ClusterIP"
    assert redis["spec"]["ports"] == [
        {"name": "6379", "port": 6390, "targetPort": "redis", "protocol": "TCP"}
    ]
    rpc = m.query_rpc_service(CLUSTER, 2, "NodePort")
    assert rpc["spec"]["ports"][0] | {} == {
        "name": "7000",
        "port": 7000,
        "targetPort": "rpc",
        "protocol": "TCP",
    }
    assert rpc["spec"]["selector"][m.CLIPPER_QUERY_FRONTEND_ID_LABEL] == "2"
    query = m.query_service(CLUSTER, "LoadBalancer")
    assert m.CLIPPER_QUERY_FRONTEND_ID_LABEL not in query["spec"]["selector"]
    assert query["spec"]["ports"][0]["name"] == "1337"
    for service in (redis, rpc, query, m.management_service(CLUSTER, "NodePort")):
        assert service["metadata"]["labels"][CLIPPER_DOCKER_LABEL] == CLUSTER


def test_each_query_frontend_service_also_carries_its_rest_port() -> None:
    """The dashboard reads each frontend's /metrics through it (the shared Service would answer
    from any frontend); the RPC port stays first, as the original's."""
    rpc = m.query_rpc_service(CLUSTER, 1, "NodePort")
    assert rpc["spec"]["ports"] == [
        {"name": "7000", "port": 7000, "targetPort": "rpc", "protocol": "TCP"},
        {"name": "1337", "port": 1337, "targetPort": "query", "protocol": "TCP"},
    ]
    assert rpc["spec"]["selector"][m.CLIPPER_QUERY_FRONTEND_ID_LABEL] == "1"


def test_the_dashboard_samples_every_query_frontend_on_the_cluster_network() -> None:
    sources = m.dashboard_sources(CLUSTER, POD, (1337, 1337))
    assert sources == ["query-frontend-0-at-c1:1337", "query-frontend-1-at-c1:1337"]
    body = m.management_deployment(CLUSTER, "mg", "IfNotPresent", POD, "redis-at-c1", 6379, 1338, sources)
    assert env(body)["CLIPPER_QUERY_FRONTEND_ADDRESS"] == ",".join(sources)
    assert not any("query_frontend_address" in arg for arg in container(body)["args"])
    alone = m.management_deployment(CLUSTER, "mg", "IfNotPresent", POD, "redis-at-c1", 6379, 1338)
    assert "CLIPPER_QUERY_FRONTEND_ADDRESS" not in env(alone)


def test_the_dashboard_samples_every_query_frontend_on_the_node_network() -> None:
    sources = m.dashboard_sources(CLUSTER, NODE, (40002, 40004))
    assert sources == ["$(NODE_IP):40002", "$(NODE_IP):40004"]
    body = m.management_deployment(CLUSTER, "mg", "IfNotPresent", NODE, "127.0.0.1", 40001, 40003, sources)
    assert env(body)["CLIPPER_QUERY_FRONTEND_ADDRESS"] == "$(NODE_IP):40002,$(NODE_IP):40004"
    # $(NODE_IP) expands only when NODE_IP is defined earlier in the list.
    names = [e["name"] for e in container(body)["env"]]
    assert names.index("NODE_IP") < names.index("CLIPPER_QUERY_FRONTEND_ADDRESS")


def test_redis_listens_where_told() -> None:
    pod = m.redis_deployment(CLUSTER, "clipper/redis:1", "IfNotPresent", NODE, 40100)
    command = container(pod)["command"]
    assert command[:5] == ["redis-server", "--port", "40100", "--bind", "$(NODE_IP)"]
    assert ports(pod) == {"redis": 40100}
    cluster = m.redis_deployment(CLUSTER, "clipper/redis:1", "IfNotPresent", POD, 6379)
    assert container(cluster)["command"][3:5] == ["--bind", "0.0.0.0"]


# ------------------------------------------------------------------------------ models


def test_model_deployment_environment_probe_and_labels() -> None:
    body = m.model_deployment(CLUSTER, 1, "sum", "3", "doubles", "reg/sum:3", "Always", POD,
                              "query-frontend-1-at-c1", 7000, 4)  # fmt: skip
    assert body["metadata"]["name"] == "sum-3-deployment-at-1-at-c1"
    assert body["spec"]["replicas"] == 4
    labels = body["metadata"]["labels"]
    assert labels[CLIPPER_MODEL_CONTAINER_LABEL] == "sum_3"
    assert labels[CLIPPER_NAME_LABEL] == "model"
    assert env(body) == {"CLIPPER_MODEL_NAME": "sum", "CLIPPER_MODEL_VERSION": "3",
                         "CLIPPER_IP": "query-frontend-1-at-c1", "CLIPPER_PORT": "7000",
                         "CLIPPER_INPUT_TYPE": "doubles"}  # fmt: skip
    c = container(body)
    assert c["name"] == "sum-3-deployment-at-1-at-c1"
    assert c["readinessProbe"]["exec"]["command"] == ["cat", "/model_is_ready.check"]
    assert c["imagePullPolicy"] == "Always"


def test_model_container_name_stays_a_dns_label() -> None:
    body = m.model_deployment(
        CLUSTER, 0, "m", "v1.2", "doubles", "i", "IfNotPresent", NODE, "127.0.0.1", 7, 1
    )
    assert container(body)["name"] == "model"
    assert env(body)["CLIPPER_IP"] == "127.0.0.1"


def test_selectors() -> None:
    assert m.cluster_selector("c") == "ai.clipper.container.label=c"
    assert m.model_selector("c") == "ai.clipper.model_container.label,ai.clipper.container.label=c"
    assert (
        m.model_selector("c", "m", "1") == "ai.clipper.model_container.label=m_1,ai.clipper.container.label=c"
    )


# ------------------------------------------------------------------------------ metrics and RBAC


def test_rbac_and_config_map() -> None:
    role = m.cluster_role(CLUSTER)
    assert role["apiVersion"] == "rbac.authorization.k8s.io/v1"
    assert role["metadata"]["labels"] == {
        CLIPPER_DOCKER_LABEL: CLUSTER,
        CLIPPER_NAME_LABEL: "prom-cluster-role",
    }
    binding = m.cluster_role_binding(CLUSTER, "ns1")
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "default", "namespace": "ns1"}]
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    config = m.metrics_config_map(CLUSTER)
    text = config["data"]["prom_config.yml"]
    assert "job_name: Clipper Metrics" in text and f"regex: {CLUSTER}" in text
