"""Load generators: wrk (closed loop, the main one) and Python clients (closed and open loop).

wrk (Debian's ``wrk`` package, C, epoll) drives every closed-loop scenario through
``wrk_predict.lua``. The Python closed-loop client exists to show, in the same run, why wrk was
chosen; the Python open-loop client paces requests at a fixed rate for the overload scenario, which
wrk (closed loop) cannot do.
"""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import os
import secrets
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import aiohttp

logger = logging.getLogger(__name__)

WRK_SCRIPT: Path = Path(__file__).with_name("wrk_predict.lua")
WRK_MARKER = "BENCH_JSON "


@dataclass(slots=True)
class LoadResult:
    """One closed- or open-loop run against one URL."""

    generator: str
    concurrency: int
    duration_s: float
    requests: int
    defaults: int
    errors: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    extra: dict[str, float] = field(default_factory=dict)

    @property
    def qps(self) -> float:
        return self.requests / self.duration_s if self.duration_s > 0 else 0.0

    @property
    def goodput_qps(self) -> float:
        """Answers that carried a real model output, per second."""
        good = self.requests - self.defaults - self.errors
        return max(good, 0) / self.duration_s if self.duration_s > 0 else 0.0

    def to_dict(self) -> dict[str, object]:
        data = asdict(self)
        data["qps"] = round(self.qps, 1)
        data["goodput_qps"] = round(self.goodput_qps, 1)
        return data


def wrk_available() -> bool:
    return shutil.which("wrk") is not None and os.environ.get("BENCH_GENERATOR", "wrk") == "wrk"


def run_closed_loop(url: str, concurrency: int, duration_s: float, *, same_input: bool = False) -> LoadResult:
    """wrk when installed (``make bench`` installs it); else the slower Python client, so that
    ``make test`` can run the smoke bench on a machine without wrk (BENCH_GENERATOR=python forces it)."""
    if wrk_available():
        return run_wrk(url, concurrency, duration_s, same_input=same_input)
    return run_python_closed_loop(url, concurrency, duration_s, same_input=same_input)


def run_wrk(
    url: str, concurrency: int, duration_s: float, *, same_input: bool = False, threads: int = 1
) -> LoadResult:
    """Run wrk closed loop with ``concurrency`` connections; one wrk thread leaves a core to the server."""
    binary = shutil.which("wrk")
    if binary is None:
        raise RuntimeError("wrk is not installed; run `make bench` (it installs Debian's wrk)")
    threads = max(1, min(threads, concurrency))
    env = dict(os.environ, BENCH_INPUT_MODE="same" if same_input else "unique", BENCH_SALT=str(new_salt()))
    command = [
        binary, f"-t{threads}", f"-c{concurrency}", f"-d{max(1, round(duration_s))}s",
        "--timeout", "10s", "-s", str(WRK_SCRIPT), url,
    ]
    completed = subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=duration_s + 60, check=False
    )
    line = next((x for x in completed.stdout.splitlines() if x.startswith(WRK_MARKER)), None)
    if completed.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({completed.returncode}): {completed.stdout} {completed.stderr}")
    report = json.loads(line[len(WRK_MARKER):])
    latency = report["latency_us"]
    socket_errors = sum(report[k] for k in ("connect_errors", "read_errors", "write_errors", "timeouts"))
    return LoadResult(
        generator="wrk",
        concurrency=concurrency,
        duration_s=report["duration_us"] / 1e6,
        requests=int(report["requests"]),
        defaults=int(report["defaults"]),
        errors=int(report["non_ok"]) + int(socket_errors),
        p50_ms=latency["p50"] / 1000,
        p90_ms=latency["p90"] / 1000,
        p99_ms=latency["p99"] / 1000,
        max_ms=latency["max"] / 1000,
    )


