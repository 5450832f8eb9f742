"""Policy states against a real redis-server (issue 15): the per-process cache, per-user states
starting from the application's, atomic feedback from many writers at once."""

from __future__ import annotations

import asyncio

from clipper_core.query_frontend.selection import Exp4Policy, Feedback, PolicyStates, SelectionQuery
from clipper_core.rpc import InputType
from clipper_core.state import AppInfo, ModelId, PolicyState, StateStore
from tests.integration.test_state_store import store

__all__ = ["store"]  # the fixture

POLICY = Exp4Policy(AppInfo("app", InputType.DOUBLES, "-1", 1000, "exp4"))
QUERY = SelectionQuery("app", 0, (ModelId("good", "1"), ModelId("bad", "1")))
GOOD_RIGHT = Feedback(1.0, {"good": 0.0, "bad": 1.0})


async def test_users_start_from_the_applications_weights_and_learn_on_their_own(store: StateStore) -> None:
    states = PolicyStates(store, refresh_s=0.0)
    assert await states.current("app", POLICY, 0) == PolicyState()
    app_state = await states.observe("app", POLICY, 0, lambda s: POLICY.observe(s, QUERY, GOOD_RIGHT))
    assert app_state.rounds == 1
    # uid 7 has no state: it reads, and then learns from, the application's.
    assert await states.current("app", POLICY, 7) == app_state
    user = await states.observe("app", POLICY, 7, lambda s: POLICY.observe(s, QUERY, GOOD_RIGHT))
    assert user.rounds == 2 and user.weights["bad"] < app_state.weights["bad"]
    assert await store.get_policy_state("app", 0, "exp4") == app_state  # untouched by uid 7
    assert await store.get_policy_state("app", 7, "exp4") == user


async def test_reads_are_cached_for_the_refresh_interval(store: StateStore) -> None:
    states = PolicyStates(store, refresh_s=60.0)
    assert await states.current("app", POLICY) == PolicyState()
    # Another frontend writes: this one sees it only after the refresh interval...
    await store.update_policy_state("app", 0, "exp4", lambda _old: PolicyState({"good": 1.0}, 5))
    assert await states.current("app", POLICY) == PolicyState()
    # ... or at once after its own feedback, which re-reads inside the transaction.
    new = await states.observe("app", POLICY, 0, lambda s: PolicyState(s.weights, s.rounds + 1))
    assert new.rounds == 6 and await states.current("app", POLICY) == new


async def test_concurrent_readers_share_one_redis_read(store: StateStore) -> None:
    states = PolicyStates(store, refresh_s=60.0)
    reads = 0
    original = store.get_policy_state

    async def counting(app: str, uid: int, policy: str) -> PolicyState | None:
        nonlocal reads
        reads += 1
        return await original(app, uid, policy)

    store.get_policy_state = counting  # type: ignore[method-assign]
    results = await asyncio.gather(*(states.current("app", POLICY) for _ in range(20)))
    assert reads == 1 and len(set(map(repr, results))) == 1


async def test_concurrent_feedback_from_two_frontends_loses_no_round(store: StateStore) -> None:
    first, second = PolicyStates(store), PolicyStates(store)
    await asyncio.gather(*(
        states.observe("app", POLICY, 0, lambda s: POLICY.observe(s, QUERY, GOOD_RIGHT))
        for _ in range(20) for states in (first, second)
    ))
    final = await store.get_policy_state("app", 0, "exp4")
    assert final is not None and final.rounds == 40
