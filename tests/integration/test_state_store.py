"""StateStore against a real redis-server: accessors, the raw layout they write, connect, watch."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from clipper_core.errors import StateError
from clipper_core.settings import RedisOptions
from clipper_core.state import (
    AppInfo,
    ContainerInfo,
    Db,
    InputType,
    ModelInfo,
    StateChange,
    StateStore,
    watch_changes,
)
from clipper_core.state.store import SCAN_COUNT
from tests.helpers import RedisServer, free_port, start_redis, stop_process


@pytest.fixture
async def store(redis_clean: RedisServer) -> AsyncIterator[StateStore]:
    async with await StateStore.connect(RedisOptions(redis_clean.host, redis_clean.port), 5.0) as s:
        yield s


@pytest.fixture
async def raw(redis_clean: RedisServer) -> AsyncIterator[dict[int, aioredis.Redis]]:
    """Direct clients per DB, to check the layout the store writes."""
    clients = {
        db: aioredis.Redis(host=redis_clean.host, port=redis_clean.port, db=db, decode_responses=True)
        for db in range(8)
    }
    yield clients
    for client in clients.values():
        await client.aclose()


async def test_apps(store: StateStore, raw: dict[int, aioredis.Redis]) -> None:
    app = AppInfo("app1", InputType.DOUBLES, "-1", 20000)
    assert await store.get_app("app1") is None
    assert not await store.app_exists("app1")
    await store.add_app(app)
    assert await store.get_app("app1") == app
    assert await store.app_exists("app1")
    assert await raw[5].hgetall("app1") == {
        "input_type": "doubles", "policy": "DefaultOutputSelectionPolicy", "default_output": "-1",
        "latency_slo_micros": "20000",
    }
    await store.add_app(AppInfo("app2", InputType.INTS, "0", 1))
    assert sorted(await store.list_app_names()) == ["app1", "app2"]
    assert await store.delete_app("app1") is True
    assert await store.delete_app("app1") is False
    assert await store.list_app_names() == ["app2"]


async def test_links(store: StateStore, raw: dict[int, aioredis.Redis]) -> None:
    assert await store.get_linked_models("a") == []
    await store.add_links("a", ["m2", "m1"])
    await store.add_links("a", [])
    assert await store.get_linked_models("a") == ["m1", "m2"]
    assert await raw[7].smembers("a") == {"m1", "m2"}
    await store.remove_links("a", ["m2"])
    assert await store.get_linked_models("a") == ["m1"]
    await store.delete_links("a")
    assert not await raw[7].exists("a")


async def test_models_and_versions(store: StateStore, raw: dict[int, aioredis.Redis]) -> None:
    model = ModelInfo("m", "1", InputType.STRINGS, ("x",), "img", "/data", 4)
    await store.add_model(model)
    await store.add_model(ModelInfo("m", "2", InputType.STRINGS))
    await store.add_model(ModelInfo("m*", "1", InputType.STRINGS))  # glob character in the name
    assert await store.get_model("m", "1") == model
    assert await store.get_model("m", "3") is None
    assert await store.model_exists("m", "2") and not await store.model_exists("m", "3")
    assert sorted(await store.list_model_keys()) == [("m", "1"), ("m", "2"), ("m*", "1")]
    assert sorted(await store.get_model_versions("m")) == ["1", "2"]
    assert await store.get_model_versions("m*") == ["1"]
    assert await raw[2].hget("m:1", "labels") == "x"

    await store.mark_model_invalid("m", "1")
    stored = await store.get_model("m", "1")
    assert stored is not None and stored.is_valid is False
    assert "valid" not in await raw[2].hgetall("m:1")

    await store.set_batch_size("m", "2", 16)
    stored = await store.get_model("m", "2")
    assert stored is not None and stored.batch_size == 16

    await store.delete_model("m", "2")
    assert await store.get_model("m", "2") is None


async def test_current_version(store: StateStore, raw: dict[int, aioredis.Redis]) -> None:
    assert await store.get_current_version("m") is None
    await store.set_current_version("m", "v3")
    assert await store.get_current_version("m") == "v3"
    assert await raw[6].get("CURRENT_MODEL_VERSION:m") == "v3"
    await raw[6].set("CURRENT_MODEL_VERSION:m", "")
    assert await store.get_current_version("m") is None  # empty counts as no version


async def test_containers(store: StateStore, raw: dict[int, aioredis.Redis]) -> None:
    first = ContainerInfo("m", "1", 0, 5, InputType.DOUBLES)
    second = ContainerInfo("m", "1", 1, 6, InputType.DOUBLES)
    await store.add_container(first)
    await store.add_container(second)
    assert await raw[3].hget("m,1,0", "zmq_connection_id") == "5"
    assert await store.get_container("m", "1", 1) == second
    assert await store.get_container("m", "1", 2) is None
    assert sorted(await store.list_container_ids()) == [("m", "1", 0), ("m", "1", 1)]
    assert sorted(await store.list_containers(), key=lambda c: c.replica_id) == [first, second]
    await store.delete_container("m", "1", 0)
    assert await store.list_container_ids() == [("m", "1", 1)]


async def test_selection_state(store: StateStore, raw: dict[int, aioredis.Redis]) -> None:
    await store.set_selection_state("app", 'say "hi" é')
    assert await raw[1].get("app:0:0") == '{"y_hat":"say \\"hi\\" é"}'
    await store.delete_selection_state("app")
    assert not await raw[1].exists("app:0:0")


async def test_connect_gives_up_after_its_timeout() -> None:
    with pytest.raises(StateError, match="unreachable"):
        await StateStore.connect(RedisOptions("127.0.0.1", free_port()), timeout_s=0.5)


async def test_connect_waits_for_redis_to_come_up(tmp_path: Path) -> None:
    port = free_port()
    connecting = asyncio.create_task(StateStore.connect(RedisOptions("127.0.0.1", port), timeout_s=30))
    await asyncio.sleep(0.5)
    assert not connecting.done()
    server = await asyncio.to_thread(start_redis, tmp_path, port)
    try:
        store = await asyncio.wait_for(connecting, 20)
        async with store:
            await store.add_app(AppInfo("late", InputType.BYTES, "", 1))
            assert await store.app_exists("late")
    finally:
        stop_process(server.process)


async def test_password_protected_redis(tmp_path: Path) -> None:
    server = await asyncio.to_thread(start_redis, tmp_path, None, ["--requirepass", "s3cret"])
    try:
        async with await StateStore.connect(
            RedisOptions(server.host, server.port, password="s3cret"), timeout_s=5
        ) as store:
            await store.add_app(AppInfo("p", InputType.INTS, "", 1))
            assert await store.app_exists("p")
        with pytest.raises(StateError):
            await StateStore.connect(RedisOptions(server.host, server.port), timeout_s=0.5)
    finally:
        stop_process(server.process)


async def test_redis_failure_is_a_state_error() -> None:
    broken = StateStore(RedisOptions("127.0.0.1", free_port()))
    async with broken:
        with pytest.raises(StateError, match="Redis error"):
            await broken.get_app("x")


async def test_watch_reports_keyspace_events(store: StateStore) -> None:
    await store.enable_keyspace_notifications()
    ready = asyncio.Event()
    changes: asyncio.Queue[object] = asyncio.Queue()

    async def consume() -> None:
        async for change in watch_changes(store, ready=ready):
            await changes.put(change)

    task = asyncio.create_task(consume())
    try:
        await asyncio.wait_for(ready.wait(), 5)
        await store.add_app(AppInfo("w", InputType.INTS, "", 1))
        await store.set_current_version("m", "1")
        await store.delete_app("w")
        seen = [await asyncio.wait_for(changes.get(), 5) for _ in range(3)]
        assert seen == [
            StateChange(Db.APPLICATION, "w", "hset"),
            StateChange(Db.METADATA, "m", "set"),
            StateChange(Db.APPLICATION, "w", "del"),
        ]
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


async def test_key_listings_use_scan_and_bulk_reads_one_pipeline(tmp_path: Path) -> None:
    # KEYS is disabled on this server: every listing must SCAN (here over more than one step).
    server = await asyncio.to_thread(start_redis, tmp_path, None, ["--rename-command", "KEYS", '""'])
    count = SCAN_COUNT + 200
    try:
        async with await StateStore.connect(RedisOptions(server.host, server.port), timeout_s=5) as store:
            with pytest.raises(StateError):  # the server really refuses KEYS
                await store._run(store.client(Db.APPLICATION).keys("*"))
            names = [f"app-{i}" for i in range(count)]
            for i, name in enumerate(names):
                await store.add_app(AppInfo(name, InputType.DOUBLES, str(i), 1000))
                await store.add_model(ModelInfo("m", str(i), InputType.DOUBLES))
                await store.add_links(name, [f"m{i}", "shared"])
            await store.add_container(ContainerInfo("m", "1", 0, 3, InputType.DOUBLES))
            await store.set_current_version("m", "7")
            await store.client(Db.APPLICATION).hset("broken", mapping={"input_type": "nonsense"})

            listed = await store.list_app_names()
            assert sorted(listed) == sorted([*names, "broken"])
            assert len(await store.list_model_keys()) == count
            assert sorted(await store.get_model_versions("m"), key=int) == [str(i) for i in range(count)]
            assert await store.list_container_ids() == [("m", "1", 0)]
            assert [c.replica_id for c in await store.list_containers()] == [0]

            apps = await store.get_apps(["app-3", "broken", "absent"])
            assert apps[0] == AppInfo("app-3", InputType.DOUBLES, "3", 1000)
            assert apps[1:] == [None, None]  # unreadable and absent
            assert await store.get_links(["app-3", "absent"]) == [["m3", "shared"], []]
            models = await store.get_models([("m", "5"), ("m", "nope")])
            assert models == [ModelInfo("m", "5", InputType.DOUBLES), None]
            assert await store.get_current_versions(["m", "other"]) == ["7", None]
            await store.set_selection_states({"app-1": "a", "app-2": "b"})
            assert await store.client(Db.STATE).get("app-2:0:0") == '{"y_hat":"b"}'
    finally:
        stop_process(server.process)
