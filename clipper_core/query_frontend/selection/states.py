"""Policy states in Redis (DB 1, the original's selection-state database), cached per process.

A query reads its application's (and user's) state from a per-process copy that is at most
``STATE_REFRESH_S`` old, so the query path does not pay a Redis round trip per query and
several query frontends converge within that time. Feedback is applied in Redis atomically
(``StateStore.update_policy_state``: WATCH/MULTI, re-applied on conflict), so concurrent
``/update`` requests, in one frontend or several, never lose a round; the result replaces the
cached copy. A user (``uid`` != 0) without a state of its own starts from the application's
(uid 0) weights.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Final

from clipper_core.errors import StateError
from clipper_core.query_frontend.selection.base import SelectionPolicy
from clipper_core.state import PolicyState, StateStore

__all__ = ["STATE_REFRESH_S", "PolicyStates"]

logger = logging.getLogger(__name__)

STATE_REFRESH_S: Final = 1.0
EMPTY_STATE: Final = PolicyState()

_Key = tuple[str, int, str]


class PolicyStates:
    """Learning policies' states: cached reads, atomic feedback writes."""

    def __init__(self, store: StateStore, refresh_s: float = STATE_REFRESH_S) -> None:
        self._store = store
        self._refresh_s = refresh_s
        self._cached: dict[_Key, tuple[float, PolicyState]] = {}
        self._loading: dict[_Key, asyncio.Future[PolicyState]] = {}

    def peek(self, app: str, policy: str, uid: int = 0) -> PolicyState | None:
        """The cached state, however old (metrics), or None."""
        cached = self._cached.get((app, uid, policy))
        return None if cached is None else cached[1]

    async def current(self, app: str, policy: SelectionPolicy, uid: int = 0) -> PolicyState:
        """The state queries of ``(app, uid)`` use; a policy that does not learn has none."""
        if not policy.learns:
            return EMPTY_STATE
        key = (app, uid, policy.name)
        loop = asyncio.get_running_loop()
        cached = self._cached.get(key)
        if cached is not None and loop.time() - cached[0] < self._refresh_s:
            return cached[1]
        loading = self._loading.get(key)
        if loading is not None:  # one read serves every query that found the copy stale
            return await asyncio.shield(loading)
        future: asyncio.Future[PolicyState] = loop.create_future()
        self._loading[key] = future
        # Whatever happens, the waiters get a state: the fresh one, or what we had.
        state = cached[1] if cached is not None else EMPTY_STATE
        try:
            state = await self._read(app, uid, policy.name)
        except StateError as exc:
            # Serve on with what we had (or the initial state) rather than fail the query.
            logger.warning("Could not read the selection state of %s (uid %d): %s", app, uid, exc.cause)
        finally:
            del self._loading[key]
            self._cached[key] = (loop.time(), state)
            future.set_result(state)
        return state

    async def observe(
        self, app: str, policy: SelectionPolicy, uid: int, update: Callable[[PolicyState], PolicyState]
    ) -> PolicyState:
        """Apply one feedback round atomically in Redis; returns (and caches) the new state.

        Raises:
            StateError: Redis failed or the state kept changing under us.
        """
        base = EMPTY_STATE
        if uid != 0 and await self._store.get_policy_state(app, uid, policy.name) is None:
            base = await self._store.get_policy_state(app, 0, policy.name) or EMPTY_STATE
        new = await self._store.update_policy_state(
            app, uid, policy.name, lambda old: update(old if old is not None else base)
        )
        self._cached[(app, uid, policy.name)] = (asyncio.get_running_loop().time(), new)
        return new

    def forget_app(self, app: str) -> None:
        for key in [k for k in self._cached if k[0] == app]:
            del self._cached[key]

    async def _read(self, app: str, uid: int, policy: str) -> PolicyState:
        state = await self._store.get_policy_state(app, uid, policy)
        if state is None and uid != 0:
            state = await self._store.get_policy_state(app, 0, policy)
        return state or EMPTY_STATE
