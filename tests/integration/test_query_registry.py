"""The query frontend's registry against a real redis-server: start-up load and keyspace events.

(The brief placed these in tests/unit; the registry's input is Redis, so they run against the
real thing here instead of an in-memory stand-in.)
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable

import pytest

from clipper_core.query_frontend.outputs import embed_text
from clipper_core.query_frontend.registry import Registry
from clipper_core.rpc import InputType
from clipper_core.settings import RedisOptions
from clipper_core.state import (
    AppInfo,
    Db,
    ModelId,
    ModelInfo,
    Resync,
    StateChange,
    StateStore,
    watch_changes,
)
from tests.helpers import RedisServer


class RecordingControl:
    """Stands where the gateway stands: records what the registry tells the model side."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, ModelId, object]] = []

    def set_batch_size(self, model: ModelId, batch_size: int) -> None:
        self.calls.append(("batch_size", model, batch_size))

    def remove_model(self, model: ModelId) -> None:
        self.calls.append(("remove", model, None))

    def of(self, kind: str) -> list[tuple[ModelId, object]]:
        return [(m, v) for k, m, v in self.calls if k == kind]


@pytest.fixture
async def store(redis_clean: RedisServer) -> AsyncIterator[StateStore]:
    async with await StateStore.connect(RedisOptions(redis_clean.host, redis_clean.port), timeout_s=10) as s:
        yield s


@pytest.fixture
def control() -> RecordingControl:
    return RecordingControl()


@pytest.fixture
def removed_apps() -> list[str]:
    return []


@pytest.fixture
def registry(store: StateStore, control: RecordingControl, removed_apps: list[str]) -> Registry:
    return Registry(store, control, on_app_removed=removed_apps.append)


APP = AppInfo("app1", InputType.DOUBLES, "no_pred", 100_000)
M1 = ModelInfo("m", "1", InputType.DOUBLES, batch_size=-1)
M2 = ModelInfo("m", "2", InputType.DOUBLES, batch_size=4)


async def test_reload_reads_everything_and_survives_a_model_without_current_version(
    store: StateStore, registry: Registry, control: RecordingControl
) -> None:
    await store.add_app(APP)
    await store.add_links("app1", ["m"])
    await store.add_model(M1)
    await store.add_model(M2)
    await store.add_model(ModelInfo("orphan", "1", InputType.INTS))  # no current version
    await store.set_current_version("m", "2")

    await registry.reload()

    entry = registry.app("app1")
    assert entry is not None
    assert entry.info == APP
    assert entry.slo_s == pytest.approx(0.1)
    assert entry.default_output == embed_text("no_pred")
    assert registry.linked_models("app1") == ("m",)
    assert registry.current_model("m") == ModelId("m", "2")
    assert registry.current_model("orphan") is None
    assert registry.has_version("m", "1") and registry.has_version("m", "2")
    assert not registry.has_version("m", "3")
    assert sorted(control.of("batch_size"), key=str) == sorted(
        [(ModelId("m", "1"), -1), (ModelId("m", "2"), 4), (ModelId("orphan", "1"), -1)], key=str
    )
    # The original stores the default output as selection state on every app registration.
    assert await store.client(Db.STATE).get("app1:0:0") == '{"y_hat":"no_pred"}'


async def test_app_events(store: StateStore, registry: Registry, removed_apps: list[str]) -> None:
    await store.add_app(APP)
    await store.add_links("app1", ["m"])
    await registry.apply(StateChange(Db.APPLICATION, "app1", "hset"))
    assert registry.app("app1") is not None
    assert registry.linked_models("app1") == ("m",)

    await store.add_app(AppInfo("app1", InputType.DOUBLES, "other", 5_000))
    await registry.apply(StateChange(Db.APPLICATION, "app1", "hset"))
    assert registry.app("app1").info.default_output == "other"  # type: ignore[union-attr]

    await store.delete_app("app1")
    await registry.apply(StateChange(Db.APPLICATION, "app1", "del"))
    assert registry.app("app1") is None
    assert removed_apps == ["app1"]


