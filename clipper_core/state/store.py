"""Async Redis accessors: the only code that reads or writes Clipper's Redis state.

Keys are enumerated with ``SCAN`` (never ``KEYS``, which blocks Redis for the whole keyspace).
The ``get_*s`` bulk readers send one pipeline per call, so loading N records is one round
trip instead of N.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any, Final, TypeVar

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff, NoBackoff
from redis.exceptions import RedisError, WatchError
from redis.typing import EncodableT, FieldT

from clipper_core.errors import StateError
from clipper_core.settings import RedisOptions
from clipper_core.state.records import AppInfo, ContainerInfo, ModelInfo, PolicyState
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
    parse_policy_state_key,
    policy_state_key,
    policy_state_pattern,
    selection_state_key,
)

__all__ = ["StateStore"]

logger = logging.getLogger(__name__)

CONNECT_RETRY_FIRST_S: Final = 0.1
CONNECT_RETRY_MAX_S: Final = 1.0
CONNECT_PROBE_TIMEOUT_S: Final = 1.0
KEYSPACE_EVENTS: Final = "AKE"
# Keys asked for per SCAN step: large enough that a thousand records take one round trip.
SCAN_COUNT: Final = 1000
# Connections per logical DB (the keyspace watcher holds one of its DB's); callers beyond it wait.
POOL_MAX_CONNECTIONS: Final = 16
POOL_WAIT_S: Final = 30.0
# Optimistic transactions (WATCH/MULTI) retried this often before a conflict is reported.
STATE_UPDATE_ATTEMPTS: Final = 100

T = TypeVar("T")

# KEYS[1] = record key, ARGV[1] = TTL seconds, ARGV[2..] = field, value, field, value, ...
_CLAIM_CONTAINER_SCRIPT: Final = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV, 2))
redis.call('EXPIRE', KEYS[1], ARGV[1])
return 1
"""


