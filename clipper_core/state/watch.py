"""Keyspace notifications -> typed change events.

``watch_changes`` subscribes to the patterns the original query frontend uses (section 5.4
of the core spec) and yields one :class:`StateChange` per notification. If the pub/sub
connection drops it reconnects and yields :class:`Resync` first, so the consumer reloads
whatever it may have missed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from typing import Final

from redis.asyncio.client import PubSub
from redis.exceptions import RedisError

from clipper_core.errors import StateError
from clipper_core.state.schema import CURRENT_VERSION_PREFIX, Db, keyspace_pattern
from clipper_core.state.store import StateStore

__all__ = [
    "WATCHED_DBS",
    "Barrier",
    "KeyspaceWatch",
    "Resync",
    "StateChange",
    "parse_keyspace_channel",
    "watch_changes",
]

logger = logging.getLogger(__name__)

WATCHED_DBS: Final = (Db.MODEL, Db.CONTAINER, Db.APPLICATION, Db.METADATA, Db.APP_MODEL_LINKS)
RESUBSCRIBE_DELAY_S: Final = 0.5
SUBSCRIBE_CONFIRM_TIMEOUT_S: Final = 10.0
# PING payloads of barriers start with this, so redis-py's own health-check pongs never match.
BARRIER_PREFIX: Final = "clipper-barrier:"


@dataclass(slots=True, frozen=True)
class StateChange:
    """Redis ``event`` (``hset``, ``del``, ``sadd``, ...) happened to ``key`` in ``db``.

    For DB 6 the ``CURRENT_MODEL_VERSION:`` prefix is stripped, so ``key`` is the model name.
    """

    db: Db
    key: str
    event: str


@dataclass(slots=True, frozen=True)
class Resync:
    """Notifications may have been missed; reload the whole state."""


@dataclass(slots=True, frozen=True)
class Barrier:
    """Every notification published before ``KeyspaceWatch.ping(token)`` was yielded already."""

    token: str


def _patterns(dbs: Iterable[Db]) -> list[str]:
    return [keyspace_pattern(db, CURRENT_VERSION_PREFIX if db is Db.METADATA else "") for db in dbs]


def parse_keyspace_channel(channel: str, event: str) -> StateChange | None:
    """``__keyspace@5__:myapp`` + ``hset`` -> StateChange(APPLICATION, "myapp", "hset")."""
    head, sep, key = channel.partition(":")
    if not sep or not head.startswith("__keyspace@") or not head.endswith("__"):
        return None
    try:
        db = Db(int(head[len("__keyspace@") : -2]))
    except ValueError:
        return None
    if db is Db.METADATA:
        if not key.startswith(CURRENT_VERSION_PREFIX):
            return None
        key = key[len(CURRENT_VERSION_PREFIX) :]
    return StateChange(db, key, event)


class KeyspaceWatch:
    """One keyspace subscription, its change stream, and read-your-writes barriers over it.

    Redis delivers a ``PING`` sent on a subscribed connection as a ``pong`` message *after*
    every notification published before it; so :meth:`ping` followed by the :class:`Barrier`
    coming out of :meth:`changes` proves that the consumer has seen every change made before
    the ping. That is what lets a frontend answer "does this app exist?" with what Redis held
    when the question arrived, not with what the notifications had delivered so far.
    """

    def __init__(self, store: StateStore, dbs: Iterable[Db] = WATCHED_DBS) -> None:
        self._store = store
        self._patterns = _patterns(dbs)
        self._pubsub: PubSub | None = None

    async def ping(self, token: str) -> bool:
        """Ask for ``Barrier(token)`` on the change stream; False when not subscribed now."""
        pubsub = self._pubsub
        if pubsub is None:
            return False
        try:
            await pubsub.ping(BARRIER_PREFIX + token)
        except RedisError as exc:
            logger.debug("Barrier ping failed: %s", exc)
            return False
        return True

    async def changes(
        self, ready: asyncio.Event | None = None
    ) -> AsyncIterator[StateChange | Resync | Barrier]:
        """Yield changes forever; ``ready`` is set once Redis has confirmed the first subscription.

        After a lost subscription it re-enables keyspace notifications (a restarted Redis has
        them off again), resubscribes, and yields :class:`Resync` before anything else.
        """
        first = True
        while True:
            pubsub = self._store.client(Db.APPLICATION).pubsub()
            try:
                if not first:
                    await self._store.enable_keyspace_notifications()
                await self._subscribe(pubsub)
                self._pubsub = pubsub
                if ready is not None:
                    ready.set()
                if not first:
                    yield Resync()
                first = False
                async for message in pubsub.listen():
                    kind = message.get("type")
                    if kind == "pmessage":
                        change = parse_keyspace_channel(str(message["channel"]), str(message["data"]))
                        if change is not None:
                            yield change
                    elif kind == "pong":
                        data = str(message.get("data") or "")
                        if data.startswith(BARRIER_PREFIX):
                            yield Barrier(data[len(BARRIER_PREFIX) :])
            except (RedisError, StateError, TimeoutError) as exc:
                logger.warning("Lost the Redis keyspace subscription (%s); resubscribing", exc)
                self._pubsub = None
                await asyncio.sleep(RESUBSCRIBE_DELAY_S)
            finally:
                self._pubsub = None
                try:
                    await pubsub.aclose()
                except RedisError:
                    logger.debug("pubsub close failed", exc_info=True)

    async def _subscribe(self, pubsub: PubSub) -> None:
        """PSUBSCRIBE and wait for Redis to confirm every pattern (sending is not subscribing)."""
        await pubsub.psubscribe(*self._patterns)
        confirmed = 0
        async with asyncio.timeout(SUBSCRIBE_CONFIRM_TIMEOUT_S):
            while confirmed < len(self._patterns):
                message = await pubsub.get_message(timeout=SUBSCRIBE_CONFIRM_TIMEOUT_S)
                if message is not None and message.get("type") == "psubscribe":
                    confirmed += 1


async def watch_changes(
    store: StateStore,
    dbs: Iterable[Db] = WATCHED_DBS,
    ready: asyncio.Event | None = None,
) -> AsyncIterator[StateChange | Resync]:
    """Yield changes forever; ``ready`` is set once the first subscription is confirmed."""
    async for change in KeyspaceWatch(store, dbs).changes(ready):
        if not isinstance(change, Barrier):
            yield change