async def test_app_removed_at_once_on_hdel(registry: Registry, store: StateStore) -> None:
    await store.add_app(APP)
    await registry.apply(StateChange(Db.APPLICATION, "app1", "hset"))
    # The record still exists in Redis: a del/hdel event alone removes the endpoint.
    await registry.apply(StateChange(Db.APPLICATION, "app1", "hdel"))
    assert registry.app("app1") is None


async def test_link_and_current_version_events(store: StateStore, registry: Registry) -> None:
    await store.add_links("app1", ["a"])
    await registry.apply(StateChange(Db.APP_MODEL_LINKS, "app1", "sadd"))
    assert registry.linked_models("app1") == ("a",)
    await store.remove_links("app1", ["a"])
    await registry.apply(StateChange(Db.APP_MODEL_LINKS, "app1", "srem"))
    assert registry.linked_models("app1") == ()

    await store.set_current_version("a", "7")
    await registry.apply(StateChange(Db.METADATA, "a", "set"))
    assert registry.current_model("a") == ModelId("a", "7")
    await store.client(Db.METADATA).delete("CURRENT_MODEL_VERSION:a")
    await registry.apply(StateChange(Db.METADATA, "a", "del"))
    assert registry.current_model("a") is None


async def test_model_events_drive_the_model_side(
    store: StateStore, registry: Registry, control: RecordingControl
) -> None:
    mid = ModelId("m", "1")
    await store.add_model(M1)
    await registry.apply(StateChange(Db.MODEL, "m:1", "hset"))
    assert registry.has_version("m", "1")
    assert control.of("batch_size") == [(mid, -1)]

    await store.set_batch_size("m", "1", 8)
    await registry.apply(StateChange(Db.MODEL, "m:1", "hset"))
    assert control.of("batch_size") == [(mid, -1), (mid, 8)]

    await store.mark_model_invalid("m", "1")
    await registry.apply(StateChange(Db.MODEL, "m:1", "hdel"))
    assert control.of("remove") == [(mid, None)]
    # As the original's clean-up: the frontend deletes the invalid version's record ...
    assert await store.get_model("m", "1") is None
    # ... and forgets the version on the resulting ``del`` event (without a second removal).
    await registry.apply(StateChange(Db.MODEL, "m:1", "del"))
    assert not registry.has_version("m", "1")
    assert control.of("remove") == [(mid, None)]


async def test_reload_cleans_up_versions_left_marked_invalid(
    store: StateStore, registry: Registry, control: RecordingControl
) -> None:
    await store.add_model(M1)
    await store.add_model(M2)
    await store.mark_model_invalid("m", "1")  # deleted while no query frontend was running
    await registry.reload()
    assert await store.get_model("m", "1") is None
    assert await store.get_model("m", "2") is not None
    assert (ModelId("m", "1"), None) in control.of("remove")


async def test_resync_reloads_and_reports_what_disappeared(
    store: StateStore, registry: Registry, control: RecordingControl, removed_apps: list[str]
) -> None:
    await store.add_app(APP)
    await store.add_model(M1)
    await registry.reload()
    await store.delete_app("app1")
    await store.delete_model("m", "1")
    await registry.apply(Resync())
    assert registry.app("app1") is None
    assert removed_apps == ["app1"]
    assert (ModelId("m", "1"), None) in control.of("remove")


async def _eventually(check: Callable[[], bool], timeout_s: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.02)


async def test_follows_live_keyspace_events(store: StateStore, registry: Registry) -> None:
    await store.enable_keyspace_notifications()
    ready = asyncio.Event()
    task = asyncio.create_task(registry.follow(watch_changes(store, ready=ready)))
    try:
        await asyncio.wait_for(ready.wait(), 10)
        await store.add_app(APP)
        await _eventually(lambda: registry.app("app1") is not None)
        await store.add_links("app1", ["m"])
        await _eventually(lambda: registry.linked_models("app1") == ("m",))
        await store.add_model(M1)
        await store.set_current_version("m", "1")
        await _eventually(lambda: registry.current_model("m") == ModelId("m", "1"))
        await store.delete_app("app1")
        await _eventually(lambda: registry.app("app1") is None)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
