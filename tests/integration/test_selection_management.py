# ruff: noqa: E501  (expected-message tables read best unwrapped)
"""Selection policies in the management API (issue 15) against a real redis-server: opting in,
several links, switching policy, weights in get_application; apps that do not opt in unchanged."""

from __future__ import annotations

import asyncio
import json

import redis.asyncio as aioredis
from aiohttp.test_utils import TestClient

from clipper_core.state import Db, PolicyState
from clipper_core.state.schema import policy_state_key, selection_state_key
from tests.helpers import RedisServer
from tests.integration.test_management_frontend import add_app, add_model, client, link, ok, post, store_of

__all__ = ["client"]  # the fixture

APP = {"input_type": "doubles", "default_output": "-1", "latency_slo_micros": 100000}


async def test_add_app_with_a_policy_and_its_refusals(client: TestClient) -> None:
    assert await post(client, "add_app", {"name": "e", **APP, "selection_policy": "exp4", "confidence_threshold": 0.7}) == (
        200, "Successfully added application with name 'e'")
    app = await store_of(client).get_app("e")
    assert app is not None and (app.policy, app.confidence_threshold) == ("exp4", 0.7)
    assert await post(client, "add_app", {"name": "x", **APP, "selection_policy": "bandit"}) == (
        400, "bandit is not a valid selection_policy. Accepted policies: DefaultOutputSelectionPolicy, exp3, exp4, ab")
    assert await post(client, "add_app", {"name": "x", **APP, "selection_policy": "exp4", "confidence_threshold": 1.5}) == (
        400, "Invalid confidence_threshold supplied: 1.5. It must be between 0 and 1")
    assert await post(client, "add_app", {"name": "x", **APP, "selection_policy": "exp3", "confidence_threshold": 0.5}) == (
        400, "confidence_threshold applies to the exp4 policy only, not to exp3")
    assert await post(client, "add_app", {"name": "x", **APP, "confidence_threshold": 0.5}) == (
        400, "confidence_threshold needs a selection_policy that uses it")
    assert await post(client, "add_app", {"name": "x", **APP, "selection_policy": "ab", "policy_weights": {"a": -1}}) == (
        400, "Invalid policy_weights supplied: every weight must be a number >= 0 and at least one must be positive")
    status, text = await post(client, "add_app", {"name": "x", **APP, "selection_policy": 4})
    assert status == 400 and text.startswith("Error parsing JSON: Type mismatch! JSON key selection_policy expected type Stringbut found type Number")
    assert await store_of(client).list_app_names() == ["e"]


async def test_an_app_on_the_default_policy_is_stored_and_shown_as_before(client: TestClient, redis_clean: RedisServer) -> None:
    await add_app(client, "plain")
    raw = aioredis.Redis(host=redis_clean.host, port=redis_clean.port, db=int(Db.APPLICATION), decode_responses=True)
    try:
        assert sorted(await raw.hkeys("plain")) == ["default_output", "input_type", "latency_slo_micros", "policy"]
    finally:
        await raw.aclose()
    entry = json.loads(await ok(client, "get_application", {"name": "plain"}))
    assert list(entry) == ["input_type", "default_output", "latency_slo_micros", "name", "linked_models"]


