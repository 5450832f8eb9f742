"""The original's metric kinds (reservoir histogram, EWMA meter) and its JSON report writer (pure).

Formulas follow spec 6.2: Algorithm R reservoirs, population standard deviation, the
original's percentile interpolation, meters whose EWMAs tick every 5 s (lazily, on mark
and read) starting at -1, and a Boost ``write_json``-style pretty printer in which every
leaf is a string. One deliberate difference: a ``.`` in a metric name (model version
``1.0``) stays in the name instead of nesting objects as Boost's path syntax did.
"""

from __future__ import annotations

import math
import operator
import random
import time
from collections.abc import Sequence
from typing import Final

__all__ = ["Meter", "Reservoir", "percentile", "render_report"]

METER_TICK_S: Final = 5.0
_EWMA_MINUTES: Final = (1, 5, 15)
_EWMA_ALPHAS: Final = tuple(1.0 - math.exp(-METER_TICK_S / (60.0 * m)) for m in _EWMA_MINUTES)
_PERCENTILES: Final = (("p50", 0.5), ("p95", 0.95), ("p99", 0.99))


def _num(value: float) -> str:
    """C++ stream-like formatting: 17 significant digits, integral values without ``.0``."""
    return f"{value:.17g}"


class Reservoir:
    """Uniform sample of at most ``capacity`` values (Algorithm R)."""

    __slots__ = ("_report", "_report_key", "capacity", "count", "values")

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.count = 0
        self.values: list[float] = []
        # The last report and the (count, unit) it was made for: the report runs on the event
        # loop (a sort and two passes over up to 4096 values), so idle reservoirs reuse theirs.
        self._report: dict[str, str] | None = None
        self._report_key: tuple[int, str] | None = None

    def add(self, value: float) -> None:
        seen = self.count
        self.count = seen + 1
        if seen < self.capacity:
            self.values.append(value)
        else:
            slot = int(random.random() * (seen + 1))
            if slot < self.capacity:
                self.values[slot] = value

    def add_repeated(self, value: float, times: int) -> None:
        for _ in range(times):
            self.add(value)

    def report(self, unit: str) -> dict[str, str]:
        key = (self.count, unit)
        if self._report is None or self._report_key != key:
            self._report = self._compute_report(unit)
            self._report_key = key
        return dict(self._report)

    def _compute_report(self, unit: str) -> dict[str, str]:
        values = sorted(self.values)
        n = len(values)
        if n == 0:
            zeros = dict.fromkeys(("min", "max", "mean", "std_dev", "p50", "p95", "p99"), "0")
            return {"unit": unit, "size": "0", **zeros}
        mean = math.fsum(values) / n
        std = 0.0
        if n > 1:
            # Two-pass population variance, with the squares summed by C-level iteration.
            deviations = [v - mean for v in values]
            std = math.sqrt(math.fsum(map(operator.mul, deviations, deviations)) / n)
        fields = {
            "unit": unit,
            "size": str(n),
            "min": str(int(values[0])),
            "max": str(int(values[-1])),
            "mean": _num(mean),
            "std_dev": _num(std),
        }
        for name, rank in _PERCENTILES:
            fields[name] = _num(percentile(values, rank))
        return fields


def percentile(sorted_values: Sequence[float], rank: float) -> float:
    """The original's interpolated percentile of a sorted, non-empty sample."""
    n = len(sorted_values)
    if rank <= 1.0 / (n + 1):
        x = 1.0
    elif rank < n / (n + 1):
        x = rank * (n + 1)
    else:
        x = float(n)
    index = math.floor(x)
    fraction = x - index
    low = sorted_values[index - 1]
    if index >= n or fraction == 0.0:
        return float(low)
    return low + fraction * (sorted_values[index] - low)


class Meter:
    """Event rate: mean since creation plus 1/5/15-minute EWMAs ticked every 5 s."""

    __slots__ = ("count", "interval_count", "last_tick", "rates", "started")

    def __init__(self, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        self.started = now
        self.last_tick = now
        self.count = 0
        self.interval_count = 0
        self.rates = [-1.0, -1.0, -1.0]

    def mark(self, n: int = 1, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        if now - self.last_tick >= METER_TICK_S:
            self._tick(now)
        self.count += n
        self.interval_count += n

    def _tick(self, now: float) -> None:
        ticks = int((now - self.last_tick) // METER_TICK_S)
        if ticks <= 0:
            return
        self.last_tick += ticks * METER_TICK_S
        current = self.interval_count / METER_TICK_S
        self.interval_count = 0
        rates = self.rates
        for i, alpha in enumerate(_EWMA_ALPHAS):
            rate = current if rates[i] < 0 else rates[i] + alpha * (current - rates[i])
            # Later idle ticks each decay toward zero: rate *= (1 - alpha) per tick.
            rates[i] = rate * (1.0 - alpha) ** (ticks - 1)

    def report(self, now: float | None = None) -> dict[str, str]:
        now = time.monotonic() if now is None else now
        self._tick(now)
        elapsed = now - self.started
        return {
            "unit": "events per second",
            "rate": _num(self.count / elapsed if elapsed > 0 else 0.0),
            "rate_1min": _num(self.rates[0]),
            "rate_5min": _num(self.rates[1]),
            "rate_15min": _num(self.rates[2]),
        }


# ---------------------------------------------------------------------------- report writer

_ESCAPES: Final = {'"': '\\"', "\\": "\\\\", "/": "\\/", "\b": "\\b", "\f": "\\f", "\n": "\\n",
                   "\r": "\\r", "\t": "\\t"}


def _escape(text: str) -> str:
    """Boost property_tree escaping: bytes >= 0x80 and controls as ``\\u00XX`` per UTF-8 byte."""
    if text.isascii() and text.isprintable() and '"' not in text and "\\" not in text and "/" not in text:
        return text
    out = []
    for byte in text.encode("utf-8"):
        char = chr(byte)
        if char in _ESCAPES:
            out.append(_ESCAPES[char])
        elif byte < 0x20 or byte >= 0x7F:
            out.append(f"\\u00{byte:02X}")
        else:
            out.append(char)
    return "".join(out)


Entry = tuple[str, dict[str, str]]


def render_report(categories: Sequence[tuple[str, Sequence[Entry]]]) -> bytes:
    """Pretty-print ``{"<category>": [{"<name>": {"<field>": "<text>"}}, ...], ...}``.

    Empty categories are left out; with nothing at all the body is empty, as in the original.
    """
    present = [(name, entries) for name, entries in categories if entries]
    if not present:
        return b""
    lines = ["{"]
    for c, (category, entries) in enumerate(present):
        lines.append(f'    "{_escape(category)}": [')
        for e, (name, fields) in enumerate(entries):
            lines.append("        {")
            lines.append(f'            "{_escape(name)}": {{')
            items = list(fields.items())
            for f, (key, value) in enumerate(items):
                comma = "," if f < len(items) - 1 else ""
                lines.append(f'                "{_escape(key)}": "{_escape(value)}"{comma}')
            lines.append("            }")
            lines.append("        }" + ("," if e < len(entries) - 1 else ""))
        lines.append("    ]" + ("," if c < len(present) - 1 else ""))
    lines.append("}")
    return ("\n".join(lines) + "\n").encode("ascii")
