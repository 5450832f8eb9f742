"""Run a Clipper cluster on Kubernetes: the container manager and its manifests."""

from clipper_admin.kubernetes.kubernetes_container_manager import KubernetesContainerManager

__all__ = ["KubernetesContainerManager"]
