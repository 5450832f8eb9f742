"""How long an RPC end polls its socket before it sleeps: an adaptive spin window.

Waking a sleeping process costs more than the work of a no-op query on a virtual machine
(~30-60 us when its vCPU has halted; benchmarks/README.md, stage trace), and a lone query
crosses the RPC hop twice: the container sleeps until the request comes, the frontend until the
reply comes. An end that polls for a short while before sleeping takes the next message without
that wake-up, at the price of the CPU it burns while polling.

:class:`SpinWindow` sizes that while the way KVM sizes its halt polling: every wait reports how
long it took in all. A wait the window did not cover but ``max_s`` would have doubles the
window (from ``GROW_START_S``); a wait longer than ``max_s`` halves it, down to 0 below
``GROW_START_S``. So an end whose messages come in quick succession polls across the gaps, an
idle one or one whose peer is slow (a model taking milliseconds) stops polling after a few
waits, and polling never costs more than ``max_s`` per message. ``max_s = 0`` turns it off.

Off by default (``--rpc_spin_us`` on the frontend, ``CLIPPER_RPC_SPIN_US`` in the container):
measured side by side on the shared 2-vCPU bench host (``python -m benchmarks.spin``), polling
raised a lone client's throughput by 5-17% while roughly doubling the serving CPU per query,
and at 32 clients it changed nothing. Worth turning on where the serving processes have cores
of their own and a lone query's latency matters more than CPU.
"""

from __future__ import annotations

from typing import Final

__all__ = ["DEFAULT_SPIN_US", "GROW_START_S", "SUGGESTED_SPIN_US", "SpinWindow"]

DEFAULT_SPIN_US: Final = 0
# A bound worth trying when turning polling on: a no-op query's round trip on the bench host
# fits in it (KVM's own default halt-poll bound is 200 us).
SUGGESTED_SPIN_US: Final = 500
GROW_START_S: Final = 10e-6


class SpinWindow:
    """The seconds to poll before sleeping, grown and shrunk by how long waits take."""

    __slots__ = ("max_s", "window_s")

    def __init__(self, max_s: float) -> None:
        if max_s < 0:
            raise ValueError(f"the spin bound must not be negative, got {max_s}")
        self.max_s = max_s
        self.window_s = 0.0

    def waited(self, seconds: float) -> None:
        """One wait (polling and sleeping together) took ``seconds``."""
        if seconds <= self.window_s:
            return  # the poll caught it
        if seconds <= self.max_s:
            self.window_s = min(self.max_s, max(GROW_START_S, self.window_s * 2.0))
        else:
            half = self.window_s / 2.0
            self.window_s = half if half >= GROW_START_S else 0.0
