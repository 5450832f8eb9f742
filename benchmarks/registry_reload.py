"""How long the query frontend's Registry.reload takes with many applications (issue 12 item 7).

Starts a private redis-server on a free loopback port, registers ``--apps`` applications, each
linked to its own model with one version and a current version, then times ``Registry.reload``
(start-up and every Resync) ``--repeat`` times and prints the median and the best, in ms.

    python -m benchmarks.registry_reload --apps 1000
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import shutil
import statistics
import subprocess
import tempfile
import time

from clipper_core.query_frontend.registry import Registry
from clipper_core.settings import RedisOptions
from clipper_core.state import AppInfo, InputType, ModelId, ModelInfo, StateStore
from tools.processes import free_port, stop_process, wait_for_port

logger = logging.getLogger(__name__)


class _NoModelSide:
    def set_batch_size(self, model: ModelId, batch_size: int) -> None:
        pass

    def remove_model(self, model: ModelId) -> None:
        pass


async def _fill(store: StateStore, apps: int) -> None:
    for i in range(apps):
        await store.add_app(AppInfo(f"app-{i}", InputType.DOUBLES, "-1.0", 100_000))
        await store.add_model(ModelInfo(f"model-{i}", "1", InputType.DOUBLES))
        await store.set_current_version(f"model-{i}", "1")
        await store.add_links(f"app-{i}", [f"model-{i}"])


async def _measure(port: int, apps: int, repeat: int) -> list[float]:
    async with await StateStore.connect(RedisOptions("127.0.0.1", port), timeout_s=10) as store:
        await _fill(store, apps)
        registry = Registry(store, _NoModelSide())
        durations = []
        for _ in range(repeat):
            started = time.perf_counter()
            await registry.reload()
            durations.append(time.perf_counter() - started)
        assert len(registry.app_names()) == apps
        return durations


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--apps", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("redis-server is not installed; run `make install`")
    port = free_port()
    with tempfile.TemporaryDirectory() as workdir:
        redis = subprocess.Popen(
            [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", workdir],
            stdout=subprocess.DEVNULL,
        )
        try:
            wait_for_port(port, process=redis)
            durations = asyncio.run(_measure(port, args.apps, args.repeat))
        finally:
            stop_process(redis)
    logger.info(
        "Registry.reload with %d applications: median %.1f ms, best %.1f ms (%d runs)",
        args.apps, statistics.median(durations) * 1e3, min(durations) * 1e3, args.repeat,
    )


if __name__ == "__main__":
    main()
