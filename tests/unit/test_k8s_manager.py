"""KubernetesContainerManager without a cluster: checks that fail before any API call, and the
objects start_clipper sends (recorded)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from clipper_admin import ClipperException, KubernetesContainerManager
from clipper_admin.kubernetes import kubernetes_container_manager as manager_module


def test_invalid_service_types_are_refused_before_any_api_call(tmp_path: Path) -> None:
    with pytest.raises(ClipperException, match="service_types must be 'dict' type"):
        KubernetesContainerManager(service_types="NodePort", kube_config_file=str(tmp_path / "none"))  # type: ignore[arg-type]


def test_missing_configuration_is_a_clipper_exception(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "no-such-kubeconfig"))
    with pytest.raises(ClipperException, match="Could not load a Kubernetes configuration"):
        KubernetesContainerManager()


@pytest.mark.parametrize(
    ("use_host_network", "expected"),
    [
        (False, "query-frontend-0-at-dash:1337,query-frontend-1-at-dash:1337"),
        (True, "$(NODE_IP):41337,$(NODE_IP):41338"),
    ],
)
def test_start_clipper_gives_the_management_frontend_every_query_frontend(
    monkeypatch: pytest.MonkeyPatch, use_host_network: bool, expected: str
) -> None:
    """The manifests start_clipper sends (recorded, no API server): the dashboard's sources."""
    monkeypatch.setattr(manager_module, "load_api_client", lambda _: client.ApiClient())
    monkeypatch.setattr(KubernetesContainerManager, "_ensure_namespace", lambda self, ns, create: ns)
    manager = KubernetesContainerManager(
        cluster_name="dash", redis_ip="127.0.0.1", use_host_network=use_host_network,
        clipper_query_port=41337, clipper_management_port=41340, clipper_rpc_port=47000,
    )  # fmt: skip
    sent: list[dict[str, Any]] = []
    monkeypatch.setattr(manager, "_create", lambda create, body, namespaced=True: sent.append(body))
    monkeypatch.setattr(manager, "_wait_for_deployment", lambda *args: None)
    monkeypatch.setattr(manager, "_nodes_are_this_machine", lambda: False)
    monkeypatch.setattr(manager, "connect", lambda: None)
    manager.start_clipper(num_frontend_replicas=2)

    deployments = {b["metadata"]["name"]: b for b in sent if b["kind"] == "Deployment"}
    management = deployments["mgmt-frontend-at-dash"]
    (container,) = management["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["CLIPPER_QUERY_FRONTEND_ADDRESS"] == expected
    services = {b["metadata"]["name"]: b for b in sent if b["kind"] == "Service"}
    for i in range(2):
        ports = services[f"query-frontend-{i}-at-dash"]["spec"]["ports"]
        assert [p["targetPort"] for p in ports] == ["rpc", "query"]
