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

from redis.exceptions import RedisError

from clipper_core.state.schema import CURRENT_VERSION_PREFIX, Db, keyspace_pattern
from clipper_core.state.store import StateStore

__all__ = ["WATCHED_DBS", "Resync", "StateChange", "parse_keyspace_channel", "watch_changes"]

logger = logging.getLogger(__name__)

WATCHED_DBS: Final = (Db.MODEL, Db.CONTAINER, Db.APPLICATION, Db.METADATA, Db.APP_MODEL_LINKS)
RESUBSCRIBE_DELAY_S: Final = 0.5


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


async def watch_changes(
    store: StateStore,
    dbs: Iterable[Db] = WATCHED_DBS,
    ready: asyncio.Event | None = None,
) -> AsyncIterator[StateChange | Resync]:
    """Yield changes forever; ``ready`` is set once the first subscription is active."""
    patterns = _patterns(dbs)
    first = True
    while True:
        pubsub = store.client(Db.APPLICATION).pubsub(ignore_subscribe_messages=True)
        try:
            await pubsub.psubscribe(*patterns)
            if ready is not None:
                ready.set()
            if not first:
                yield Resync()
            first = False
            async for message in pubsub.listen():
                if message.get("type") != "pmessage":
                    continue
                change = parse_keyspace_channel(str(message["channel"]), str(message["data"]))
                if change is not None:
                    yield change
        except RedisError as exc:
            logger.warning("Lost the Redis keyspace subscription (%s); resubscribing", exc)
            await asyncio.sleep(RESUBSCRIBE_DELAY_S)
        finally:
            try:
                await pubsub.aclose()
            except RedisError:
                logger.debug("pubsub close failed", exc_info=True)
