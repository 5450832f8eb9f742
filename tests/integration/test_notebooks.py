"""The example notebooks run headless (nbclient, a kernel on this interpreter): a notebook that
stops working fails the tests. Each runs with its own CLIPPER_HOME, from a temporary directory."""

from __future__ import annotations

import os
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from clipper_admin import ClipperConnection, LocalContainerManager
from tests.helpers import REPO_ROOT

NOTEBOOKS = REPO_ROOT / "examples" / "notebooks"
CELL_TIMEOUT_S = 120


def _run(notebook: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> nbformat.NotebookNode:
    # The kernel inherits this environment: this checkout first, a cluster directory of its own.
    monkeypatch.setenv("CLIPPER_HOME", str(tmp_path / "clipper_home"))
    path = os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))
    monkeypatch.setenv("PYTHONPATH", path)
    nb = nbformat.read(notebook, as_version=4)
    # "python3" is ipykernel's native kernel: jupyter_client runs it on this interpreter
    # (sys.executable), so nothing needs to be installed as a kernelspec.
    client = NotebookClient(nb, timeout=CELL_TIMEOUT_S, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}})
    try:
        client.execute()
    finally:
        # A notebook that failed half-way leaves no cluster behind.
        for record in (tmp_path / "clipper_home" / "clusters").glob("*/cluster.json"):
            manager = LocalContainerManager(cluster_name=record.parent.name,
                                            clipper_home=str(tmp_path / "clipper_home"))
            ClipperConnection(manager).stop_all()
    return nb


def _text(cell: nbformat.NotebookNode) -> str:
    return "".join(
        str(o.get("text", "")) + str(o.get("data", {}).get("text/plain", "")) for o in cell.outputs
    )


def test_quickstart_notebook_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    nb = _run(NOTEBOOKS / "quickstart.ipynb", tmp_path, monkeypatch)
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    assert all(not any(o.output_type == "error" for o in cell.outputs) for cell in code)
    outputs = "\n".join(_text(cell) for cell in code)
    assert "Clipper is running" in outputs  # the library's INFO lines reach the notebook
    assert "'output': 6.0" in _text(code[-2])  # the rolled-back version answers
    assert not (tmp_path / "clipper_home" / "clusters" / "quickstart" / "cluster.json").exists()


def test_every_notebook_is_tested() -> None:
    assert sorted(p.name for p in NOTEBOOKS.glob("*.ipynb")) == ["quickstart.ipynb"]
