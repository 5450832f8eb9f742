"""The Kubernetes API plumbing of KubernetesContainerManager: loading a client, turning API
errors into ``ClipperException`` with the API server's reason, creating objects, and waiting for
Deployments and pods.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import logging
import time
from collections.abc import Callable, Iterator
from typing import Any, Final

import urllib3.exceptions
from kubernetes import client, config
from kubernetes.client.rest import ApiException

from clipper_admin._logging import WaitProgress
from clipper_admin.exceptions import ClipperException
from clipper_admin.kubernetes.manifests import Manifest

__all__ = ["KubernetesApiMixin", "api_errors", "load_api_client", "reason"]

logger = logging.getLogger(__name__)

POLL_INTERVAL_S: Final = 1.0
LOG_POD_PROBLEMS: Final = 5
# Log lines of each pod quoted when a Deployment does not become available.
POD_LOG_TAIL_LINES: Final = 20


def reason(e: ApiException) -> str:
    """``<status> <reason>: <message>`` of an API error (the message from its Status body)."""
    message = ""
    if e.body:
        try:
            message = json.loads(e.body).get("message", "")
        except (ValueError, AttributeError):
            message = str(e.body)[:300]
    return f"{e.status} {e.reason}" + (f": {message}" if message else "")


@contextlib.contextmanager
def api_errors(action: str) -> Iterator[None]:
    """Turn a failing API call into ``ClipperException("<action>. Reason: ...")``."""
    try:
        yield
    except ApiException as e:
        logger.warning("%s: %s", action, reason(e))
        raise ClipperException(f"{action}. Reason: {reason(e)}") from e
    except urllib3.exceptions.HTTPError as e:
        logger.warning("%s: %s", action, e)
        raise ClipperException(f"{action}. Reason: the Kubernetes API server is unreachable: {e}") from e


def load_api_client(kube_config_file: str | None) -> client.ApiClient:
    """A client from the kubeconfig (``KUBECONFIG`` or ``~/.kube/config``), else in-cluster."""
    try:
        return config.new_client_from_config(config_file=kube_config_file)
    except (config.ConfigException, OSError) as kube_config_error:
        if kube_config_file is None:
            configuration = client.Configuration()
            try:
                config.load_incluster_config(client_configuration=configuration)
                return client.ApiClient(configuration)
            except config.ConfigException:
                pass
        raise ClipperException(
            "Could not load a Kubernetes configuration (set KUBECONFIG, or write ~/.kube/config, "
            f"or run inside a pod): {kube_config_error}"
        ) from kube_config_error


class KubernetesApiMixin:
    """API helpers over the clients and namespace the manager sets up."""

    _core: client.CoreV1Api
    _apps: client.AppsV1Api
    k8s_namespace: str
    deployment_timeout_s: float
    logger: logging.LoggerAdapter  # type: ignore[type-arg]

    @property
    def _ns(self) -> str:
        return self.k8s_namespace

    def _create(self, create: Callable[..., Any], body: Manifest, namespaced: bool = True) -> None:
        """Create one object; an existing one is logged and kept (as the original does)."""
        what = f"{body['kind']} {body['metadata']['name']}"
        try:
            if namespaced:
                create(namespace=self._ns, body=body)
            else:
                create(body=body)
        except ApiException as e:
            if e.status == 409:
                self.logger.info("%s already exists, skipping!", what)
                return
            raise ClipperException(f"Could not create {what}. Reason: {reason(e)}") from e
        except urllib3.exceptions.HTTPError as e:
            raise ClipperException(f"Could not create {what}. Reason: {e}") from e

    def _wait_for_deployment(self, name: str, replicas: int, error: str) -> None:
        """Poll until ``replicas`` pods of Deployment ``name`` are available (and no more exist)."""
        deadline = time.monotonic() + self.deployment_timeout_s
        progress = WaitProgress(
            self.logger, f"Deployment {name}", self.deployment_timeout_s, f"to have {replicas} available pods"
        )
        while True:
            progress.tick()
            with api_errors(f"Could not read Deployment {name}"):
                status = self._apps.read_namespaced_deployment_status(name, self._ns).status
            available = status.available_replicas or 0
            current = status.replicas or 0
            if available == replicas and current == replicas:
                progress.done()
                return
            if time.monotonic() > deadline:
                raise ClipperException(
                    f"{error} ({self._pod_problems(name)}){self._pod_log_tails(name)}"
                )
            time.sleep(POLL_INTERVAL_S)

    def _pod_problems(self, deployment: str) -> str:
        """Why pods of a Deployment are not ready, for the timeout message."""
        try:
            selector = self._apps.read_namespaced_deployment(deployment, self._ns).spec.selector.match_labels
            pods = self._core.list_namespaced_pod(
                self._ns, label_selector=",".join(f"{k}={v}" for k, v in selector.items())
            ).items
        except (ApiException, urllib3.exceptions.HTTPError) as e:
            return f"pods unknown: {e}"
        problems = []
        for pod in pods[:LOG_POD_PROBLEMS]:
            reasons = [pod.status.phase or "?"]
            for status in pod.status.container_statuses or []:
                waiting = status.state.waiting if status.state else None
                if waiting is not None:
                    reasons.append(f"{waiting.reason}: {waiting.message or ''}".strip())
                elif not status.ready:
                    reasons.append("not ready")
            for condition in pod.status.conditions or []:
                if condition.status != "True" and condition.message:
                    reasons.append(condition.message)
            problems.append(f"{pod.metadata.name}: {'; '.join(reasons)}")
        return "pods: " + (" | ".join(problems) if problems else "none created")

    def _pod_log_tails(self, deployment: str) -> str:
        """The last log lines of the Deployment's first pods that have a log, for the timeout
        message ("" when none has one yet)."""
        try:
            selector = self._apps.read_namespaced_deployment(deployment, self._ns).spec.selector.match_labels
            pods = self._core.list_namespaced_pod(
                self._ns, label_selector=",".join(f"{k}={v}" for k, v in selector.items())
            ).items
        except (ApiException, urllib3.exceptions.HTTPError):
            return ""
        tails = []
        for pod in pods[:LOG_POD_PROBLEMS]:
            try:
                text = self._core.read_namespaced_pod_log(
                    pod.metadata.name, self._ns, tail_lines=POD_LOG_TAIL_LINES
                )
            except (ApiException, urllib3.exceptions.HTTPError):
                continue
            if text and text.strip():
                tails.append(f"\nLast log lines of pod {pod.metadata.name}:\n{text.rstrip()}")
        return "".join(tails)

    def _wait_until_no_pods(self, selector: str) -> None:
        """Poll until no pod matches ``selector`` (their containers have stopped)."""
        deadline = time.monotonic() + self.deployment_timeout_s
        while True:
            with api_errors("Could not list pods"):
                pods = self._core.list_namespaced_pod(self._ns, label_selector=selector).items
            if not pods:
                return
            if time.monotonic() > deadline:
                names = ", ".join(p.metadata.name for p in pods)
                raise ClipperException(f"Pods still running after {self.deployment_timeout_s:.0f} s: {names}")
            time.sleep(POLL_INTERVAL_S)

    def _nodes_are_this_machine(self) -> bool:
        """True when every node's InternalIP is a loopback address (a single-machine cluster)."""
        with api_errors("Could not list the Kubernetes nodes"):
            nodes = self._core.list_node().items
        addresses = [a.address for n in nodes for a in (n.status.addresses or []) if a.type == "InternalIP"]
        try:
            return bool(addresses) and all(ipaddress.ip_address(a).is_loopback for a in addresses)
        except ValueError:
            return False

    def _running_pod(self, selector: str, what: str) -> Any:
        with api_errors(f"Could not list the pods of {what}"):
            pods = self._core.list_namespaced_pod(self._ns, label_selector=selector).items
        for pod in pods:
            if (
                pod.status.phase == "Running"
                and pod.status.host_ip
                and pod.metadata.deletion_timestamp is None
            ):
                return pod
        raise ClipperException(
            f"Could not connect to Clipper Kubernetes cluster. Reason: no running pod of {what}"
        )
