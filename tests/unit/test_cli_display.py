"""The ``clipper`` command's progress display and error lines (no cluster): image build steps
and waits drive the live line on a terminal, plain log lines elsewhere; errors are one line."""

from __future__ import annotations

import io
import logging
import re
from collections.abc import Iterator
from typing import Any

import pytest
from rich.console import Console

from clipper_admin._logging import PROGRESS_EXTRA, WaitProgress
from clipper_admin.cli.display import ProgressDisplay
from clipper_admin.cli.output import error_text
from clipper_admin.docker import images
from clipper_admin.exceptions import ClipperException

log = logging.getLogger("clipper_admin.test_display")


class _FakeApi:
    def __init__(self, chunks: list[dict[str, Any]]) -> None:
        self.chunks = chunks

    def build(self, **kwargs: Any) -> Iterator[dict[str, Any]]:
        yield from self.chunks


class _FakeClient:
    def __init__(self, chunks: list[dict[str, Any]]) -> None:
        self.api = _FakeApi(chunks)


BUILD = [
    {"stream": "Step 1/3 : FROM python:3.11-slim\n"},
    {"stream": " ---> 0123456789ab\n"},
    {"stream": "Step 2/3 : RUN pip install --no-cache-dir numpy\n"},
    {"stream": "Collecting numpy\n"},
    {"stream": "Step 3/3 : COPY model /model/\n"},
]


def _terminal() -> tuple[Console, io.StringIO]:
    buffer = io.StringIO()
    return Console(file=buffer, force_terminal=True, width=150), buffer


def test_build_steps_move_the_progress_bar_on_a_terminal() -> None:
    console, _ = _terminal()
    with ProgressDisplay(console) as display:
        images.stream_build(_FakeClient(BUILD[:4]), tag="clipper/m:1", path=".")  # type: ignore[arg-type]
        assert display._progress is not None
        task = display._progress.tasks[0]
        assert (task.completed, task.total) == (2, 3)
        assert task.description == "Building clipper/m:1: RUN pip install --no-cache-dir numpy"
        assert task.fields["steps"] == "step 2/3"


def test_build_steps_are_log_lines_with_structured_progress(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="clipper_admin.docker.images"):
        images.stream_build(_FakeClient(BUILD), tag="clipper/m:1", path=".")  # type: ignore[arg-type]
    assert [r.getMessage() for r in caplog.records] == [c["stream"].rstrip() for c in BUILD]
    steps = [getattr(r, PROGRESS_EXTRA) for r in caplog.records
             if getattr(r, PROGRESS_EXTRA)["kind"] == "build-step"]
    assert [(s["step"], s["steps"], s["instruction"]) for s in steps] == [
        (1, 3, "FROM python:3.11-slim"), (2, 3, "RUN pip install --no-cache-dir numpy"),
        (3, 3, "COPY model /model/"),
    ]


def test_a_failed_build_names_the_error_and_its_last_lines() -> None:
    chunks = [*BUILD[:4], {"errorDetail": {"message": "pip: no matching distribution"}}]
    with pytest.raises(ClipperException) as info:
        images.stream_build(_FakeClient(chunks), tag="clipper/m:1", path=".")  # type: ignore[arg-type]
    assert str(info.value).startswith("Building image clipper/m:1 failed: pip: no matching distribution")
    assert "Collecting numpy" in str(info.value)


def test_waits_show_what_is_awaited_on_a_terminal_and_milestones_stay() -> None:
    console, buffer = _terminal()
    with ProgressDisplay(console) as display:
        progress = WaitProgress(log, "the query frontend", 60.0, "to answer http://127.0.0.1:1/healthz")
        assert display._progress is not None
        task = display._progress.tasks[0]
        assert task.description == "Waiting for the query frontend"
        assert task.fields["steps"] == "(timeout 60 s)"
        progress.done()
        log.warning("Port 1337 for the query frontend is in use; using port 40000 instead")
        log.error("this error is reported by the command itself")
    shown = buffer.getvalue()
    assert "The query frontend is ready after" in shown  # a milestone line stays
    assert "warning: Port 1337 for the query frontend is in use" in shown
    assert "this error" not in shown


def test_not_a_terminal_gets_plain_log_lines() -> None:
    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=False, width=200)
    with ProgressDisplay(console):
        WaitProgress(log, "model replica m_1-0", 60.0, "to load its model")
        logging.getLogger("urllib3.connectionpool").info("not ours: filtered by the root level")
    lines = buffer.getvalue().splitlines()
    assert len(lines) == 1
    assert re.fullmatch(r"\d\d:\d\d:\d\d INFO Waiting for model replica m_1-0 to load its model "
                        r"\(timeout 60 s\)", lines[0])


def test_the_display_restores_logging_levels() -> None:
    package = logging.getLogger("clipper_admin")
    before = (package.level, logging.getLogger().level, list(logging.getLogger().handlers))
    with ProgressDisplay(Console(file=io.StringIO())):
        pass
    assert (package.level, logging.getLogger().level, list(logging.getLogger().handlers)) == before


@pytest.mark.parametrize(
    ("message", "line", "details"),
    [
        ('Received error status code: 400 and message: {"error": "Bad request", "cause": "no\\nsuch"}',
         "Bad request: no such (HTTP 400)", ""),
        ("Received error status code: 401 and message: plain text body", "plain text body (HTTP 401)", ""),
        ("Model replica m_1-0 did not become ready within 3.0 s. Last lines of /x.log:\nA\nB",
         "Model replica m_1-0 did not become ready within 3.0 s. Last lines of /x.log:", "A\nB"),
    ],
)
def test_error_text_is_one_line_in_the_servers_words(message: str, line: str, details: str) -> None:
    assert error_text(ClipperException(message)) == (line, details)
