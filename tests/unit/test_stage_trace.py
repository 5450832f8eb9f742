"""The stage-timestamp debug aid and the concurrency-1 breakdown built from it (pure parts)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from benchmarks.stages import breakdown, per_query, read_marks
from clipper_core.rpc.stage_trace import StageTrace


def test_marks_are_appended_per_process_and_merged_by_time(tmp_path: Path) -> None:
    trace = StageTrace(str(tmp_path / "marks"))
    trace.mark("http_data")
    trace.mark("response_written")
    trace.flush()
    trace.flush()  # nothing new: nothing written twice
    (tmp_path / "marks.1").write_text("ct_woke 5\n", encoding="ascii")  # another process, earlier
    marks = read_marks(tmp_path / "marks")
    assert [stage for _, stage in marks] == ["ct_woke", "http_data", "response_written"]
    assert trace.path == str(tmp_path / f"marks.{os.getpid()}")


def test_queries_are_cut_after_each_reply_and_timed_step_by_step() -> None:
    marks: list[tuple[int, str]] = []
    for start in (0, 1000, 2000, 3000):
        # A body arriving in a second data_received must not start a new query.
        marks += [(start, "http_data"), (start + 100, "handler"), (start + 150, "http_data"),
                  (start + 400, "ct_woke"), (start + 900, "response_written")]
    marks.append((4000, "http_data"))
    slices = per_query(marks)
    assert len(slices) == 3  # the last, cut short, is dropped
    rows, usual, total = breakdown(slices)
    assert (usual, total) == (3, 3)
    expected = [  # nanoseconds in, microseconds out
        ("http_data -> handler", 0.1),
        ("handler -> http_data", 0.05),
        ("http_data -> ct_woke", 0.25),
        ("ct_woke -> response_written", 0.5),
        ("response_written -> http_data", 0.1),
    ]
    assert [step for step, _, _ in rows] == [step for step, _ in expected]
    for (_, median, mean), (_, value) in zip(rows, expected, strict=True):
        assert median == pytest.approx(value) and mean == pytest.approx(value)
