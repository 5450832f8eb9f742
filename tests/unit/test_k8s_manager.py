"""KubernetesContainerManager checks that fail before any API call (no cluster needed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from clipper_admin import ClipperException, KubernetesContainerManager


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
