"""``make bench-selection``: the model selection layer (issue 15) against the paper's Figs. 7-9.

scikit-learn's digits (shipped inside the package), five scikit-learn models of different
accuracy, each deployed as a real closure container through ``LocalContainerManager``, queried
over HTTP and taught over ``/<app>/update`` like any client would:

* **Fig. 8 (re-routing)**: the best model's function starts answering wrongly after
  ``degrade_at`` rounds and is repaired at ``repair_at``; an Exp3 app and an Exp4 app answer and
  learn every round. Their rolling error is plotted against every static single-model choice
  (whose error follows from the same deterministic functions, computed here). Reported: the
  error over time, per phase, overall and in the final window (the last ``final_window`` rounds,
  after the repair). One HTTP run is one draw of Exp3's randomness, so the same stream is also
  replayed offline through the policy classes themselves (``Exp3Policy``/``Exp4Policy``, fed the
  models' recorded predictions) over ``sim_seeds`` seeds: the mean and spread of what the
  policies' parameters give.
* **Fig. 7 (ensembles and confidence)**: an Exp4 app (confidence threshold 0, so every answer is
  the ensemble's) learns for ``fig7_rounds`` rounds; its error against the best single model's,
  and the error of the answers given at high confidence against all answers, per threshold.
* **Fig. 9 (stragglers)**: the best model made slow (with probability ``slow_p`` a batch takes
  ``slow_s`` > SLO) in a five-member ensemble; latency and accuracy with straggler mitigation
  (SLO ``slo_ms``: answer at the deadline with the members that answered) against waiting for
  every member (the same app with a long SLO).

Writes ``benchmarks/results/selection.json`` and three PNGs; prints a summary table.
Run: ``python -m benchmarks.selection [--smoke] [--out DIR]`` (needs the ``bench`` extra).
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import requests

from clipper_admin import ClipperConnection, LocalContainerManager
from clipper_admin.deployers import python as python_deployer

logger = logging.getLogger("benchmarks.selection")

RESULTS_DIR = Path(__file__).resolve().parent / "results"
WINDOW = 100  # rounds per point of the rolling error curves
HIGH_CONFIDENCE = 0.9


@dataclass(frozen=True)
class SelectionBenchConfig:
    train_size: int = 300
    fig8_rounds: int = 1500
    degrade_at: int = 500
    repair_at: int = 1000
    final_window: int = 300
    sim_seeds: int = 40
    fig7_rounds: int = 600
    fig9_queries: int = 300
    slo_ms: float = 50.0
    slow_p: float = 0.2
    slow_s: float = 0.2

    @classmethod
    def smoke(cls) -> SelectionBenchConfig:
        return cls(
            fig8_rounds=60, degrade_at=20, repair_at=40, final_window=10, sim_seeds=2, fig7_rounds=30,
            fig9_queries=20,
        )


# ------------------------------------------------------------------------------------ models


def train_models(train_size: int) -> tuple[dict[str, Any], np.ndarray, np.ndarray]:
    """Five classifiers of different accuracy, trained on the first ``train_size`` digits;
    returns them with the held-out inputs and labels (the query stream)."""
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression
    from sklearn.naive_bayes import GaussianNB
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.svm import SVC
    from sklearn.tree import DecisionTreeClassifier

    inputs, labels = load_digits(return_X_y=True)
    order = np.random.default_rng(0).permutation(len(labels))
    inputs, labels = inputs[order].astype(float), labels[order]
    train_x, train_y = inputs[:train_size], labels[:train_size]
    models = {
        "svm": SVC(gamma=0.001),
        "knn": KNeighborsClassifier(5),
        "logreg": LogisticRegression(max_iter=2000),
        "nb": GaussianNB(),
        "tree": DecisionTreeClassifier(max_depth=6, random_state=0),
    }
    for model in models.values():
        model.fit(train_x, train_y)
    return models, inputs[train_size:], labels[train_size:]


def make_predict(
    model: Any, degrade_flag: str | None = None, slow_p: float = 0.0, slow_s: float = 0.0
) -> Callable[[list[Any]], list[str]]:
    """The closure a container serves: the model's digit per input; while ``degrade_flag`` exists
    it answers (digit + 1) mod 10 (broken); with probability ``slow_p`` a batch takes ``slow_s``."""

    def predict(inputs: list[Any]) -> list[str]:
        import os
        import random
        import time as _time

        import numpy as _np

        digits = model.predict(_np.asarray(inputs, dtype=float).reshape(len(inputs), -1))
        if degrade_flag is not None and os.path.exists(degrade_flag):
            digits = (digits + 1) % 10
        if slow_p and random.random() < slow_p:
            _time.sleep(slow_s)
        return [str(int(d)) for d in digits]

    return predict


# ------------------------------------------------------------------------------------ client


class Client:
    """Keep-alive HTTP to the query frontend."""

    def __init__(self, query_addr: str) -> None:
        self.base = f"http://{query_addr}"
        self.session = requests.Session()

    def predict(self, app: str, x: Sequence[float]) -> tuple[dict[str, Any], float]:
        start = time.perf_counter()
        response = self.session.post(f"{self.base}/{app}/predict", json={"input": list(x)}, timeout=30)
        elapsed = time.perf_counter() - start
        response.raise_for_status()
        return response.json(), elapsed

    def server_latency_ms(self, app: str) -> dict[str, float]:
        """The frontend's own view of the app's query latency (the original's JSON report)."""
        report = self.session.get(f"{self.base}/metrics", timeout=30).json()
        for entry in report.get("histograms", []):
            fields = entry.get(f"app:{app}:prediction_latency")
            if fields is not None:
                return {q: float(fields[q]) / 1e3 for q in ("p50", "p99", "max")}
        return {}

    def update(self, app: str, x: Sequence[float], label: int) -> bool:
        body = {"uid": 0, "input": list(x), "label": float(label)}
        response = self.session.post(f"{self.base}/{app}/update", json=body, timeout=30)
        return response.text == "Feedback received? 1"


def is_right(answer: dict[str, Any], label: int) -> bool:
    return not answer["default"] and answer["output"] == label


def jittered(x: np.ndarray, salt: float) -> list[float]:
    """A unique input (so no answer comes from the prediction cache) with the same digit."""
    values = [float(v) for v in x]
    values[0] += salt
    return values


def rolling(values: Sequence[float], window: int = WINDOW) -> list[float]:
    out, total = [], 0.0
    for i, value in enumerate(values):
        total += value
        if i >= window:
            total -= values[i - window]
        out.append(total / min(i + 1, window))
    return out


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


# ------------------------------------------------------------------------------------ figures


def figure8(
    conn: ClipperConnection,
    client: Client,
    cfg: SelectionBenchConfig,
    stream: tuple[np.ndarray, np.ndarray],
    offline: dict[str, np.ndarray],
    flag: Path,
    best: str,
) -> dict[str, Any]:
    inputs, labels = stream
    errors: dict[str, list[float]] = {"exp3": [], "exp4": []}
    static: dict[str, list[float]] = {name: [] for name in offline}
    for i in range(cfg.fig8_rounds):
        if i == cfg.degrade_at:
            flag.touch()
        if i == cfg.repair_at:
            flag.unlink()
        k = i % len(labels)
        label = int(labels[k])
        for policy, salt in (("exp3", 1e-6), ("exp4", 2e-6)):
            x = jittered(inputs[k], salt * (i + 1))
            answer, _ = client.predict(f"fig8-{policy}", x)
            errors[policy].append(0.0 if is_right(answer, label) else 1.0)
            client.update(f"fig8-{policy}", x, label)
        broken = cfg.degrade_at <= i < cfg.repair_at
        for name, predictions in offline.items():
            predicted = (predictions[k] + 1) % 10 if (name == best and broken) else predictions[k]
            static[name].append(0.0 if predicted == label else 1.0)
    weights = {policy: conn.get_app_info(f"fig8-{policy}") for policy in ("exp3", "exp4")}
    mean = {name: statistics.fmean(values) for name, values in {**errors, **static}.items()}
    phases = {}
    for phase, (lo, hi) in {
        "before": (0, cfg.degrade_at),
        "degraded": (cfg.degrade_at, cfg.repair_at),
        "repaired": (cfg.repair_at, cfg.fig8_rounds),
    }.items():
        phases[phase] = {
            name: statistics.fmean(values[lo:hi]) for name, values in {**errors, **static}.items()
        }
    final = {
        name: statistics.fmean(values[-cfg.final_window :]) for name, values in {**errors, **static}.items()
    }
    return {
        "rounds": cfg.fig8_rounds,
        "degrade_at": cfg.degrade_at,
        "repair_at": cfg.repair_at,
        "degraded_model": best,
        "final_window": cfg.final_window,
        "mean_error": mean,
        "final_window_error": final,
        "phase_error": phases,
        "simulated": simulate_fig8(cfg, stream, offline, best),
        "rolling_error": {name: rolling(values) for name, values in {**errors, **static}.items()},
        "final_weights": {p: (info or {}).get("selection_weights") for p, info in weights.items()},
    }


def simulate_fig8(
    cfg: SelectionBenchConfig,
    stream: tuple[np.ndarray, np.ndarray],
    offline: dict[str, np.ndarray],
    best: str,
) -> dict[str, Any]:
    """Fig. 8's stream replayed offline through the policy classes (the server's own code, fed
    the models' recorded predictions and the same breakage) over ``cfg.sim_seeds`` seeds of
    Exp3's draws: mean error overall and in the final window, with their standard deviation."""
    import random

    from clipper_core.query_frontend.selection import Exp3Policy, Exp4Policy, Feedback, SelectionQuery
    from clipper_core.state import ModelId, PolicyState

    _, labels = stream
    candidates = tuple(ModelId(name, "1") for name in offline)
    query = SelectionQuery("sim", 0, candidates)

    def output(name: str, i: int) -> bytes:
        k = i % len(labels)
        digit = int(offline[name][k])
        if name == best and cfg.degrade_at <= i < cfg.repair_at:
            digit = (digit + 1) % 10
        return str(digit).encode()

    def replay(policy: Exp3Policy | Exp4Policy) -> list[float]:
        state, errors = PolicyState(), []
        for i in range(cfg.fig8_rounds):
            label = float(labels[i % len(labels)])
            asked = policy.select(state, query)
            outputs = {model: output(model.name, i) for model in asked}
            answer = policy.combine(state, query, outputs).output
            errors.append(0.0 if answer is not None and float(answer) == label else 1.0)
            losses = {m.name: float(float(out) != label) for m, out in outputs.items()}
            state = policy.observe(state, query, Feedback(label, losses))
        return errors

    runs = {
        "exp3": [replay(Exp3Policy(rng=random.Random(seed))) for seed in range(cfg.sim_seeds)],
        "exp4": [replay(_exp4_without_threshold())],  # deterministic: one run is every run
    }
    out: dict[str, Any] = {"seeds": cfg.sim_seeds}
    for name, errors in runs.items():
        overall = [statistics.fmean(e) for e in errors]
        final = [statistics.fmean(e[-cfg.final_window :]) for e in errors]
        out[name] = {
            "mean_error": statistics.fmean(overall),
            "mean_error_sd": statistics.pstdev(overall),
            "final_window_error": statistics.fmean(final),
            "final_window_error_sd": statistics.pstdev(final),
        }
    return out


def _exp4_without_threshold() -> Any:
    from clipper_core.query_frontend.selection import Exp4Policy

    policy = Exp4Policy()
    policy.threshold = 0.0  # as the fig8-exp4 app: every answer is the ensemble's
    return policy


def figure7(
    client: Client,
    cfg: SelectionBenchConfig,
    stream: tuple[np.ndarray, np.ndarray],
    offline: dict[str, np.ndarray],
    start: int,
) -> dict[str, Any]:
    inputs, labels = stream
    records: list[tuple[float, bool]] = []
    for i in range(cfg.fig7_rounds):
        k = (start + i) % len(labels)
        label = int(labels[k])
        x = jittered(inputs[k], 3e-6 * (i + 1))
        answer, _ = client.predict("fig7-exp4", x)
        records.append((float(answer.get("confidence") or 0.0), is_right(answer, label)))
        client.update("fig7-exp4", x, label)
    ks = [(start + i) % len(labels) for i in range(cfg.fig7_rounds)]
    single = {name: statistics.fmean(float(p[k] != labels[k]) for k in ks) for name, p in offline.items()}
    best = min(single, key=single.__getitem__)
    learned = records[len(records) // 3 :]  # after the first third: weights have settled
    thresholds = [0.0, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 1.0]
    curve = []
    for threshold in thresholds:
        kept = [right for confidence, right in learned if confidence >= threshold - 1e-9]
        curve.append(
            {
                "threshold": threshold,
                "coverage": len(kept) / len(learned),
                "error": 1 - statistics.fmean(kept) if kept else None,
            }
        )
    high = [right for confidence, right in learned if confidence >= HIGH_CONFIDENCE]
    return {
        "rounds": cfg.fig7_rounds,
        "ensemble_error_all": 1 - statistics.fmean(r for _, r in records),
        "ensemble_error_after_learning": 1 - statistics.fmean(r for _, r in learned),
        "single_model_error": single,
        "best_single_model": best,
        "best_single_error_after_learning": statistics.fmean(
            float(offline[best][k] != labels[k]) for k in ks[len(records) // 3 :]
        ),
        "high_confidence_threshold": HIGH_CONFIDENCE,
        "high_confidence_error": 1 - statistics.fmean(high) if high else None,
        "high_confidence_coverage": len(high) / len(learned),
        "threshold_curve": curve,
    }


def figure9(
    client: Client, cfg: SelectionBenchConfig, stream: tuple[np.ndarray, np.ndarray]
) -> dict[str, Any]:
    inputs, labels = stream
    out: dict[str, Any] = {"slo_ms": cfg.slo_ms, "slow_p": cfg.slow_p, "slow_s": cfg.slow_s}
    for app, salt in (("fig9-mitigated", 4e-6), ("fig9-wait-all", 5e-6)):
        latencies, rights, answered = [], [], []
        for i in range(cfg.fig9_queries):
            k = i % len(labels)
            answer, elapsed = client.predict(app, jittered(inputs[k], salt * (i + 1)))
            latencies.append(elapsed * 1e3)
            rights.append(is_right(answer, int(labels[k])))
            answered.append(int(answer.get("members_answered") or 0))
        out[app] = {
            "p50_ms": percentile(latencies, 0.5),
            "p99_ms": percentile(latencies, 0.99),
            "max_ms": max(latencies),
            "error": 1 - statistics.fmean(rights),
            "mean_members_answered": statistics.fmean(answered),
            "complete_share": statistics.fmean(a == 5 for a in answered),
            "server_latency_ms": client.server_latency_ms(app),
            "latencies_ms": latencies,
        }
    return out


# ------------------------------------------------------------------------------------ plots


def plot(results: dict[str, Any], out_dir: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    fig8 = results["fig8"]
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for name, curve in fig8["rolling_error"].items():
        is_policy = name in ("exp3", "exp4")
        ax.plot(
            curve,
            label=name if is_policy else f"static {name}",
            linewidth=2.2 if is_policy else 1,
            linestyle="-" if is_policy else "--",
        )
    for x in (fig8["degrade_at"], fig8["repair_at"]):
        ax.axvline(x, color="grey", linewidth=0.8)
    ax.axvspan(fig8["rounds"] - fig8["final_window"], fig8["rounds"], color="grey", alpha=0.1,
               label=f"final window ({fig8['final_window']} rounds)")
    ax.set(
        xlabel="feedback round",
        ylabel=f"error (rolling, {WINDOW} rounds)",
        ylim=(0, 1),
        title=(
            f"Fig. 8-like: {fig8['degraded_model']} broken in rounds "
            f"{fig8['degrade_at']}-{fig8['repair_at']}"
        ),
    )
    ax.legend(fontsize=8, ncol=2)
    fig.tight_layout()
    fig.savefig(out_dir / "selection_fig8_rerouting.png", dpi=110)
    written.append("selection_fig8_rerouting.png")

    fig7 = results["fig7"]
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 4))
    names = [*fig7["single_model_error"], "exp4 ensemble"]
    values = [*fig7["single_model_error"].values(), fig7["ensemble_error_all"]]
    left.bar(names, values, color=["#999"] * (len(names) - 1) + ["#c33"])
    left.set(ylabel="error", title="Fig. 7-like: ensemble vs single models")
    left.tick_params(axis="x", rotation=30)
    curve = [p for p in fig7["threshold_curve"] if p["error"] is not None]
    right.plot(
        [p["threshold"] for p in curve],
        [p["error"] for p in curve],
        marker="o",
        label="error of kept answers",
    )
    right.plot(
        [p["threshold"] for p in curve], [p["coverage"] for p in curve], marker="s", label="share answered"
    )
    right.set(xlabel="confidence threshold", title="answers at or above a confidence")
    right.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out_dir / "selection_fig7_ensemble_confidence.png", dpi=110)
    written.append("selection_fig7_ensemble_confidence.png")

    fig9 = results["fig9"]
    fig, ax = plt.subplots(figsize=(7, 4))
    for app in ("fig9-mitigated", "fig9-wait-all"):
        ordered = sorted(fig9[app]["latencies_ms"])
        ax.plot(
            ordered,
            [i / len(ordered) for i in range(len(ordered))],
            label=(
                f"{app.split('-', 1)[1]}: p99 {fig9[app]['p99_ms']:.1f} ms, error {fig9[app]['error']:.3f}"
            ),
        )
    ax.axvline(fig9["slo_ms"], color="grey", linewidth=0.8)
    ax.set(
        xscale="log",
        xlabel="latency (ms, client side)",
        ylabel="share of queries",
        title=f"Fig. 9-like: one member slow (p={fig9['slow_p']}, {fig9['slow_s'] * 1e3:.0f} ms)",
    )
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out_dir / "selection_fig9_stragglers.png", dpi=110)
    written.append("selection_fig9_stragglers.png")
    plt.close("all")
    return written