class StateStore:
    """One client per logical DB; every method raises StateError on Redis failure."""

    def __init__(self, settings: RedisOptions) -> None:
        self.settings = settings
        # A bounded pool per DB that makes callers wait for a free connection: a burst of
        # container registrations must queue its writes, not open a connection each until
        # Redis refuses clients (which left records that were never deleted).
        self._clients: dict[Db, aioredis.Redis] = {
            # from_pool: the client owns the pool and closes it in aclose().
            db: aioredis.Redis.from_pool(
                aioredis.BlockingConnectionPool(
                    max_connections=POOL_MAX_CONNECTIONS,
                    timeout=POOL_WAIT_S,
                    host=settings.ip,
                    port=settings.port,
                    password=settings.password,
                    db=int(db),
                    decode_responses=True,
                    # What Redis() gives its own pool (a pool passed in gets no retry): a
                    # connection closed by a Redis restart is re-opened, not reported.
                    retry=Retry(ExponentialWithJitterBackoff(base=0.01, cap=1), 10),
                )
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
        await self._run(self._clients[Db.APPLICATION].hset(app_key(app.name), mapping=_fields(app.to_hash())))

    async def get_app(self, name: str) -> AppInfo | None:
        fields = _decoded(await self._run(self._clients[Db.APPLICATION].hgetall(app_key(name))))
        return AppInfo.from_hash(name, fields) if fields else None

    async def app_exists(self, name: str) -> bool:
        return bool(await self._run(self._clients[Db.APPLICATION].exists(app_key(name))))

    async def delete_app(self, name: str) -> bool:
        return bool(await self._run(self._clients[Db.APPLICATION].delete(app_key(name))))

    async def list_app_names(self) -> list[str]:
        return await self._scan(Db.APPLICATION)

    async def set_app_policy(self, app: AppInfo) -> None:
        """Write the app's policy fields (one ``HSET``: the query frontend re-reads the app)."""
        fields = _fields(app.policy_fields())
        await self._run(self._clients[Db.APPLICATION].hset(app_key(app.name), mapping=fields))

    async def get_apps(self, names: Sequence[str]) -> list[AppInfo | None]:
        """The records of ``names`` in one round trip; None where absent or unreadable (logged)."""
        pipe = self._clients[Db.APPLICATION].pipeline(transaction=False)
        for name in names:
            pipe.hgetall(app_key(name))
        hashes: list[dict[str, str]] = await self._run(pipe.execute())
        return [
            _readable(f"application {name}", AppInfo.from_hash, name, fields) if fields else None
            for name, fields in zip(names, hashes, strict=True)
        ]

    # ------------------------------------------------------------------ links

    async def get_linked_models(self, app_name: str) -> list[str]:
        members = await self._run(self._clients[Db.APP_MODEL_LINKS].smembers(links_key(app_name)))
        return sorted(map(str, members))

    async def get_links(self, app_names: Sequence[str]) -> list[list[str]]:
        """The sorted linked model names of each app, in one round trip."""
        pipe = self._clients[Db.APP_MODEL_LINKS].pipeline(transaction=False)
        for app_name in app_names:
            pipe.smembers(links_key(app_name))
        members: list[set[str]] = await self._run(pipe.execute())
        return [sorted(names) for names in members]

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
            self._clients[Db.MODEL].hset(
                model_key(model.name, model.version), mapping=_fields(model.to_hash())
            )
        )

    async def get_model(self, name: str, version: str) -> ModelInfo | None:
        fields = _decoded(await self._run(self._clients[Db.MODEL].hgetall(model_key(name, version))))
        return ModelInfo.from_hash(fields) if fields else None

    async def model_exists(self, name: str, version: str) -> bool:
        return bool(await self._run(self._clients[Db.MODEL].exists(model_key(name, version))))

    async def list_model_keys(self) -> list[tuple[str, str]]:
        """Every registered (name, version), valid or marked invalid."""
        return [parse_model_key(k) for k in await self._scan(Db.MODEL)]

    async def get_model_versions(self, name: str) -> list[str]:
        return [parse_model_key(k)[1] for k in await self._scan(Db.MODEL, model_key_pattern(name))]

    async def get_models(self, models: Sequence[tuple[str, str]]) -> list[ModelInfo | None]:
        """The records of (name, version) pairs in one round trip; None where absent or unreadable."""
        pipe = self._clients[Db.MODEL].pipeline(transaction=False)
        for name, version in models:
            pipe.hgetall(model_key(name, version))
        hashes: list[dict[str, str]] = await self._run(pipe.execute())
        return [
            _readable(f"model {name}:{version}", ModelInfo.from_hash, fields) if fields else None
            for (name, version), fields in zip(models, hashes, strict=True)
        ]

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
        return str(value) if value else None

    async def get_current_versions(self, names: Sequence[str]) -> list[str | None]:
        """The current version of each model name, in one round trip."""
        pipe = self._clients[Db.METADATA].pipeline(transaction=False)
        for name in names:
            pipe.get(current_version_key(name))
        values: list[str | None] = await self._run(pipe.execute())
        return [value or None for value in values]

    async def set_current_version(self, name: str, version: str) -> None:
        await self._run(self._clients[Db.METADATA].set(current_version_key(name), version))

    # ------------------------------------------------------------------ containers

    async def claim_container(self, container: ContainerInfo, ttl_s: int) -> bool:
        """Write the record only if its key is free, expiring in ``ttl_s``; False if taken.

        Atomic (one script), so two query frontends never hand out the same replica id.
        """
        key = container_key(container.model_name, container.model_version, container.replica_id)
        fields = [item for pair in container.to_hash().items() for item in pair]
        claimed = await self._run(
            self._clients[Db.CONTAINER].eval(_CLAIM_CONTAINER_SCRIPT, 1, key, ttl_s, *fields)
        )
        return bool(claimed)

    async def refresh_containers(self, containers: Sequence[ContainerInfo], ttl_s: int) -> None:
        """Push the expiry of these (live) records ``ttl_s`` ahead, in one round trip."""
        if not containers:
            return
        pipe = self._clients[Db.CONTAINER].pipeline(transaction=False)
        for c in containers:
            pipe.expire(container_key(c.model_name, c.model_version, c.replica_id), ttl_s)
        await self._run(pipe.execute())

    async def expire_unowned_containers(self, ttl_s: int) -> int:
        """Give every record without an expiry one of ``ttl_s`` (records of a query frontend that
        is gone, or written before records expired); returns how many. A live replica's record
        is refreshed by its frontend, so only records nobody refreshes disappear."""
        keys = await self._scan(Db.CONTAINER)
        if not keys:
            return 0
        client = self._clients[Db.CONTAINER]
        pipe = client.pipeline(transaction=False)
        for key in keys:
            pipe.ttl(key)
        ttls: list[int] = await self._run(pipe.execute())
        unowned = [key for key, ttl in zip(keys, ttls, strict=True) if ttl == -1]
        if unowned:
            pipe = client.pipeline(transaction=False)
            for key in unowned:
                pipe.expire(key, ttl_s)
            await self._run(pipe.execute())
        return len(unowned)

    async def add_container(self, container: ContainerInfo) -> None:
        key = container_key(container.model_name, container.model_version, container.replica_id)
        await self._run(self._clients[Db.CONTAINER].hset(key, mapping=_fields(container.to_hash())))

    async def get_container(self, name: str, version: str, replica_id: int) -> ContainerInfo | None:
        fields = await self._run(
            self._clients[Db.CONTAINER].hgetall(container_key(name, version, replica_id))
        )
        return ContainerInfo.from_hash(_decoded(fields)) if fields else None

    async def list_container_ids(self) -> list[tuple[str, str, int]]:
        """Every registered replica as (model name, model version, replica id), from the keys."""
        return [parse_container_key(k) for k in await self._scan(Db.CONTAINER)]

    async def list_containers(self) -> list[ContainerInfo]:
        keys = await self._scan(Db.CONTAINER)
        pipe = self._clients[Db.CONTAINER].pipeline(transaction=False)
        for key in keys:
            pipe.hgetall(key)
        hashes: list[dict[str, str]] = await self._run(pipe.execute())
        return [ContainerInfo.from_hash(fields) for fields in hashes if fields]

    async def delete_container(self, name: str, version: str, replica_id: int) -> None:
        await self._run(self._clients[Db.CONTAINER].delete(container_key(name, version, replica_id)))

    async def delete_containers(self, containers: Sequence[ContainerInfo]) -> None:
        """Delete these records in one round trip."""
        keys = [container_key(c.model_name, c.model_version, c.replica_id) for c in containers]
        if keys:
            await self._run(self._clients[Db.CONTAINER].delete(*keys))

    # ------------------------------------------------------------------ selection state (DB 1)

    async def set_selection_state(self, app_name: str, default_output: str) -> None:
        await self.set_selection_states({app_name: default_output})

    async def set_selection_states(self, default_outputs: Mapping[str, str]) -> None:
        """The selection state of each app (its default output), in one round trip."""
        if not default_outputs:
            return
        pipe = self._clients[Db.STATE].pipeline(transaction=False)
        for app_name, default_output in default_outputs.items():
            pipe.set(selection_state_key(app_name), _selection_state(default_output))
        await self._run(pipe.execute())

    async def delete_selection_state(self, app_name: str) -> None:
        await self._run(self._clients[Db.STATE].delete(selection_state_key(app_name)))

    async def get_policy_state(self, app_name: str, uid: int, policy: str) -> PolicyState | None:
        raw = await self._run(self._clients[Db.STATE].get(policy_state_key(app_name, uid, policy)))
        return PolicyState.from_json(str(raw)) if raw else None

    async def update_policy_state(
        self,
        app_name: str,
        uid: int,
        policy: str,
        update: Callable[[PolicyState | None], PolicyState],
    ) -> PolicyState:
        """Read-modify-write one policy state atomically (``WATCH``/``MULTI``, retried on conflict).

        ``update`` is pure (it may run more than once) and gets None when there is no state yet.

        Raises:
            StateError: Redis failed, or the key kept changing for ``STATE_UPDATE_ATTEMPTS`` tries.
        """
        key = policy_state_key(app_name, uid, policy)
        client = self._clients[Db.STATE]
        for _ in range(STATE_UPDATE_ATTEMPTS):
            try:
                async with client.pipeline(transaction=True) as pipe:
                    await pipe.watch(key)
                    raw = await pipe.get(key)
                    new = update(PolicyState.from_json(str(raw)) if raw else None)
                    pipe.multi()  # type: ignore[no-untyped-call]
                    pipe.set(key, new.to_json())
                    await pipe.execute()
                    return new
            except WatchError:
                continue  # another writer won the race: read again and re-apply
            except RedisError as exc:
                raise StateError(f"Redis error: {exc}") from exc
        raise StateError(f"selection state {key} kept changing; gave up after {STATE_UPDATE_ATTEMPTS} tries")

    async def delete_policy_states(self, app_name: str) -> int:
        """Every DB 1 key of the app (each uid, each policy, the original's ``<app>:0:0``)."""
        keys = [
            key
            for key in await self._scan(Db.STATE, policy_state_pattern(app_name))
            if (parsed := parse_policy_state_key(key)) is not None and parsed[0] == app_name
        ]
        if keys:
            await self._run(self._clients[Db.STATE].delete(*keys))
        return len(keys)

    # ------------------------------------------------------------------ helpers

    async def _scan(self, db: Db, match: str = "*") -> list[str]:
        """Every key of ``db`` matching ``match``, by SCAN (each key once)."""

        async def keys() -> list[str]:
            found = [key async for key in self._clients[db].scan_iter(match=match, count=SCAN_COUNT)]
            return list(dict.fromkeys(found))  # SCAN may return a key twice during a rehash

        return await self._run(keys())

    @staticmethod
    async def _run(awaitable: Awaitable[T]) -> T:
        """Await one Redis call; a Redis failure becomes :class:`StateError`."""
        try:
            return await awaitable
        except RedisError as exc:
            raise StateError(f"Redis error: {exc}") from exc


def _fields(record: dict[str, str]) -> dict[FieldT, EncodableT]:
    """A record's hash as redis-py's ``hset`` types it."""
    return {key: value for key, value in record.items()}


def _decoded(fields: Mapping[Any, Any]) -> dict[str, str]:
    """A hash read back: str keys and values (every client has ``decode_responses=True``)."""
    return {str(key): str(value) for key, value in fields.items()}


def _readable(what: str, parse: Any, *fields: Any) -> Any:
    """``parse(*fields)``, or None with a warning when the record cannot be read."""
    try:
        return parse(*fields)
    except StateError as exc:
        logger.warning("Ignoring %s: %s", what, exc.cause)
        return None


def _selection_state(default_output: str) -> str:
    import json  # the value is tiny and written once per app registration

    return json.dumps({"y_hat": default_output}, separators=(",", ":"), ensure_ascii=False)
