"""The quickstart: `make quickstart` runs examples/basic_query/example.py end to end."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from tests.helpers import REPO_ROOT, canned_http_server

EXAMPLE = REPO_ROOT / "examples" / "basic_query" / "example.py"


def _processes_under(home: Path) -> list[psutil.Process]:
    """Processes whose command line or working directory points into ``home``."""
    found = []
    for proc in psutil.process_iter(["cmdline", "cwd"]):
        cmdline = " ".join(proc.info["cmdline"] or [])
        if str(home) in cmdline or str(home) in (proc.info["cwd"] or ""):
            found.append(proc)
    return found


def test_make_quickstart_installs_then_runs_the_example() -> None:
    if shutil.which("make") is None:
        pytest.fail("make is not installed")
    dry_run = subprocess.run(
        ["make", "--no-print-directory", "-n", "quickstart"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert dry_run.returncode == 0, dry_run.stderr
    lines = dry_run.stdout.splitlines()
    assert any("pip install" in line for line in lines)  # the install target runs first
    assert lines[-1].endswith("examples/basic_query/example.py")


def test_readme_opens_with_the_quickstart() -> None:
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    head = readme[: readme.index("## About")] if "## About" in readme else readme[:2000]
    assert "make quickstart" in head
    assert (
        "curl -X POST --header \"Content-Type:application/json\" -d '{\"input\": [1.1, 2.2, 3.3]}' "
        "127.0.0.1:1337/hello-world/predict"
    ) in head


@pytest.mark.slow
def test_quickstart_example_prints_the_sum_and_stops_everything(
    tmp_path: Path, subprocess_env: dict[str, str]
) -> None:
    env = dict(subprocess_env, CLIPPER_HOME=str(tmp_path))
    done = subprocess.run(
        [sys.executable, str(EXAMPLE)], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=150
    )
    assert done.returncode == 0, done.stdout + done.stderr
    replies = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    assert len(replies) == 1
    assert replies[0]["default"] is False
    assert replies[0]["output"] == pytest.approx(6.6)
    assert "Clipper is running" in done.stderr
    assert "Stopped all Clipper cluster and all model containers" in done.stderr
    assert not (tmp_path / "clusters" / "default-cluster" / "cluster.json").exists()
    assert _processes_under(tmp_path) == []


def test_quickstart_example_reports_an_error_reply_instead_of_crashing() -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location("quickstart_example", EXAMPLE)
    assert spec is not None and spec.loader is not None
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    not_found = b'{"error": "Not found", "cause": "Application hello-world does not exist"}'
    with canned_http_server(404, not_found) as port, pytest.raises(
        example.QueryFailed, match=r"HTTP 404: .*hello-world does not exist"
    ):
        example.predict_until_answered(f"127.0.0.1:{port}")
