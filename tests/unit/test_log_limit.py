"""Malformed frames, refused registrations and dropped RPC peers are logged at most ``burst``
times per period (issue 11 item 4): a flood of bad frames cannot flood the log."""

from __future__ import annotations

import logging

import pytest

from clipper_core.query_frontend import log_limit

LOGGER = logging.getLogger("tests.log_limit")


def test_warnings_beyond_the_burst_are_counted_not_logged(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = [1000.0]
    monkeypatch.setattr(log_limit.time, "monotonic", lambda: now[0])
    limiter = log_limit.RateLimitedWarning(LOGGER, burst=3, period_s=60.0)
    with caplog.at_level(logging.WARNING, logger=LOGGER.name):
        for i in range(1000):
            limiter.warn("bad frame %d", i)
        assert [r.getMessage() for r in caplog.records] == ["bad frame 0", "bad frame 1", "bad frame 2"]
        now[0] += 61.0
        limiter.warn("bad frame %d", 1000)
    assert [r.getMessage() for r in caplog.records[3:]] == [
        "997 more such warnings were suppressed in the last 60 s",
        "bad frame 1000",
    ]