# ------------------------------------------------------------------------------------ main


def wait_until_answering(
    client: Client, apps: Sequence[str], x: Sequence[float], members: int, timeout_s: float = 120.0
) -> None:
    deadline = time.monotonic() + timeout_s
    for app in apps:
        while True:
            answer, _ = client.predict(app, x)
            if answer.get("members_answered", 1 if not answer["default"] else 0) >= members:
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"{app}: not every model answers after {timeout_s} s: {answer}")
            time.sleep(0.5)


def run(cfg: SelectionBenchConfig, out_dir: Path) -> dict[str, Any]:
    models, inputs, labels = train_models(cfg.train_size)
    offline = {name: model.predict(inputs) for name, model in models.items()}
    accuracy = {name: float(np.mean(p == labels)) for name, p in offline.items()}
    best = max(accuracy, key=accuracy.__getitem__)
    logger.info("Held-out accuracy: %s", {k: round(v, 3) for k, v in accuracy.items()})
    with tempfile.TemporaryDirectory(prefix="bench-selection-") as tmp:
        flag = Path(tmp) / f"{best}.broken"
        conn = ClipperConnection(LocalContainerManager(cluster_name="bench-selection", clipper_home=tmp))
        conn.start_clipper()
        try:
            for name, model in models.items():
                func = make_predict(model, str(flag) if name == best else None)
                python_deployer.deploy_python_closure(
                    conn, name=name, version=1, input_type="doubles", func=func
                )
            slow = f"{best}-slow"
            python_deployer.deploy_python_closure(
                conn,
                name=slow,
                version=1,
                input_type="doubles",
                func=make_predict(models[best], None, cfg.slow_p, cfg.slow_s),
            )
            apps = {
                "fig8-exp3": ("exp3", 1_000_000, list(models), None),
                "fig8-exp4": ("exp4", 1_000_000, list(models), 0.0),
                "fig7-exp4": ("exp4", 1_000_000, list(models), 0.0),
                "fig9-mitigated": (
                    "exp4",
                    int(cfg.slo_ms * 1000),
                    [slow, *(m for m in models if m != best)],
                    0.0,
                ),
                "fig9-wait-all": ("exp4", 5_000_000, [slow, *(m for m in models if m != best)], 0.0),
            }
            for app, (policy, slo_us, linked, threshold) in apps.items():
                conn.register_application(
                    app, "doubles", "-1", slo_us, selection_policy=policy, confidence_threshold=threshold
                )
                for model_name in linked:
                    conn.link_model_to_app(app, model_name)
            client = Client(conn.get_query_addr())
            warm = [float(v) + 0.123 for v in inputs[0]]
            wait_until_answering(client, ["fig8-exp4", "fig9-wait-all"], warm, len(models))
            started = time.monotonic()
            results: dict[str, Any] = {
                "config": asdict(cfg),
                "model_accuracy": accuracy,
                "machine": {
                    "python": sys.version.split()[0],
                    "platform": platform.platform(),
                    "cpus": _cpus(),
                },
            }
            results["fig8"] = figure8(conn, client, cfg, (inputs, labels), offline, flag, best)
            results["fig7"] = figure7(client, cfg, (inputs, labels), offline, start=cfg.fig8_rounds)
            results["fig9"] = figure9(client, cfg, (inputs, labels))
            results["duration_s"] = time.monotonic() - started
        finally:
            conn.stop_all()
    out_dir.mkdir(parents=True, exist_ok=True)
    results["plots"] = plot(results, out_dir)
    (out_dir / "selection.json").write_text(_json_text(compact(results)))
    return results


