"""Keyspace notifications -> typed change events.

``watch_changes`` subscribes to the patterns the original query frontend uses (section 5.4
of the core spec) and yields one :class:`StateChange` per notification. If the pub/sub
connection drops it reconnects and yields :class:`Resync` first, so the consumer reloads
whatever it may have missed.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
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
# How often a quiet subscription checks whether redis-py reconnected it behind our back.
RECONNECT_CHECK_S: Final = 0.5
# Each watcher's barrier channel: this prefix and a random suffix (no glob characters, so the
# name works as its own pattern).
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

    The subscription also listens on a channel of its own. Redis executes commands one at a
    time and writes a subscriber's messages in that order, so a message :meth:`ping` publishes
    there reaches the subscription *after* every notification of a write that Redis executed
    before it; the :class:`Barrier` coming out of :meth:`changes` then proves that the consumer
    has seen every change made before the ping. That is what lets a frontend answer "does this
    app exist?" with what Redis held when the question arrived, not with what the notifications
    had delivered so far. (A ``PING`` on the subscribed connection would do the same, but
    redis-py mangles its answer when responses are decoded.)
    """

    def __init__(self, store: StateStore, dbs: Iterable[Db] = WATCHED_DBS) -> None:
        self._store = store
        self._barrier_channel = f"{BARRIER_PREFIX}{secrets.token_hex(8)}"
        self._patterns = [*_patterns(dbs), self._barrier_channel]

    async def ping(self, token: str) -> bool:
        """Ask for ``Barrier(token)`` on the change stream; False when Redis cannot be reached.

        While the subscription is being re-established, the barrier is answered by the
        :class:`Resync` that follows (the reload reads everything), not by its own message.
        """
        try:
            await self._store.client(Db.APPLICATION).publish(self._barrier_channel, token)
        except RedisError as exc:
            logger.debug("Barrier ping failed: %s", exc)
            return False
        # Published to nobody means our subscription is gone (a restarted Redis) and about to be
        # re-established: the resync that follows answers the barrier, so it still counts.
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
                if ready is not None:
                    ready.set()
                if not first:
                    yield Resync()
                first = False
                reconnected = _ReconnectFlag(pubsub)
                while True:
                    message = await pubsub.get_message(timeout=RECONNECT_CHECK_S)
                    if reconnected.is_set:
                        # redis-py re-established the connection and resubscribed on its own:
                        # whatever happened meanwhile (a restarted, maybe empty Redis with
                        # notifications off) is unknown, so go through a full resubscribe. A
                        # message read after the reconnect (a barrier's pong) must not count.
                        raise _SilentReconnect("the connection to Redis was re-established")
                    if message is None:
                        continue
                    if message.get("type") != "pmessage":
                        continue
                    channel = str(message["channel"])
                    if channel == self._barrier_channel:
                        yield Barrier(str(message["data"]))
                        continue
                    change = parse_keyspace_channel(channel, str(message["data"]))
                    if change is not None:
                        yield change
            except (RedisError, StateError, TimeoutError, _SilentReconnect) as exc:
                logger.warning("Lost the Redis keyspace subscription (%s); resubscribing", exc)
                await asyncio.sleep(RESUBSCRIBE_DELAY_S)
            finally:
                # redis-py leaves PubSub.aclose untyped; this names the type it has.
                close_pubsub: Callable[[], Awaitable[None]] = pubsub.aclose
                try:
                    await close_pubsub()
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


class _SilentReconnect(Exception):
    """redis-py reconnected the subscription by itself (no error reached us)."""


class _ReconnectFlag:
    """Set when the subscription's connection connects again (redis-py keeps a weak reference
    to a bound method: the flag lives as long as the loop that checks it)."""

    def __init__(self, pubsub: PubSub) -> None:
        self.is_set = False
        if pubsub.connection is not None:
            pubsub.connection.register_connect_callback(self.on_connect)

    async def on_connect(self, _connection: object) -> None:
        self.is_set = True


async def watch_changes(
    store: StateStore,
    dbs: Iterable[Db] = WATCHED_DBS,
    ready: asyncio.Event | None = None,
) -> AsyncIterator[StateChange | Resync]:
    """Yield changes forever; ``ready`` is set once the first subscription is confirmed."""
    async for change in KeyspaceWatch(store, dbs).changes(ready):
        if not isinstance(change, Barrier):
            yield change
