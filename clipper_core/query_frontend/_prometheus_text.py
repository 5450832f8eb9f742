"""Prometheus text exposition (format 0.0.4): the pieces of a fast writer, knowing no metric.

``prometheus_client.generate_latest`` over an equivalent collector builds a ``Sample`` tuple,
a labels dict and a sorted label string for every line, which costs the event loop ~0.3 ms per
model per scrape (2-7 ms with the bench's models). ``metrics.FrontendMetrics.render_prometheus``
writes the same text from f-strings with these helpers, label text built once per holder and
sample values formatted once; ``tests/unit/test_metrics.py`` checks it byte for byte against
``generate_latest`` and with prometheus_client's parser. Imports nothing of ours.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Final, Literal

from prometheus_client.utils import floatToGoString

__all__ = ["MetricFamily", "escape", "histogram_lines", "value_text"]

MetricKind = Literal["counter", "gauge", "histogram"]
# prometheus_client leaves floatToGoString untyped; this names the type it has.
_go_float_text: Callable[[float], str] = floatToGoString


class MetricFamily:
    """One metric family: name, type, help text and label names, with its header precomputed."""

    __slots__ = ("documentation", "header", "kind", "labels", "name", "sample_name")

    def __init__(self, name: str, kind: MetricKind, documentation: str, labels: tuple[str, ...]) -> None:
        self.name: Final = name
        self.kind: Final = kind
        self.documentation: Final = documentation
        self.labels: Final = labels
        # Counters are exposed with the ``_total`` suffix, as prometheus_client writes them.
        self.sample_name: Final = name + "_total" if kind == "counter" else name
        help_text = documentation.replace("\\", r"\\").replace("\n", r"\n")
        self.header: Final = f"# HELP {self.sample_name} {help_text}\n# TYPE {self.sample_name} {kind}\n"


def escape(value: str) -> str:
    """A label value escaped as prometheus_client does: backslash, newline, double quote."""
    if "\\" in value or "\n" in value or '"' in value:
        return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")
    return value


def value_text(value: float) -> str:
    """``floatToGoString`` with a fast path for the usual case, a small integer count."""
    if type(value) is int and -1_000_000 < value < 1_000_000:
        return f"{value}.0"  # what repr(float(value)) gives below Go's exponent switch
    return _go_float_text(value)


@functools.cache
def _le_texts(bounds: tuple[float, ...]) -> tuple[str, ...]:
    # prometheus_client writes ``repr(float(bound))`` as the ``le`` label value.
    return (*(repr(float(bound)) for bound in bounds), "+Inf")


def histogram_lines(
    out: list[str],
    family: MetricFamily,
    bounds: tuple[float, ...],
    counts: list[int],
    total_sum: float,
    label: str,
    le_first: bool,
) -> None:
    """Bucket, count and sum lines of one labelled histogram.

    ``counts`` are per bucket (the last one above every bound); the lines are cumulative.
    Labels are written sorted by name, as prometheus_client does: ``le_first`` when the
    other label's name sorts after ``le``.
    """
    name = family.sample_name
    total = 0
    for le, count in zip(_le_texts(bounds), counts, strict=True):
        total += count
        labels = f'le="{le}",{label}' if le_first else f'{label},le="{le}"'
        out.append(f"{name}_bucket{{{labels}}} {value_text(total)}\n")
    out.append(f"{name}_count{{{label}}} {value_text(total)}\n")
    out.append(f"{name}_sum{{{label}}} {value_text(total_sum)}\n")
