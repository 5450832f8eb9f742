"""The adaptive spin window (clipper_core.rpc.spin) and the loop's busy poll (busy_poll)."""

from __future__ import annotations

import asyncio
import time

import pytest

from clipper_core.query_frontend.busy_poll import BusyPoll
from clipper_core.rpc.spin import GROW_START_S, SpinWindow

MAX_S = 500e-6


def test_a_new_window_does_not_poll() -> None:
    assert SpinWindow(MAX_S).window_s == 0.0


def test_waits_within_the_bound_grow_the_window_by_doubling_up_to_the_bound() -> None:
    spin = SpinWindow(MAX_S)
    seen = []
    for _ in range(10):
        spin.waited(MAX_S * 0.9)  # never covered until the window reaches the bound
        seen.append(spin.window_s)
    assert seen[0] == GROW_START_S
    assert seen[1] == 2 * GROW_START_S
    assert max(seen) == MAX_S
    assert seen == sorted(seen)


def test_a_wait_the_window_covered_leaves_it_alone() -> None:
    spin = SpinWindow(MAX_S)
    for _ in range(4):
        spin.waited(100e-6)
    before = spin.window_s
    spin.waited(before / 2)
    assert spin.window_s == before


def test_waits_longer_than_the_bound_halve_the_window_down_to_zero() -> None:
    spin = SpinWindow(MAX_S)
    for _ in range(10):
        spin.waited(MAX_S)
    assert spin.window_s == MAX_S
    spin.waited(1.0)
    assert spin.window_s == MAX_S / 2
    for _ in range(10):
        spin.waited(1.0)
    assert spin.window_s == 0.0


def test_a_zero_bound_never_polls_and_a_negative_one_is_refused() -> None:
    spin = SpinWindow(0.0)
    for wait in (0.0, 1e-6, 1.0):
        spin.waited(wait)
        assert spin.window_s == 0.0
    with pytest.raises(ValueError, match="negative"):
        SpinWindow(-1e-6)


async def test_busy_poll_keeps_the_loop_turning_until_its_deadline() -> None:
    loop = asyncio.get_running_loop()
    asks = 0

    def is_wanted() -> bool:
        nonlocal asks
        asks += 1
        return True

    poll = BusyPoll(loop, is_wanted)
    started = time.monotonic()
    poll.extend(0.05)
    assert poll.is_running
    # A sleeping loop would turn about once here; a polling one turns on every iteration.
    await asyncio.sleep(0.02)
    assert asks > 20
    await asyncio.sleep(0.05 - (time.monotonic() - started) + 0.01)
    assert not poll.is_running
    settled = asks
    await asyncio.sleep(0.02)
    assert asks == settled  # stopped: no more turns


async def test_busy_poll_stops_as_soon_as_nothing_is_awaited() -> None:
    loop = asyncio.get_running_loop()
    wanted = True
    poll = BusyPoll(loop, lambda: wanted)
    poll.extend(10.0)
    await asyncio.sleep(0)
    assert poll.is_running
    wanted = False
    await asyncio.sleep(0.001)
    assert not poll.is_running


async def test_busy_poll_ignores_a_zero_extension() -> None:
    poll = BusyPoll(asyncio.get_running_loop(), lambda: True)
    poll.extend(0.0)
    assert not poll.is_running
