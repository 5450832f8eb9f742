"""Async Redis accessors: the only code that reads or writes Clipper's Redis state."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from typing import Final

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from clipper_core.errors import StateError
from clipper_core.settings import RedisOptions
from clipper_core.state.records import AppInfo, ContainerInfo, ModelInfo
from clipper_core.state.schema import (
    Db,
    ModelField,
    app_key,
    container_key,
    current_version_key,
    links_key,
    model_key,
    model_key_pattern,
    parse_container_key,
    parse_model_key,
    selection_state_key,
)

__all__ = ["StateStore"]

logger = logging.getLogger(__name__)

CONNECT_RETRY_FIRST_S: Final = 0.1
CONNECT_RETRY_MAX_S: Final = 1.0
CONNECT_PROBE_TIMEOUT_S: Final = 1.0
KEYSPACE_EVENTS: Final = "AKE"


class StateStore:
    """One client per logical DB; every method raises StateError on Redis failure."""

    def __init__(self, settings: RedisOptions) -> None:
        self.settings = settings
        self._clients: dict[Db, aioredis.Redis] = {
            db: aioredis.Redis(
                host=settings.ip,
                port=settings.port,
                password=settings.password,
                db=int(db),
                decode_responses=True,
            )
            for db in Db
        }

    # ------------------------------------------------------------------ lifecycle

    @classmethod
    async def connect(cls, settings: RedisOptions, timeout_s: float | None = None) -> StateStore:
        """Create a store once Redis answers PING; retries with backoff, logging once."""
        store = cls(settings)
        try:
            await store.wait_until_reachable(timeout_s)
        except BaseException:
            await store.aclose()
            raise
        return store

    async def wait_until_reachable(self, timeout_s: float | None = None) -> None:
        loop = asyncio.get_running_loop()
        deadline = None if timeout_s is None else loop.time() + timeout_s
        delay_s = CONNECT_RETRY_FIRST_S
        # A probe without redis-py's own retries (10 with backoff by default, ~4 s per failed
        # PING): this loop sets the cadence, so the wait is logged at once and honours timeout_s.
        probe = aioredis.Redis(
            host=self.settings.ip,
            port=self.settings.port,
            password=self.settings.password,
            retry=Retry(NoBackoff(), 0),
            socket_connect_timeout=CONNECT_PROBE_TIMEOUT_S,
            socket_timeout=CONNECT_PROBE_TIMEOUT_S,
        )
        try:
            await self._wait_for_ping(probe, deadline, delay_s)
        finally:
            await probe.aclose()

    async def _wait_for_ping(self, probe: aioredis.Redis, deadline: float | None, delay_s: float) -> None:
        loop = asyncio.get_running_loop()
        logged = False
        while True:
            try:
                await probe.ping()
                if logged:
                    logger.info("Connected to Redis at %s:%s", self.settings.ip, self.settings.port)
                return
            except RedisError as exc:
                if not logged:
                    logger.warning(
                        "Waiting for Redis at %s:%s (%s)", self.settings.ip, self.settings.port, exc
                    )
                    logged = True
                if deadline is not None and loop.time() + delay_s > deadline:
                    raise StateError(
                        f"Redis at {self.settings.ip}:{self.settings.port} is unreachable: {exc}"
                    ) from exc
                await asyncio.sleep(delay_s)
                delay_s = min(delay_s * 2, CONNECT_RETRY_MAX_S)

    async def aclose(self) -> None:
        for client in self._clients.values():
            await client.aclose()

    async def __aenter__(self) -> StateStore:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    def client(self, db: Db) -> aioredis.Redis:
        """The raw client of one DB (for the keyspace watcher)."""
        return self._clients[db]

    async def enable_keyspace_notifications(self) -> None:
        """``CONFIG SET notify-keyspace-events AKE`` as the original query frontend does."""
        try:
            await self._clients[Db.APPLICATION].config_set("notify-keyspace-events", KEYSPACE_EVENTS)
        except RedisError as exc:
            raise StateError(
                "Could not enable Redis keyspace notifications (CONFIG SET notify-keyspace-events "
                f"{KEYSPACE_EVENTS}): {exc}. Allow the CONFIG command or set "
                f"'notify-keyspace-events {KEYSPACE_EVENTS}' in redis.conf."
            ) from exc

    # ------------------------------------------------------------------ applications

    async def add_app(self, app: AppInfo) -> None:
        await self._run(self._clients[Db.APPLICATION].hset(app_key(app.name), mapping=app.to_hash()))

    async def get_app(self, name: str) -> AppInfo | None:
        fields = await self._run(self._clients[Db.APPLICATION].hgetall(app_key(name)))
        return AppInfo.from_hash(name, fields) if fields else None

    async def app_exists(self, name: str) -> bool:
        return bool(await self._run(self._clients[Db.APPLICATION].exists(app_key(name))))

    async def delete_app(self, name: str) -> bool:
        return bool(await self._run(self._clients[Db.APPLICATION].delete(app_key(name))))

    async def list_app_names(self) -> list[str]:
        return list(await self._run(self._clients[Db.APPLICATION].keys("*")))

    # ------------------------------------------------------------------ links

    async def get_linked_models(self, app_name: str) -> list[str]:
        return sorted(await self._run(self._clients[Db.APP_MODEL_LINKS].smembers(links_key(app_name))))

    async def add_links(self, app_name: str, model_names: Iterable[str]) -> None:
        names = list(model_names)
        if names:
            await self._run(self._clients[Db.APP_MODEL_LINKS].sadd(links_key(app_name), *names))

    async def remove_links(self, app_name: str, model_names: Iterable[str]) -> None:
        names = list(model_names)
        if names:
            await self._run(self._clients[Db.APP_MODEL_LINKS].srem(links_key(app_name), *names))

    async def delete_links(self, app_name: str) -> None:
        await self._run(self._clients[Db.APP_MODEL_LINKS].delete(links_key(app_name)))

    # ------------------------------------------------------------------ models

    async def add_model(self, model: ModelInfo) -> None:
        await self._run(
            self._clients[Db.MODEL].hset(model_key(model.name, model.version), mapping=model.to_hash())
        )

    async def get_model(self, name: str, version: str) -> ModelInfo | None:
        fields = await self._run(self._clients[Db.MODEL].hgetall(model_key(name, version)))
        return ModelInfo.from_hash(fields) if fields else None

    async def model_exists(self, name: str, version: str) -> bool:
        return bool(await self._run(self._clients[Db.MODEL].exists(model_key(name, version))))

    async def list_model_keys(self) -> list[tuple[str, str]]:
        """Every registered (name, version), valid or marked invalid."""
        keys = await self._run(self._clients[Db.MODEL].keys("*"))
        return [parse_model_key(k) for k in keys]

    async def get_model_versions(self, name: str) -> list[str]:
        keys = await self._run(self._clients[Db.MODEL].keys(model_key_pattern(name)))
        return [parse_model_key(k)[1] for k in keys]

    async def mark_model_invalid(self, name: str, version: str) -> None:
        """``HDEL <n>:<v> valid``: the query frontend reacts by removing the version."""
        await self._run(self._clients[Db.MODEL].hdel(model_key(name, version), ModelField.VALID))

    async def delete_model(self, name: str, version: str) -> None:
        await self._run(self._clients[Db.MODEL].delete(model_key(name, version)))

    async def set_batch_size(self, name: str, version: str, batch_size: int) -> None:
        await self._run(
            self._clients[Db.MODEL].hset(model_key(name, version), ModelField.BATCH_SIZE, str(batch_size))
        )

    async def get_current_version(self, name: str) -> str | None:
        value = await self._run(self._clients[Db.METADATA].get(current_version_key(name)))
        return value or None

    async def set_current_version(self, name: str, version: str) -> None:
        await self._run(self._clients[Db.METADATA].set(current_version_key(name), version))

    # ------------------------------------------------------------------ containers

    async def add_container(self, container: ContainerInfo) -> None:
        key = container_key(container.model_name, container.model_version, container.replica_id)
        await self._run(self._clients[Db.CONTAINER].hset(key, mapping=container.to_hash()))

    async def get_container(self, name: str, version: str, replica_id: int) -> ContainerInfo | None:
        fields = await self._run(
            self._clients[Db.CONTAINER].hgetall(container_key(name, version, replica_id))
        )
        return ContainerInfo.from_hash(fields) if fields else None

    async def list_container_ids(self) -> list[tuple[str, str, int]]:
        """Every registered replica as (model name, model version, replica id), from the keys."""
        keys = await self._run(self._clients[Db.CONTAINER].keys("*"))
        return [parse_container_key(k) for k in keys]

    async def list_containers(self) -> list[ContainerInfo]:
        client = self._clients[Db.CONTAINER]
        keys = await self._run(client.keys("*"))
        records = []
        for key in keys:
            fields = await self._run(client.hgetall(key))
            if fields:
                records.append(ContainerInfo.from_hash(fields))
        return records

    async def delete_container(self, name: str, version: str, replica_id: int) -> None:
        await self._run(self._clients[Db.CONTAINER].delete(container_key(name, version, replica_id)))

    # ------------------------------------------------------------------ selection state (DB 1)

    async def set_selection_state(self, app_name: str, default_output: str) -> None:
        import json  # the value is tiny and written once per app registration

        value = json.dumps({"y_hat": default_output}, separators=(",", ":"), ensure_ascii=False)
        await self._run(self._clients[Db.STATE].set(selection_state_key(app_name), value))

    async def delete_selection_state(self, app_name: str) -> None:
        await self._run(self._clients[Db.STATE].delete(selection_state_key(app_name)))

    # ------------------------------------------------------------------ helpers

    @staticmethod
    async def _run(awaitable):  # type: ignore[no-untyped-def]
        try:
            return await awaitable
        except RedisError as exc:
            raise StateError(f"Redis error: {exc}") from exc
