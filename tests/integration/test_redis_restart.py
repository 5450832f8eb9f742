"""The query frontend follows a Redis restart (issue 11.1): redis-py reconnects its pub/sub
connection silently, so without care the frontend would keep listening on a fresh Redis with
keyspace notifications off and never learn of anything registered afterwards."""

from __future__ import annotations

import signal
from pathlib import Path

import aiohttp
import pytest

from clipper_core.query_frontend.server import QueryFrontend
from clipper_core.rpc import InputType
from clipper_core.settings import QuerySettings, RedisOptions
from clipper_core.state import AppInfo, StateStore
from tests.helpers import free_port, start_redis, stop_process, wait_until


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGKILL])
async def test_apps_registered_after_a_redis_restart_are_served(tmp_path: Path, stop_signal: int) -> None:
    first = start_redis(tmp_path / "before" if (tmp_path / "before").mkdir() is None else tmp_path)
    settings = QuerySettings(
        redis=RedisOptions(first.host, first.port), host="127.0.0.1", port=0, rpc_host="127.0.0.1",
        rpc_service_port=free_port(),
    )
    frontend = await QueryFrontend.start(settings)
    second = None
    try:
        async with await StateStore.connect(RedisOptions(first.host, first.port), timeout_s=10) as store:
            await store.add_app(AppInfo("before", InputType.DOUBLES, "none", 1_000_000))
            await wait_until(lambda: frontend.registry.app("before") is not None, timeout_s=20)  # type: ignore[union-attr]
            first.process.send_signal(stop_signal)
            first.process.wait(10)
            (tmp_path / "after").mkdir()
            second = start_redis(tmp_path / "after", port=first.port)  # a fresh, empty Redis
            await store.add_app(AppInfo("after", InputType.DOUBLES, "none", 1_000_000))
            async with aiohttp.ClientSession() as http:
                url = f"http://127.0.0.1:{frontend.port}/after/predict"
                async with http.post(url, json={"input": [1.0]}) as response:
                    assert response.status == 200, await response.text()
            # The restarted Redis is empty: the old app is gone from the frontend too (it
            # reloaded, rather than serving a stale copy forever).
            await wait_until(lambda: frontend.registry.app("before") is None, timeout_s=20)  # type: ignore[union-attr]
    finally:
        await frontend.aclose()
        if second is not None:
            stop_process(second.process)
        stop_process(first.process)