def _percentile(sorted_values: list[float], fraction: float) -> float:
    if not sorted_values:
        return 0.0
    index = min(len(sorted_values) - 1, max(0, round(fraction * (len(sorted_values) - 1))))
    return sorted_values[index]


def _from_latencies(
    generator: str,
    concurrency: int,
    duration_s: float,
    sorted_latencies_s: list[float],
    defaults: int,
    errors: int,
    extra: dict[str, float] | None = None,
) -> LoadResult:
    """A result from the Python clients' per-request latencies (seconds, sorted)."""
    return LoadResult(
        generator=generator,
        concurrency=concurrency,
        duration_s=duration_s,
        requests=len(sorted_latencies_s),
        defaults=defaults,
        errors=errors,
        p50_ms=_percentile(sorted_latencies_s, 0.50) * 1000,
        p90_ms=_percentile(sorted_latencies_s, 0.90) * 1000,
        p99_ms=_percentile(sorted_latencies_s, 0.99) * 1000,
        max_ms=(sorted_latencies_s[-1] * 1000) if sorted_latencies_s else 0.0,
        extra=extra or {},
    )


def new_salt() -> int:
    """A per-run number put in every unique input, so no two runs share an input."""
    return secrets.randbelow(10**12)


def _body(counter: int, worker: int, same_input: bool, salt: int = 0) -> bytes:
    if same_input:
        return b'{"input":[1.5]}'
    return b'{"input":[%d.5,%d.5,%d.5]}' % (salt, worker, counter)


async def _closed_loop(url: str, concurrency: int, duration_s: float, same_input: bool) -> LoadResult:
    latencies: list[float] = []
    defaults = 0
    errors = 0
    salt = new_salt()
    connector = aiohttp.TCPConnector(limit=concurrency)
    headers = {"Content-Type": "application/json"}
    async with aiohttp.ClientSession(connector=connector) as session:
        deadline = time.monotonic() + duration_s

        async def worker(worker_id: int) -> None:
            nonlocal defaults, errors
            counter = 0
            while time.monotonic() < deadline:
                counter += 1
                started = time.monotonic()
                try:
                    async with session.post(url, data=_body(counter, worker_id, same_input, salt),
                                            headers=headers) as response:
                        body = await response.read()
                        if response.status != 200:
                            errors += 1
                        elif b'"default":true' in body:
                            defaults += 1
                except aiohttp.ClientError:
                    errors += 1
                latencies.append(time.monotonic() - started)

        started_all = time.monotonic()
        await asyncio.gather(*(worker(i) for i in range(concurrency)))
        elapsed = time.monotonic() - started_all
    latencies.sort()
    return _from_latencies("python-aiohttp", concurrency, elapsed, latencies, defaults, errors)


def run_python_closed_loop(
    url: str, concurrency: int, duration_s: float, *, same_input: bool = False
) -> LoadResult:
    """The Python alternative to wrk: N workers, each sends its next request when the last returns."""
    return _run(_closed_loop(url, concurrency, duration_s, same_input))


@dataclass(slots=True)
class OpenLoopResult:
    """Latencies measured from each request's *scheduled* time, so a slow server cannot hide queueing."""

    load: LoadResult
    within_ms_share: float
    within_ms_share_from_schedule: float
    max_send_lag_ms: float


