"""benchmarks/selection.py's measurement, without scikit-learn or a cluster: Fig. 8's offline
replay through the policy classes, the final-window error, and the JSON's compaction."""

from __future__ import annotations

import numpy as np

from benchmarks.selection import ROLLING_STEP, SelectionBenchConfig, compact, rolling, simulate_fig8


def _stream(rounds: int) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """``best`` always right, ``fair`` wrong on every 10th input, ``poor`` on every other one."""
    labels = np.arange(rounds) % 10
    wrong = (labels + 3) % 10
    index = np.arange(rounds)
    offline = {
        "best": labels.copy(),
        "fair": np.where(index % 10 == 0, wrong, labels),
        "poor": np.where(index % 2 == 0, wrong, labels),
    }
    return labels, offline


def test_replay_reroutes_around_the_broken_model_and_reports_the_final_window() -> None:
    cfg = SelectionBenchConfig(fig8_rounds=600, degrade_at=200, repair_at=400, final_window=100, sim_seeds=3)
    labels, offline = _stream(cfg.fig8_rounds)
    sim = simulate_fig8(cfg, (np.zeros((len(labels), 1)), labels), offline, "best")
    assert sim["seeds"] == 3
    # Exp4 outvotes the broken model at once; after the repair its vote counts again.
    assert sim["exp4"]["mean_error"] < 0.1 and sim["exp4"]["final_window_error"] == 0.0
    assert sim["exp4"]["mean_error_sd"] == 0.0  # deterministic
    # Exp3 must explore, but ends far below the broken model's static error (1/3 overall) and
    # below the "poor" model's.
    assert sim["exp3"]["mean_error"] < 0.2 and sim["exp3"]["final_window_error"] < 0.2
    assert sim["exp3"]["mean_error_sd"] >= 0.0


def test_compaction_keeps_every_tenth_point_of_the_curves() -> None:
    curve = rolling([float(i % 2) for i in range(50)], window=10)
    assert curve[0] == 0.0 and curve[-1] == 0.5
    results = {
        "fig8": {"rolling_error": {"exp3": curve}},
        "fig9": {app: {"latencies_ms": [1.234567]} for app in ("fig9-mitigated", "fig9-wait-all")},
    }
    out = compact(results)
    assert out["fig8"]["rolling_step"] == ROLLING_STEP
    kept = curve[ROLLING_STEP - 1 :: ROLLING_STEP]
    assert out["fig8"]["rolling_error"]["exp3"] == [round(v, 4) for v in kept] and len(kept) == 5
    assert out["fig9"]["fig9-mitigated"]["latencies_ms"] == [1.23]
