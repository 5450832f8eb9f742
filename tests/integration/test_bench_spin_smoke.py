"""`python -m benchmarks.spin --smoke`: the polling-off against polling-on harness runs end to end
with real answers from both clusters, and the two clusters really differ: at concurrency 1 the
polling model container spends more CPU per request (it polls between requests) than the
sleeping one. The bound is set far above any gap between two requests of a smoke run (with
wrk or the slower Python client), so the polling side never stops polling for want of a long
enough window. No speed is asserted (2 shared cores)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import REPO_ROOT

SMOKE_TIMEOUT_S = 180
# Microseconds: far longer than a lone client's round trip on any host this runs on.
POLL_BOUND_US = 50_000


@pytest.mark.slow
@pytest.mark.timeout(SMOKE_TIMEOUT_S + 30)
def test_spin_off_against_on_smoke(tmp_path: Path) -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "benchmarks.spin", "--smoke", "--spin-us", str(POLL_BOUND_US),
         "--out", str(tmp_path)],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=SMOKE_TIMEOUT_S, check=False,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    figures = json.loads((tmp_path / "spin.json").read_text(encoding="utf-8"))["spin"]
    assert figures["spin_us"] == POLL_BOUND_US
    for concurrency, measured in figures["by_concurrency"].items():
        for side in ("reference", "spin_off", "spin_on"):
            assert measured[side]["goodput_qps"] > 0, (concurrency, side)
            assert measured[side]["errors"] == 0, (concurrency, side)
            requests = sum(r["requests"] for r in measured[side]["rounds"])
            assert measured[side]["defaults"] * 2 < requests, (concurrency, side)
    lone = figures["by_concurrency"]["1"]
    key = "cpu_us_per_request_container_0"
    assert lone["spin_on"][key] > lone["spin_off"][key], (lone["spin_on"][key], lone["spin_off"][key])
