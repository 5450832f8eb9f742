"""Benchmark models. Each answers ``predict_doubles`` (the benchmark apps use input type doubles).

- ``noop``: answers ``"1.0"`` per input at once; measures pure serving overhead.
- ``batch``: 2 ms of busy CPU work per call (a fixed per-call cost) plus 0.02 ms per input, so
  larger batches amortise the fixed part. CPU-bound like the peers' cost model: on 2 cores the
  model's CPU competes with the frontend's and the load generator's.
- ``batch_sleep``: the same costs, but the 2 ms per call is a sleep (a device launch that frees
  the CPU); it flatters batching on few cores, so it is only an extra scenario
  (``python -m benchmarks.run --only batching_sleep``).
- ``slow``: 4 ms per input (sleep), so capacity (250 qps per replica) does not grow with batch
  size; drives the overload scenario at a known capacity.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any, Final

BATCH_CALL_COST_S: Final = 0.002
BATCH_INPUT_COST_S: Final = 0.00002
SLOW_INPUT_COST_S: Final = 0.004


def busy_wait(duration_s: float) -> None:
    """Spin the CPU for ``duration_s`` (work, not a sleep)."""
    deadline = time.perf_counter() + duration_s
    while time.perf_counter() < deadline:
        pass


class NoopModel:
    """Returns a constant without looking at the inputs."""

    def predict_doubles(self, inputs: Sequence[Any]) -> list[str]:
        return ["1.0"] * len(inputs)


class BatchFriendlyModel:
    """2 ms busy work per call + 0.02 ms busy work per input."""

    def predict_doubles(self, inputs: Sequence[Any]) -> list[str]:
        busy_wait(BATCH_CALL_COST_S + BATCH_INPUT_COST_S * len(inputs))
        return ["1.0"] * len(inputs)


class SleepingBatchModel:
    """2 ms sleep per call + 0.02 ms busy work per input."""

    def predict_doubles(self, inputs: Sequence[Any]) -> list[str]:
        time.sleep(BATCH_CALL_COST_S)
        busy_wait(BATCH_INPUT_COST_S * len(inputs))
        return ["1.0"] * len(inputs)


class SlowModel:
    """4 ms per input, whatever the batch size."""

    def predict_doubles(self, inputs: Sequence[Any]) -> list[str]:
        time.sleep(SLOW_INPUT_COST_S * len(inputs))
        return ["1.0"] * len(inputs)


MODELS: Final[dict[str, type]] = {
    "noop": NoopModel,
    "batch": BatchFriendlyModel,
    "batch_sleep": SleepingBatchModel,
    "slow": SlowModel,
}
