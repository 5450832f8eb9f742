"""One metrics report for several query frontends: their ``GET /metrics`` JSON reports merged (pure).

A report is ``{"counters" | "ratio_counters" | "meters" | "histograms": [{name: {field: text}}]}``
with every leaf a string, as the query frontend writes it. Merged, per metric name:

* counters: summed (exact);
* meters: each rate summed, the frontends being independent processes (exact); a rate still
  ``-1`` (its first 5 s tick not reached) on a frontend adds nothing, and stays ``-1`` only
  if it is ``-1`` everywhere;
* histograms (reservoir samples): ``size`` summed, ``min``/``max`` the extremes, ``mean`` and
  ``std_dev`` those of the union of the samples (exact, from each sample's size, mean and
  population deviation), percentiles the largest frontend's: an upper bound of the union's
  percentile (a mixture's quantile never exceeds its components' largest), and equal to it
  when the frontends see the same distribution;
* ratios: weighted by the count they are a ratio of when the report holds it
  (``internal:prediction_cache_hit_ratio`` by ``internal:prediction_cache_lookups``, an app's
  ``default_prediction_ratio`` by its ``num_predictions``); a model's ``cache_hit_ratio``,
  whose lookups the report does not count, is the plain mean over the frontends that have
  one. ``nan`` (nothing counted yet) is left out, and stays only if it is everywhere.

Exact sums of everything are what Prometheus gives: scrape each frontend's instance address
and ``sum without (instance)`` (see the README, "Scale: several query frontends").
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Final

__all__ = ["merge_reports"]

Report = dict[str, Any]
_CATEGORIES: Final = ("counters", "ratio_counters", "meters", "histograms")
_PERCENTILE_FIELDS: Final = ("p50", "p95", "p99")
_RATIO_WEIGHTS: Final = {"internal:prediction_cache_hit_ratio": "internal:prediction_cache_lookups"}


def _num(value: float) -> str:
    """The frontend's number spelling (17 significant digits, integers without ``.0``)."""
    return f"{value:.17g}"


def _entries(report: Report, category: str) -> dict[str, dict[str, str]]:
    """``{name: fields}`` of one category, in the report's order."""
    return {name: fields for entry in report.get(category, []) for name, fields in entry.items()}


def _ratio_weight_name(name: str) -> str | None:
    if name in _RATIO_WEIGHTS:
        return _RATIO_WEIGHTS[name]
    if name.startswith("app:") and name.endswith(":default_prediction_ratio"):
        return name.removesuffix("default_prediction_ratio") + "num_predictions"
    return None


def merge_reports(reports: Sequence[Report]) -> Report:
    """The metrics report of several query frontends together (see the module docstring).

    Empty reports (a frontend with no metric yet answers an empty body) add nothing; with
    nothing at all the result is ``{}``, as one frontend's would be.
    """
    present = [r for r in reports if r]
    if len(present) == 1:
        return present[0]
    merged: Report = {}
    for category in _CATEGORIES:
        by_name: dict[str, list[tuple[Report, dict[str, str]]]] = {}
        for report in present:
            for name, fields in _entries(report, category).items():
                by_name.setdefault(name, []).append((report, fields))
        if not by_name:
            continue
        merge = {"counters": _counter, "ratio_counters": _ratio, "meters": _meter,
                 "histograms": _histogram}[category]
        merged[category] = [{name: merge(name, parts)} for name, parts in by_name.items()]
    return merged


def _counter(name: str, parts: list[tuple[Report, dict[str, str]]]) -> dict[str, str]:
    return {"count": str(sum(int(fields["count"]) for _, fields in parts))}


def _meter(name: str, parts: list[tuple[Report, dict[str, str]]]) -> dict[str, str]:
    out = {"unit": parts[0][1].get("unit", "events per second")}
    for key in parts[0][1]:
        if key == "unit":
            continue
        values = [float(fields[key]) for _, fields in parts if key in fields]
        started = [v for v in values if v >= 0]
        out[key] = _num(math.fsum(started)) if started else _num(-1.0)
    return out


def _ratio(name: str, parts: list[tuple[Report, dict[str, str]]]) -> dict[str, str]:
    weight_name = _ratio_weight_name(name)
    pairs: list[tuple[float, float]] = []
    for report, fields in parts:
        ratio = float(fields["ratio"])
        if math.isnan(ratio):
            continue
        weight = 1.0
        if weight_name is not None:
            counted = _entries(report, "counters").get(weight_name)
            weight = float(counted["count"]) if counted is not None else 0.0
        pairs.append((ratio, weight))
    total = math.fsum(w for _, w in pairs)
    if not pairs or total == 0:
        return {"ratio": "nan"}
    return {"ratio": _num(math.fsum(r * w for r, w in pairs) / total)}


def _histogram(name: str, parts: list[tuple[Report, dict[str, str]]]) -> dict[str, str]:
    unit = parts[0][1].get("unit", "")
    samples = [fields for _, fields in parts if int(fields.get("size", "0")) > 0]
    if not samples:
        return dict(parts[0][1])
    sizes = [int(f["size"]) for f in samples]
    total = sum(sizes)
    means = [float(f["mean"]) for f in samples]
    mean = math.fsum(n * m for n, m in zip(sizes, means, strict=True)) / total
    spreads = [float(f["std_dev"]) ** 2 for f in samples]
    variance = math.fsum(
        n * (s2 + (m - mean) ** 2) for n, m, s2 in zip(sizes, means, spreads, strict=True)
    ) / total
    out = {
        "unit": unit,
        "size": str(total),
        "min": str(min(int(f["min"]) for f in samples)),
        "max": str(max(int(f["max"]) for f in samples)),
        "mean": _num(mean),
        "std_dev": _num(math.sqrt(variance)),
    }
    for key in _PERCENTILE_FIELDS:
        out[key] = _num(max(float(f[key]) for f in samples))
    return out