async def test_several_links_only_for_an_app_on_a_policy(client: TestClient) -> None:
    for model in ("m1", "m2", "m3"):
        await add_model(client, model, "1")
    await add_app(client, "plain")
    assert await link(client, "plain", "m1", "m2") == (400, "Applications must be linked with at most one model. Attempted to add links to 2 models.")
    assert (await link(client, "plain", "m1"))[0] == 200
    assert await link(client, "plain", "m2") == (400, "A model with name m1 is already linked to 'plain'.")
    await ok(client, "add_app", {"name": "ens", **APP, "selection_policy": "exp4"})
    assert await link(client, "ens", "m1", "m2") == (200, "Successfully linked models with names 'm1', 'm2' to application 'ens'")
    assert await link(client, "ens", "m3") == (200, "Successfully linked model with name 'm3' to application 'ens'")
    assert await link(client, "ens", "m2") == (400, "The model with name 'm2' is already linked to 'ens'")
    assert await link(client, "ens", "nope") == (400, "No model with name 'nope' exists.")
    # Back to the default policy only with one link left.
    body = {"app_name": "ens", "selection_policy": "DefaultOutputSelectionPolicy"}
    assert await post(client, "set_selection_policy", body) == (
        400, "Application 'ens' is linked to 3 models and DefaultOutputSelectionPolicy uses one: unlink all but one model first")
    await ok(client, "delete_model_links", {"app_name": "ens", "model_names": ["m2", "m3"]})
    assert await post(client, "set_selection_policy", body) == (
        200, "Successfully set the selection policy of application 'ens' to 'DefaultOutputSelectionPolicy'")


async def test_set_policy_and_weights_in_get_application(client: TestClient) -> None:
    for model in ("m1", "m2"):
        await add_model(client, model, "1")
    await add_app(client, "app")
    await link(client, "app", "m1")
    assert await post(client, "set_selection_policy", {"app_name": "nope", "selection_policy": "exp3"}) == (
        400, "No app with name 'nope' exists.")
    assert await post(client, "set_selection_policy", {"app_name": "app", "selection_policy": "ab", "policy_weights": {"m1": 3, "m2": 1}}) == (
        200, "Successfully set the selection policy of application 'app' to 'ab'")
    await link(client, "app", "m2")
    entry = json.loads(await ok(client, "get_application", {"name": "app"}))
    assert entry["selection_policy"] == "ab" and entry["selection_weights"] == {"m1": 0.75, "m2": 0.25}
    await ok(client, "set_selection_policy", {"app_name": "app", "selection_policy": "exp4"})
    await store_of(client).update_policy_state("app", 0, "exp4", lambda _old: PolicyState({"m1": 1.0, "m2": 0.25}, 7))
    entry = json.loads(await ok(client, "get_application", {"name": "app"}))
    assert entry["selection_policy"] == "exp4" and entry["confidence_threshold"] == 0.5
    assert entry["selection_weights"] == {"m1": 0.8, "m2": 0.2} and entry["feedback_rounds"] == 7
    [listed] = json.loads(await ok(client, "get_all_applications", {"verbose": True}))
    assert listed == entry


async def test_delete_app_removes_every_policy_state_of_that_app_only(client: TestClient, redis_clean: RedisServer) -> None:
    await ok(client, "add_app", {"name": "a", **APP, "selection_policy": "exp3"})
    store = store_of(client)
    await store.set_selection_state("a", "-1")
    for uid in (0, 42):
        await store.update_policy_state("a", uid, "exp3", lambda _old: PolicyState({"m": 1.0}, 1))
    await store.update_policy_state("a:b", 0, "exp3", lambda _old: PolicyState({"m": 1.0}, 1))  # another app
    await ok(client, "delete_app", {"name": "a"})
    raw = aioredis.Redis(host=redis_clean.host, port=redis_clean.port, db=int(Db.STATE), decode_responses=True)
    try:
        assert sorted(await raw.keys("*")) == [policy_state_key("a:b", 0, "exp3")]
        assert not await raw.exists(selection_state_key("a"))
    finally:
        await raw.aclose()


async def test_concurrent_feedback_writes_are_atomic(client: TestClient) -> None:
    """Fifty read-modify-writes at once on one state: none is lost (WATCH/MULTI, retried)."""
    store = store_of(client)

    def bump(old: PolicyState | None) -> PolicyState:
        old = old or PolicyState()
        return PolicyState({"m": old.weights.get("m", 0.0) + 1.0}, old.rounds + 1)

    await asyncio.gather(*(store.update_policy_state("app", 0, "exp4", bump) for _ in range(50)))
    final = await store.get_policy_state("app", 0, "exp4")
    assert final is not None and final.rounds == 50 and final.weights == {"m": 50.0}
