"""Waiting for a Kubernetes Deployment (no cluster: the two API clients are stand-ins answering
as the real ones do): progress lines while it waits, and a timeout that names the pods' state
and quotes their last log lines."""

from __future__ import annotations

import logging
from types import SimpleNamespace
from typing import Any

import pytest

from clipper_admin.container_manager import ClusterAdapter
from clipper_admin.exceptions import ClipperException
from clipper_admin.kubernetes import api

POD_LOG = "loading weights from /model/weights.bin\nFATAL: /model/weights.bin is truncated\n"


def _pod(name: str) -> Any:
    waiting = SimpleNamespace(reason="CrashLoopBackOff", message="back-off 10s restarting failed container")
    status = SimpleNamespace(phase="Running", conditions=[],
                             container_statuses=[SimpleNamespace(state=SimpleNamespace(waiting=waiting),
                                                                 ready=False)])
    return SimpleNamespace(metadata=SimpleNamespace(name=name), status=status)


class _Apps:
    def __init__(self, available: int) -> None:
        self.available = available

    def read_namespaced_deployment_status(self, name: str, namespace: str) -> Any:
        return SimpleNamespace(status=SimpleNamespace(available_replicas=self.available, replicas=1))

    def read_namespaced_deployment(self, name: str, namespace: str) -> Any:
        return SimpleNamespace(spec=SimpleNamespace(selector=SimpleNamespace(match_labels={"app": name})))


class _Core:
    def __init__(self) -> None:
        self.log_requests: list[tuple[str, int]] = []

    def list_namespaced_pod(self, namespace: str, label_selector: str) -> Any:
        assert label_selector == "app=m-1-deployment"
        return SimpleNamespace(items=[_pod("m-1-deployment-abc12")])

    def read_namespaced_pod_log(self, name: str, namespace: str, tail_lines: int) -> str:
        self.log_requests.append((name, tail_lines))
        return POD_LOG


class _Waiter(api.KubernetesApiMixin):
    def __init__(self, available: int, timeout_s: float) -> None:
        self._core = _Core()  # type: ignore[assignment]
        self._apps = _Apps(available)  # type: ignore[assignment]
        self.k8s_namespace = "clipper"
        self.deployment_timeout_s = timeout_s
        self.logger = ClusterAdapter(logging.getLogger("clipper_admin.kubernetes.api"), {"cluster_name": "k"})


def test_a_deployment_that_never_gets_ready_quotes_its_pods_logs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(api, "POLL_INTERVAL_S", 0.01)
    waiter = _Waiter(available=0, timeout_s=0.1)
    with pytest.raises(ClipperException) as info:
        waiter._wait_for_deployment("m-1-deployment", 1, "Could not create a Kubernetes deployment: m-1")
    first, _, rest = str(info.value).partition("\n")
    assert first.startswith("Could not create a Kubernetes deployment: m-1 (pods: m-1-deployment-abc12: "
                            "Running; CrashLoopBackOff: back-off 10s restarting failed container")
    assert rest == "Last log lines of pod m-1-deployment-abc12:\n" + POD_LOG.rstrip()
    assert waiter._core.log_requests == [("m-1-deployment-abc12", api.POD_LOG_TAIL_LINES)]  # type: ignore[attr-defined]


def test_waiting_for_a_deployment_says_what_and_how_long(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="clipper_admin.kubernetes.api"):
        _Waiter(available=1, timeout_s=5)._wait_for_deployment("m-1-deployment", 1, "unused")
    assert caplog.records[0].getMessage() == (
        "[k] Waiting for Deployment m-1-deployment to have 1 available pods (timeout 5 s)"
    )
    assert caplog.records[-1].getMessage().startswith("[k] Deployment m-1-deployment is ready after ")
