"""Per-stage timestamps of a query's trip, on both sides of the RPC wire (a debug aid).

Off unless ``CLIPPER_STAGE_TRACE`` names a file prefix: then each process appends
``<stage> <perf_counter_ns>`` lines to ``<prefix>.<pid>`` (buffered, written every
``FLUSH_EVERY`` marks and at exit). ``perf_counter`` is ``CLOCK_MONOTONIC`` on Linux, one clock for
every process of the machine, so the query frontend's and a container's lines can be merged.
At concurrency 1 the stages of one query follow each other strictly, so sorting the merged lines
by time and cutting at each ``http_data`` gives one query per slice: ``benchmarks/stages.py``
does that and prints the time spent between consecutive stages.

Hot-path use: ``if TRACE is not None: TRACE.mark("stage")``; with the variable unset that is
one global read per stage.
"""

from __future__ import annotations

import atexit
import os
from time import perf_counter_ns
from typing import Final

__all__ = ["ENV", "FLUSH_EVERY", "TRACE", "StageTrace"]

ENV: Final = "CLIPPER_STAGE_TRACE"
FLUSH_EVERY: Final = 4096


class StageTrace:
    """Collects ``(stage, ns)`` marks and appends them to ``<prefix>.<pid>``."""

    __slots__ = ("_marks", "path")

    def __init__(self, prefix: str) -> None:
        self.path = f"{prefix}.{os.getpid()}"
        self._marks: list[tuple[str, int]] = []
        atexit.register(self.flush)

    def mark(self, stage: str) -> None:
        marks = self._marks
        marks.append((stage, perf_counter_ns()))
        if len(marks) >= FLUSH_EVERY:
            self.flush()

    def flush(self) -> None:
        marks, self._marks = self._marks, []
        if marks:
            with open(self.path, "a", encoding="ascii") as out:
                out.writelines(f"{stage} {ns}\n" for stage, ns in marks)


def _from_environ() -> StageTrace | None:
    prefix = os.environ.get(ENV)
    return StageTrace(prefix) if prefix else None


TRACE: Final[StageTrace | None] = _from_environ()