ROLLING_STEP = 10  # every this many rounds of the rolling curves go into the JSON (the plot has all)


def _json_text(value: Any, indent: str = "") -> str:
    """Indented JSON whose lists of numbers stay on one line (the curves would be thousands)."""
    if isinstance(value, dict):
        inner = indent + " "
        items = [f"{inner}{json.dumps(k)}: {_json_text(v, inner)}" for k, v in value.items()]
        return "{\n" + ",\n".join(items) + f"\n{indent}}}" if items else "{}"
    return json.dumps(value)


def compact(results: dict[str, Any]) -> dict[str, Any]:
    """The JSON's copy: rolling curves every ``ROLLING_STEP`` rounds, values rounded, lists on one line."""
    out = json.loads(json.dumps(results))
    fig8 = out["fig8"]
    fig8["rolling_step"] = ROLLING_STEP
    fig8["rolling_error"] = {
        name: [round(v, 4) for v in curve[ROLLING_STEP - 1 :: ROLLING_STEP]]
        for name, curve in fig8["rolling_error"].items()
    }
    for app in ("fig9-mitigated", "fig9-wait-all"):
        out["fig9"][app]["latencies_ms"] = [round(v, 2) for v in out["fig9"][app]["latencies_ms"]]
    return out


def _cpus() -> int:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def summary(results: dict[str, Any]) -> str:
    f8, f7, f9 = results["fig8"], results["fig7"], results["fig9"]
    lines = [
        "model accuracy (held out): "
        + ", ".join(f"{k} {v:.3f}" for k, v in results["model_accuracy"].items())
    ]
    lines.append(
        f"Fig.8  {f8['degraded_model']} broken in rounds {f8['degrade_at']}-{f8['repair_at']} "
        f"of {f8['rounds']}; mean error:"
    )
    for name, value in sorted(f8["mean_error"].items(), key=lambda kv: kv[1]):
        phase = f8["phase_error"]
        lines.append(
            f"         {name:8s} {value:.3f}   (before {phase['before'][name]:.3f}, degraded "
            f"{phase['degraded'][name]:.3f}, repaired {phase['repaired'][name]:.3f}, last "
            f"{f8['final_window']} rounds {f8['final_window_error'][name]:.3f})"
        )
    sim = f8["simulated"]
    for name in ("exp3", "exp4"):
        r = sim[name]
        lines.append(
            f"       offline replay of {name} ({sim['seeds'] if name == 'exp3' else 1} seeds): mean error "
            f"{r['mean_error']:.3f} +- {r['mean_error_sd']:.3f}, last {f8['final_window']} rounds "
            f"{r['final_window_error']:.3f} +- {r['final_window_error_sd']:.3f}"
        )
    lines.append(
        f"Fig.7  exp4 ensemble error {f7['ensemble_error_after_learning']:.3f} after learning "
        f"(all rounds {f7['ensemble_error_all']:.3f}); best single model {f7['best_single_model']} "
        f"{f7['best_single_error_after_learning']:.3f}"
    )
    high = f7["high_confidence_error"]
    lines.append(
        f"       answers with confidence >= {f7['high_confidence_threshold']}: error "
        f"{'n/a' if high is None else f'{high:.3f}'} on {f7['high_confidence_coverage']:.0%} of queries"
    )
    for app in ("fig9-mitigated", "fig9-wait-all"):
        r = f9[app]
        server = r["server_latency_ms"]
        lines.append(
            f"Fig.9  {app:15s} p50 {r['p50_ms']:6.1f} ms  p99 {r['p99_ms']:6.1f} ms  "
            f"max {r['max_ms']:6.1f} ms  (frontend's own p99 {server.get('p99', float('nan')):.1f} ms, "
            f"max {server.get('max', float('nan')):.1f} ms)  "
            f"error {r['error']:.3f}  complete ensembles {r['complete_share']:.0%}"
        )
    lines.append(f"(SLO {f9['slo_ms']} ms; duration {results['duration_s']:.0f} s)")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--smoke", action="store_true", help="a few rounds of each figure, no plots checked")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    cfg = SelectionBenchConfig.smoke() if args.smoke else SelectionBenchConfig()
    results = run(cfg, args.out)
    print(summary(results))  # the CLI's own output
    return 0


if __name__ == "__main__":
    sys.exit(main())
