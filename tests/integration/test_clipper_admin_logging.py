"""A REPL user sees clipper_admin's INFO progress lines; an application's own logging setup wins."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.helpers import REPO_ROOT

SCRIPT = """
import logging, sys, tempfile
import clipper_admin
from clipper_admin import ClipperConnection, LocalContainerManager
setup = sys.argv[1]
if setup == "app-warning":
    logging.basicConfig(level=logging.WARNING, format="APP %(message)s")
elif setup == "app-info":
    logging.basicConfig(level=logging.INFO, format="APP %(message)s")
elif setup == "app-debug-for-clipper":
    logging.basicConfig(level=logging.WARNING, format="APP %(message)s")
    logging.getLogger("clipper_admin").setLevel(logging.DEBUG)
conn = ClipperConnection(LocalContainerManager(cluster_name="c", clipper_home=tempfile.mkdtemp()))
conn.stop_all()  # logs INFO "Stopped all Clipper cluster and all model containers"
logging.getLogger("app").warning("the application's own warning")
"""
STOPPED = "Stopped all Clipper cluster and all model containers"


def run(setup: str) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, setup], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return done.stderr.splitlines()


def test_without_logging_configured_info_lines_show_in_the_original_format() -> None:
    lines = [line for line in run("none") if STOPPED in line]
    assert len(lines) == 1
    assert " INFO     [clipper_admin.py:" in lines[0] and "[c] " + STOPPED in lines[0]


@pytest.mark.parametrize(
    ("setup", "expected"),
    [
        ("app-warning", ["APP the application's own warning"]),  # the app's level hides INFO
        ("app-info", [f"APP [c] {STOPPED}", "APP the application's own warning"]),  # once, app format
        ("app-debug-for-clipper", [f"APP [c] {STOPPED}", "APP the application's own warning"]),
    ],
)
def test_an_application_configuration_is_respected(setup: str, expected: list[str]) -> None:
    lines = [line for line in run(setup) if STOPPED in line or "own warning" in line]
    assert lines == expected
