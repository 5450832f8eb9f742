"""KubernetesContainerManager against the real test cluster: the original's section 9.1 behaviours
(replicas, versions, stopping, connect, logs), several query frontends, namespaces, service types
and API errors. Pods and objects are counted through the API, not through the manager.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import cloudpickle
import pytest
from kubernetes import client

from clipper_admin import ClipperException, KubernetesContainerManager
from clipper_admin.container_manager import CLIPPER_DOCKER_LABEL, CLIPPER_MODEL_CONTAINER_LABEL
from clipper_admin.deployers import python as python_deployer
from tests.helpers import REPO_ROOT, free_port
from tests.integration.cluster_processes import eventually
from tests.k8s.conftest import (
    NOOP_IMAGE,
    Cluster,
    cluster_objects,
    host_network_manager,
    pods,
    wait_for_pods,
)
from tests.k8s.test_k8s_quickstart import predict

pytestmark = [pytest.mark.k8s, pytest.mark.timeout(900)]

MakeCluster = Callable[..., Cluster]


def model_pods(cluster: Cluster, name: str | None = None, version: str | None = None) -> str:
    """Label selector of a cluster's model pods (all, or one version's)."""
    model = (
        CLIPPER_MODEL_CONTAINER_LABEL if name is None else f"{CLIPPER_MODEL_CONTAINER_LABEL}={name}_{version}"
    )
    return f"{model},{CLIPPER_DOCKER_LABEL}={cluster.name}"


def answer_one(xs):
    return ["1" for _ in xs]


def answer_two(xs):
    return ["2" for _ in xs]


cloudpickle.register_pickle_by_value(sys.modules[__name__])


def test_replicas_scale_1_3_1_counted_through_the_api(cluster: Cluster, k8s_api: client.ApiClient) -> None:
    conn = cluster.conn
    conn.deploy_model("scaled", "1", "doubles", NOOP_IMAGE)
    assert len(wait_for_pods(k8s_api, cluster.namespace, model_pods(cluster, "scaled", "1"), 1)) == 1
    conn.set_num_replicas("scaled", 3, "1")
    assert conn.get_num_replicas("scaled", "1") == 3
    assert len(wait_for_pods(k8s_api, cluster.namespace, model_pods(cluster, "scaled", "1"), 3)) == 3
    conn.set_num_replicas("scaled", 1)  # the current version
    assert conn.get_num_replicas("scaled") == 1
    assert len(wait_for_pods(k8s_api, cluster.namespace, model_pods(cluster, "scaled", "1"), 1)) == 1
    # The Deployment itself carries the labels (the original's template left it unlabelled).
    deployments = client.AppsV1Api(k8s_api).list_namespaced_deployment(
        cluster.namespace, label_selector=model_pods(cluster, "scaled", "1")
    )
    assert [d.metadata.name for d in deployments.items] == [f"scaled-1-deployment-at-0-at-{cluster.name}"]


def test_set_model_version_and_roll_back(cluster: Cluster) -> None:
    conn = cluster.conn
    conn.register_application("versions", "doubles", "-1.0", 10_000_000)
    python_deployer.deploy_python_closure(
        conn, name="versioned", version=1, input_type="doubles", func=answer_one
    )
    conn.link_model_to_app("versions", "versioned")
    url = f"http://{conn.get_query_addr()}/versions/predict"
    assert predict(url, {"input": [1.0]})["output"] == 1
    python_deployer.deploy_python_closure(
        conn, name="versioned", version=2, input_type="doubles", func=answer_two
    )
    assert conn.get_current_model_version("versioned") == "2"
    assert predict(url, {"input": [2.0]})["output"] == 2
    # A version change reaches the query frontend through Redis' keyspace events, a moment after
    # the admin call returns (as in the original): the first query after it may see the old one.
    conn.set_model_version("versioned", "1")  # roll back
    assert conn.get_current_model_version("versioned") == "1"
    assert eventually(lambda: predict(url, {"input": [3.0]})["output"] == 1 or None, what="back to 1")
    conn.set_model_version("versioned", 2)
    assert eventually(lambda: predict(url, {"input": [4.0]})["output"] == 2 or None, what="version 2")


def test_stop_models_and_versions(cluster: Cluster, k8s_api: client.ApiClient) -> None:
    conn, ns = cluster.conn, cluster.namespace
    for name in ("jimmypage", "robertplant"):
        for version in ("i", "ii"):
            conn.deploy_model(name, version, "doubles", NOOP_IMAGE)
    assert len(wait_for_pods(k8s_api, ns, model_pods(cluster), 4)) == 4
    conn.stop_models(["jimmypage"])
    left = wait_for_pods(k8s_api, ns, model_pods(cluster), 2)
    assert {p.metadata.labels[CLIPPER_MODEL_CONTAINER_LABEL] for p in left} == {
        "robertplant_i",
        "robertplant_ii",
    }
    assert {m.split(":")[0] for m in conn.get_all_models()} == {"robertplant"}
    conn.stop_versioned_models({"robertplant": ["ii"]})
    (last,) = wait_for_pods(k8s_api, ns, model_pods(cluster), 1)
    assert last.metadata.labels[CLIPPER_MODEL_CONTAINER_LABEL] == "robertplant_i"
    conn.stop_all_model_containers()
    assert pods(k8s_api, ns, model_pods(cluster)) == []
    assert conn.get_all_models() == []
    # Nothing of the models is left; the frontends still run.
    assert not [
        o for o in cluster_objects(k8s_api, ns, cluster.name) if "robertplant" in o or "jimmypage" in o
    ]


def test_stop_inactive_model_versions(cluster: Cluster, k8s_api: client.ApiClient) -> None:
    conn, ns = cluster.conn, cluster.namespace
    conn.deploy_model("inactive", 1, "doubles", NOOP_IMAGE, num_replicas=2)
    assert len(wait_for_pods(k8s_api, ns, model_pods(cluster), 2)) == 2
    conn.deploy_model("inactive", 2, "doubles", NOOP_IMAGE, num_replicas=3)
    assert len(wait_for_pods(k8s_api, ns, model_pods(cluster), 5)) == 5
    conn.stop_inactive_model_versions(["inactive"])
    remaining = wait_for_pods(k8s_api, ns, model_pods(cluster), 3)
    assert {p.metadata.labels[CLIPPER_MODEL_CONTAINER_LABEL] for p in remaining} == {"inactive_2"}
    assert conn.get_all_models() == ["inactive:2"]


def test_stop_all_leaves_no_object_of_the_cluster(
    make_cluster: MakeCluster, k8s_api: client.ApiClient
) -> None:
    cluster = make_cluster()
    cluster.conn.deploy_model("leftover", "1", "doubles", NOOP_IMAGE)
    before = cluster_objects(k8s_api, cluster.namespace, cluster.name)
    kinds = {o.split("/")[0] for o in before}
    assert kinds == {"deployment", "replica_set", "service", "pod", "config_map", "cluster_role",
                     "cluster_role_binding"}  # fmt: skip
    cluster.conn.stop_all()
    assert cluster_objects(k8s_api, cluster.namespace, cluster.name) == []


def test_connect_from_a_second_process(cluster: Cluster, kubeconfig: str) -> None:
    cluster.conn.register_application("from-afar", "doubles", "-1.0", 100000)
    script = textwrap.dedent(
        f"""
        import json
        from clipper_admin import ClipperConnection, KubernetesContainerManager
        manager = KubernetesContainerManager(cluster_name={cluster.name!r}, useInternalIP=True,
                                             use_host_network=True, kube_config_file={kubeconfig!r})
        conn = ClipperConnection(manager)
        conn.connect()
        print(json.dumps({{"query": conn.get_query_addr(), "admin": manager.get_admin_addr(),
                          "apps": conn.get_all_apps()}}))
        """
    )
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120
    )
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    assert seen == {
        "query": cluster.manager.get_query_addr(),
        "admin": cluster.manager.get_admin_addr(),
        "apps": ["from-afar"],
    }


def test_get_logs_writes_one_file_per_container(
    cluster: Cluster, k8s_api: client.ApiClient, tmp_path: Path
) -> None:
    cluster.conn.deploy_model("logged", "1", "doubles", NOOP_IMAGE)
    every = pods(k8s_api, cluster.namespace, f"{CLIPPER_DOCKER_LABEL}={cluster.name}")
    expected = {f"{p.metadata.name}_{k}.log" for p in every for k in range(len(p.spec.containers))}
    paths = cluster.conn.get_clipper_logs(logging_dir=str(tmp_path / "logs"))
    assert {Path(p).name for p in paths} == expected
    assert len(paths) == len(expected) >= 4  # redis, management, query frontend, model
    assert all(Path(p).is_file() for p in paths)
    frontend_log = next(p for p in paths if Path(p).name.startswith(f"query-frontend-0-at-{cluster.name}"))
    assert Path(frontend_log).read_text().strip(), "the query frontend's log is empty"


def test_two_query_frontends_each_serve(make_cluster: MakeCluster, k8s_api: client.ApiClient) -> None:
    cluster = make_cluster(num_frontend_replicas=2)
    conn, manager = cluster.conn, cluster.manager
    addrs = manager.get_query_frontend_addrs()
    assert len(addrs) == 2 and len(set(addrs)) == 2
    core = client.CoreV1Api(k8s_api)
    services = {s.metadata.name for s in core.list_namespaced_service(
        cluster.namespace, label_selector=f"{CLIPPER_DOCKER_LABEL}={cluster.name}").items}  # fmt: skip
    assert {f"query-frontend-0-at-{cluster.name}", f"query-frontend-1-at-{cluster.name}",
            f"query-frontend-at-{cluster.name}"} <= services  # fmt: skip
    conn.register_application("both", "doubles", "-1.0", 10_000_000)
    conn.deploy_model("everywhere", "1", "doubles", NOOP_IMAGE)
    conn.link_model_to_app("both", "everywhere")
    # One model Deployment per query frontend, its replicas attached to that frontend.
    assert len(wait_for_pods(k8s_api, cluster.namespace, model_pods(cluster), 2)) == 2
    for addr in addrs:
        reply = predict(f"http://{addr}/both/predict", {"input": [1.0, 2.0]})
        assert reply["default"] is False, (addr, reply)


def test_missing_namespace_is_refused_or_created(kubeconfig: str, k8s_api: client.ApiClient) -> None:
    namespace = f"clipper-ns-{random.randint(0, 10**6)}"
    with pytest.raises(ClipperException) as info:
        host_network_manager(kubeconfig, "nowhere", namespace=namespace)
    assert str(info.value) == (
        "Error connecting to Kubernetes cluster. Namespace does not exist. You can pass in "
        "KubernetesContainerManager(create_namespace_if_not_exists=True) to crate this namespcae"
    )
    core = client.CoreV1Api(k8s_api)
    assert namespace not in {n.metadata.name for n in core.list_namespace().items}
    try:
        manager = host_network_manager(
            kubeconfig, "somewhere", namespace=namespace, create_namespace_if_not_exists=True
        )
        assert core.read_namespace(namespace).metadata.name == namespace
        assert manager.k8s_namespace == namespace
        assert manager.cluster_identifier == "somewhere"  # outside "default": the bare name
    finally:
        core.delete_namespace(namespace)


def test_cluster_in_its_own_namespace(make_cluster: MakeCluster, k8s_api: client.ApiClient) -> None:
    namespace = f"clipper-ns-{random.randint(0, 10**6)}"
    try:
        cluster = make_cluster(namespace=namespace, create_namespace_if_not_exists=True)
        cluster.conn.deploy_model("spaced", "1", "doubles", NOOP_IMAGE)
        assert len(wait_for_pods(k8s_api, namespace, model_pods(cluster), 1)) == 1
        assert pods(k8s_api, "default", f"{CLIPPER_DOCKER_LABEL}={cluster.name}") == []
        cluster.conn.stop_all()
        assert cluster_objects(k8s_api, namespace, cluster.name) == []
    finally:
        client.CoreV1Api(k8s_api).delete_namespace(namespace)


@pytest.mark.parametrize(
    ("service_types", "text"),
    [
        (["redis", "management", "query", "query-rpc", "metric"], "service_types must be 'dict' type"),
        ({"redis": "NodePort", "UNKNOWN_KEY": "NodePort", "query": "NodePort", "query-rpc": "NodePort",
          "metric": "NodePort"}, "service_types has unknown keys"),
        ({"redis": "NodePort", "management": "UNKNOWN_VALUE", "query": "NodePort", "query-rpc": "NodePort",
          "metric": "NodePort"}, "service_types has unknown values"),
        ({"redis": "NodePort", "management": "ExternalName", "query": "NodePort", "query-rpc": "NodePort",
          "metric": "NodePort"}, "Clipper does not support 'ExternalName' service"),
    ],
)  # fmt: skip
def test_invalid_service_types_are_refused(kubeconfig: str, service_types: object, text: str) -> None:
    with pytest.raises(ClipperException) as info:
        KubernetesContainerManager(
            cluster_name="typed", service_types=service_types, kube_config_file=kubeconfig
        )
    assert text in str(info.value)


def test_node_port_services_are_created_with_the_given_types(
    make_cluster: MakeCluster, k8s_api: client.ApiClient
) -> None:
    types = {"redis": "ClusterIP", "management": "NodePort", "query": "NodePort", "query-rpc": "ClusterIP",
             "metric": "NodePort"}  # fmt: skip
    cluster = make_cluster(service_types=types)
    core = client.CoreV1Api(k8s_api)
    by_name = {s.metadata.name: s for s in core.list_namespaced_service(
        cluster.namespace, label_selector=f"{CLIPPER_DOCKER_LABEL}={cluster.name}").items}  # fmt: skip
    assert by_name[f"redis-at-{cluster.name}"].spec.type == "ClusterIP"
    assert by_name[f"mgmt-frontend-at-{cluster.name}"].spec.type == "NodePort"
    assert by_name[f"mgmt-frontend-at-{cluster.name}"].spec.ports[0].node_port
    assert by_name[f"query-frontend-0-at-{cluster.name}"].spec.type == "ClusterIP"


def test_failing_api_call_is_a_clipper_exception_with_the_reason(kubeconfig: str) -> None:
    # An upper-case cluster name makes invalid object names: the API server answers 422.
    manager = host_network_manager(kubeconfig, f"Bad_Name{random.randint(0, 10**6)}")
    with pytest.raises(ClipperException) as info:
        manager.start_clipper()
    text = str(info.value)
    assert "Reason: 422 Unprocessable Entity" in text and "Invalid value" in text, text
    manager.stop_all()


def test_unreachable_api_server_is_a_clipper_exception(kubeconfig: str, tmp_path: Path) -> None:
    dead = tmp_path / "dead.kubeconfig"
    text = Path(kubeconfig).read_text()
    port = text.split("server: https://127.0.0.1:", 1)[1].split()[0]
    dead.write_text(text.replace(f"127.0.0.1:{port}", f"127.0.0.1:{free_port()}"))
    with pytest.raises(ClipperException) as info:
        KubernetesContainerManager(cluster_name="dead", kube_config_file=str(dead))
    assert "Error connecting to Kubernetes cluster. Reason:" in str(info.value)
