"""`python -m benchmarks.frontends --smoke`: the 1-against-2 query frontends harness runs end to
end, every query is answered by the model, and with several connections both frontends sharing
the REST port take a share of them (no speed is asserted: 2 shared cores)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import REPO_ROOT

SMOKE_TIMEOUT_S = 180


@pytest.mark.slow
@pytest.mark.timeout(SMOKE_TIMEOUT_S + 30)
def test_one_against_two_frontends_smoke(tmp_path: Path) -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "benchmarks.frontends", "--smoke", "--out", str(tmp_path)],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=SMOKE_TIMEOUT_S, check=False,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    figures = json.loads((tmp_path / "frontends.json").read_text(encoding="utf-8"))["frontends"]
    for concurrency, measured in figures["by_concurrency"].items():
        for side in ("reference", "one_frontend", "two_frontends"):
            assert measured[side]["goodput_qps"] > 0, (concurrency, side)
            assert measured[side]["errors"] == 0, (concurrency, side)
            # Most answers come from the model; a rare SLO default on a loaded machine is no failure.
            requests = sum(r["requests"] for r in measured[side]["rounds"])
            assert measured[side]["defaults"] * 2 < requests, (concurrency, side)
        assert measured["one_frontend"]["share_per_frontend"] == [1.0]
        assert measured["two_frontends"]["cpu_us_per_request_serving"] > 0
    shares = figures["by_concurrency"]["8"]["two_frontends"]["share_per_frontend"]
    assert len(shares) == 2 and min(shares) > 0 and sum(shares) == pytest.approx(1.0, abs=0.01), shares