async def _open_loop(url: str, rate_qps: float, duration_s: float, bound_ms: float) -> OpenLoopResult:
    latencies: list[float] = []
    served_latencies: list[float] = []
    defaults = 0
    errors = 0
    max_lag = 0.0
    salt = new_salt()
    connector = aiohttp.TCPConnector(limit=0)
    timeout = aiohttp.ClientTimeout(total=30)
    headers = {"Content-Type": "application/json"}
    tasks: set[asyncio.Task[None]] = set()
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

        async def one(index: int, scheduled: float) -> None:
            nonlocal defaults, errors
            sent = time.monotonic()
            try:
                async with session.post(url, data=_body(index, 0, False, salt), headers=headers) as response:
                    body = await response.read()
                    if response.status != 200:
                        errors += 1
                    elif b'"default":true' in body:
                        defaults += 1
            except (aiohttp.ClientError, TimeoutError):
                errors += 1
            finished = time.monotonic()
            latencies.append(finished - scheduled)
            served_latencies.append(finished - sent)

        total = int(rate_qps * duration_s)
        started = time.monotonic()
        for index in range(total):
            scheduled = started + index / rate_qps
            delay = scheduled - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            max_lag = max(max_lag, time.monotonic() - scheduled)
            task = asyncio.create_task(one(index, scheduled))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        if tasks:
            await asyncio.wait(set(tasks))
        elapsed = time.monotonic() - started
    ordered = sorted(latencies)
    def share_within(values: list[float]) -> float:
        return sum(1 for x in values if x * 1000 <= bound_ms) / len(values) if values else 0.0

    load = _from_latencies(
        "python-open-loop", 0, elapsed, ordered, defaults, errors, extra={"offered_qps": rate_qps}
    )
    return OpenLoopResult(load, share_within(served_latencies), share_within(ordered), max_lag * 1000)


def run_open_loop_process(url: str, rate_qps: float, duration_s: float, bound_ms: float) -> OpenLoopResult:
    """:func:`run_open_loop` in a child process, so the caller's threads (metrics sampling) cannot
    stall the generator's event loop through the GIL."""
    command = [sys.executable, "-m", "benchmarks.loadgen", "open-loop", url, str(rate_qps),
               str(duration_s), str(bound_ms)]
    completed = subprocess.run(command, capture_output=True, text=True, timeout=duration_s + 120,
                               check=False, cwd=Path(__file__).resolve().parent.parent)
    line = next((x for x in completed.stdout.splitlines() if x.startswith(WRK_MARKER)), None)
    if completed.returncode != 0 or line is None:
        raise RuntimeError(f"open-loop generator failed: {completed.stdout} {completed.stderr}")
    data = json.loads(line[len(WRK_MARKER):])
    load = data.pop("load")
    for derived in ("qps", "goodput_qps"):
        load.pop(derived)
    return OpenLoopResult(LoadResult(**load), **data)


def run_open_loop(url: str, rate_qps: float, duration_s: float, bound_ms: float) -> OpenLoopResult:
    """Send at a fixed rate whatever the server does (like wrk2); count answers within ``bound_ms``.

    Percentiles are measured from each request's scheduled time (no coordinated omission); the
    share within the bound is given both from the actual send (what the server is responsible for)
    and from the schedule (which also charges the generator's own lag on a shared CPU).

    The generator's cyclic garbage collector is off for the run (a 10 s run's garbage fits in
    memory): a collection pausing its loop would show as the server's lateness.
    """
    gc.collect()
    gc.freeze()
    gc.disable()
    try:
        return _run(_open_loop(url, rate_qps, duration_s, bound_ms))
    finally:
        gc.enable()
        gc.unfreeze()


def _run(coroutine):  # type: ignore[no-untyped-def]
    try:
        import uvloop

        loop_factory = uvloop.new_event_loop
    except ImportError:
        loop_factory = None
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        return runner.run(coroutine)


def main(argv: list[str] | None = None) -> int:
    """``python -m benchmarks.loadgen open-loop URL RATE DURATION BOUND_MS``: one JSON line."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 5 or args[0] != "open-loop":
        sys.stderr.write(main.__doc__ + "\n")
        return 2
    result = run_open_loop(args[1], float(args[2]), float(args[3]), float(args[4]))
    payload = {
        "load": result.load.to_dict(),
        "within_ms_share": result.within_ms_share,
        "within_ms_share_from_schedule": result.within_ms_share_from_schedule,
        "max_send_lag_ms": result.max_send_lag_ms,
    }
    sys.stdout.write(WRK_MARKER + json.dumps(payload) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
