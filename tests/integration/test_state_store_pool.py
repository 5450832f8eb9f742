"""The Redis connection pool cannot run dry (issue 11 item 4): a burst of concurrent writes,
as a burst of container registrations makes, waits for pooled connections instead of opening
one each until Redis refuses clients (which left replica records never deleted)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from clipper_core.rpc import InputType
from clipper_core.settings import RedisOptions
from clipper_core.state import ContainerInfo, StateStore
from tests.helpers import RedisServer, start_redis, stop_process

BURST = 400
MAX_CLIENTS = 64  # Redis refuses client number 65


@pytest.fixture
def small_redis(tmp_path: Path) -> Iterator[RedisServer]:
    server = start_redis(tmp_path, extra_args=["--maxclients", str(MAX_CLIENTS)])
    yield server
    stop_process(server.process)


async def test_a_burst_of_record_writes_and_deletes_all_succeed(small_redis: RedisServer) -> None:
    store = await StateStore.connect(RedisOptions(small_redis.host, small_redis.port), timeout_s=10)
    try:
        infos = [ContainerInfo("m", "1", i, i, InputType.DOUBLES) for i in range(BURST)]
        await asyncio.gather(*(store.add_container(info) for info in infos))
        assert len(await store.list_container_ids()) == BURST
        await asyncio.gather(*(store.delete_container("m", "1", info.replica_id) for info in infos))
        assert await store.list_container_ids() == []
    finally:
        await store.aclose()
    client = redis.Redis(host=small_redis.host, port=small_redis.port)
    try:
        assert client.ping()
    finally:
        client.close()
