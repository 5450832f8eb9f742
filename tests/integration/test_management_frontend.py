# ruff: noqa: E501  (expected-message tables read best unwrapped)
"""The management REST API against a real redis-server, endpoint by endpoint (aiohttp test client).

The frontend as a real process (restart, late Redis, password, outage) is in
``test_management_process.py``.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis
from aiohttp.test_utils import TestClient, TestServer

from clipper_core.management_frontend import build_app
from clipper_core.management_frontend.server import STORE_KEY
from clipper_core.settings import RedisOptions
from clipper_core.state import ContainerInfo, Db, InputType, StateStore
from clipper_core.state.schema import selection_state_key
from tests.helpers import RedisServer

ADD_APP_SCHEMA = '\n  {\n   "name" := string,\n   "input_type" := "integers" | "bytes" | "floats" | "doubles" | "strings",\n   "default_output" := string,\n   "latency_slo_micros" := int\n  }\n'
ADD_MODEL_SCHEMA = '\n  {\n   "model_name" := string,\n   "model_version" := string,\n   "labels" := [string],\n   "input_type" := "integers" | "bytes" | "floats" | "doubles" | "strings",\n   "container_name" := string,\n   "model_data_path" := string\n  }\n'
VERSIONED_SCHEMA = '\n  {\n   "model_name" := string,\n   "model_version" := string,\n  }\n'
VERBOSE_SCHEMA = '\n  {\n    "verbose" := bool\n  }\n'
ENDPOINT_SCHEMAS = {
    "add_app": ADD_APP_SCHEMA,
    "delete_app": ADD_APP_SCHEMA,
    "add_model_links": '\n  {\n    "app_name" := string,\n    "model_names" := [string]\n  }\n',
    "delete_model_links": '\n  {\n  "app_name" := string,\n  "model_names" := [string]\n  }\n',
    "add_model": ADD_MODEL_SCHEMA,
    "set_model_version": VERSIONED_SCHEMA,
    "delete_versioned_model": VERSIONED_SCHEMA,
    "get_all_applications": VERBOSE_SCHEMA,
    "get_application": '\n  {\n    "name" := string\n  }\n',
    "get_linked_models": '\n  {\n    "app_name" := string\n  }\n',
    "get_all_models": VERBOSE_SCHEMA,
    "get_model": '\n  {\n    "model_name" := string,\n    "model_version" := string\n  }\n',
    "get_all_containers": VERBOSE_SCHEMA,
    "get_container": '\n  {\n    "model_name" := string,\n    "model_version" := string,\n    "replica_id" := int\n  }\n',
    "get_state": '\n  {\n   "app_name" := string,\n   "uid" := int,\n  }\n',
}


@pytest.fixture
async def client(redis_clean: RedisServer) -> AsyncIterator[TestClient]:
    app = build_app(RedisOptions(redis_clean.host, redis_clean.port))
    async with TestClient(TestServer(app)) as test_client:
        yield test_client


def store_of(client: TestClient) -> StateStore:
    return client.app[STORE_KEY]


async def post(client: TestClient, endpoint: str, body: object) -> tuple[int, str]:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    response = await client.post(f"/admin/{endpoint}", data=data)
    assert response.headers["Content-Type"] == "application/json"
    return response.status, await response.text()


async def ok(client: TestClient, endpoint: str, body: object) -> str:
    status, text = await post(client, endpoint, body)
    assert status == 200, text
    return text


async def add_app(client: TestClient, name: str, input_type: str = "doubles", default: str = "-1") -> None:
    await ok(client, "add_app", {"name": name, "input_type": input_type, "default_output": default, "latency_slo_micros": 100000})


async def add_model(client: TestClient, name: str, version: str, input_type: str = "doubles", labels: list[str] | None = None) -> str:
    return await ok(client, "add_model", {
        "model_name": name, "model_version": version, "labels": labels or [], "input_type": input_type,
        "container_name": "img", "model_data_path": "DEPRECATED", "batch_size": -1,
    })


async def link(client: TestClient, app: str, *models: str) -> tuple[int, str]:
    return await post(client, "add_model_links", {"app_name": app, "model_names": list(models)})


# ------------------------------------------------------------------ framing, routing, JSON errors


async def test_ping_and_framing(client: TestClient) -> None:
    response = await client.get("/admin/ping")
    assert response.status == 200
    assert response.headers["Content-Type"] == "application/json"
    assert await response.text() == "PONG"


@pytest.mark.parametrize(("method", "path", "status"), [
    ("GET", "/nothing", 404), ("POST", "/admin/add_app/", 404), ("POST", "/admin/metrics", 404),
    ("POST", "/admin/ping", 405), ("GET", "/admin/add_app", 405),
])
async def test_unknown_routes_get_json(client: TestClient, method: str, path: str, status: int) -> None:
    response = await client.request(method, path, data=b"{}")
    assert response.status == status
    body = await response.json()
    assert list(body) == ["error", "cause"] and path in body["cause"]


async def test_oversized_body_is_413_json(client: TestClient) -> None:
    response = await client.post("/admin/add_app", data=b" " * (1024 * 1024 + 1))
    assert response.status == 413
    assert list(await response.json()) == ["error", "cause"]


@pytest.mark.parametrize("endpoint", sorted(ENDPOINT_SCHEMAS))
async def test_every_endpoint_cites_its_schema(client: TestClient, endpoint: str) -> None:
    schema = ENDPOINT_SCHEMAS[endpoint]
    assert await post(client, endpoint, b'{"a":1 "b"}') == (400, (
        "Error parsing JSON: JSON parse error: Missing a comma or '}' after an object member. (offset 7)\n"
        f". Expected JSON schema: {schema}"
    ))
    status, text = await post(client, endpoint, {})
    assert status == 400 and text.startswith("Error parsing JSON: JSON object does not have required key: ")
    assert text.endswith(f". Expected JSON schema: {schema}")


# ------------------------------------------------------------------ applications


async def test_add_app_and_its_errors(client: TestClient) -> None:
    body = {"name": "a", "input_type": "d", "default_output": "-1", "latency_slo_micros": 5}
    assert await post(client, "add_app", body) == (200, "Successfully added application with name 'a'")
    assert await post(client, "add_app", body) == (400, "application 'a' already exists")
    status, text = await post(client, "add_app", {**body, "name": "b", "input_type": "tensor"})
    assert status == 400 and text.startswith("tensor is not a valid input string. Accepted input types: bytes, integers, floats, doubles, strings")
    assert await post(client, "add_app", {**body, "name": "c", "latency_slo_micros": "5"}) == (400, (
        "Error parsing JSON: Type mismatch! JSON key latency_slo_micros expected type Numberbut found type String"
        f". Expected JSON schema: {ADD_APP_SCHEMA}"
    ))
    assert await store_of(client).list_app_names() == ["a"]  # nothing written by the refusals


async def test_delete_app_removes_links_and_selection_state(client: TestClient, redis_clean: RedisServer) -> None:
    await add_app(client, "a")
    await add_model(client, "m", "1")
    assert (await link(client, "a", "m"))[0] == 200
    await store_of(client).set_selection_state("a", "-1")
    assert await post(client, "delete_app", {"name": "a"}) == (200, "Successfully deleted application with name 'a'")
    assert await post(client, "delete_app", {"name": "a"}) == (400, "Application 'a' does not exist")
    assert await store_of(client).get_linked_models("a") == []
    state = aioredis.Redis(host=redis_clean.host, port=redis_clean.port, db=int(Db.STATE))
    try:
        assert not await state.exists(selection_state_key("a"))
    finally:
        await state.aclose()
    await add_app(client, "a")  # a re-created app does not inherit the old link
    assert await ok(client, "get_linked_models", {"app_name": "a"}) == "[]"


async def test_get_application_and_lists(client: TestClient) -> None:
    assert await ok(client, "get_all_applications", {"verbose": False}) == "[]"
    assert await ok(client, "get_application", {"name": "a"}) == "{}"
    await add_app(client, "b", "ints", 'x"y')
    await add_app(client, "a", "strings", "none")
    await add_model(client, "m", "1", "strings")
    await link(client, "a", "m")
    assert await ok(client, "get_all_applications", {"verbose": False}) == '["a","b"]'
    assert await ok(client, "get_all_applications", {"verbose": True}) == (
        '[{"input_type":"strings","default_output":"none","latency_slo_micros":100000,"name":"a","linked_models":["m"]},'
        '{"input_type":"integers","default_output":"x\\"y","latency_slo_micros":100000,"name":"b","linked_models":[]}]'
    )
    assert await ok(client, "get_application", {"name": "b"}) == (
        '{"input_type":"integers","default_output":"x\\"y","latency_slo_micros":100000,"name":"b","linked_models":[]}'
    )
    assert await post(client, "get_linked_models", {"app_name": "zz"}) == (400, "No application with name 'zz' exists.")
    assert await ok(client, "get_linked_models", {"app_name": "a"}) == '["m"]'


async def test_get_state_returns_the_raw_default_output(client: TestClient) -> None:
    await add_app(client, "a", default='{"k": 1}')
    assert await ok(client, "get_state", {"app_name": "a", "uid": 0}) == '{"k": 1}'
    assert await ok(client, "get_state", {"app_name": "a", "uid": 7}) == '{"k": 1}'  # uid treated as 0
    assert await ok(client, "get_state", {"app_name": "missing", "uid": 0}) == ""


# ------------------------------------------------------------------ links


LINK_ERRORS = [
    ("ghost", ["m"], "No app with name 'ghost' exists."),
    ("a", ["nope"], "No model with name 'nope' exists."),
    ("a", ["m", "nope"], "No model with name 'nope' exists."),
    ("a", ["ints-model"], "Model with name 'ints-model' has incompatible input_type 'integers'. Requested app to link to has input_type 'doubles'."),
    ("a", [], "Please provide the name of the model that you want to link to the application 'a'"),
    ("a", ["m", "m2"], "Applications must be linked with at most one model. Attempted to add links to 2 models."),
]


@pytest.mark.parametrize(("app", "models", "message"), LINK_ERRORS)
async def test_add_model_links_errors(client: TestClient, app: str, models: list[str], message: str) -> None:
    await add_app(client, "a")
    await add_model(client, "m", "1")
    await add_model(client, "m2", "1")
    await add_model(client, "ints-model", "1", "ints")
    assert await link(client, app, *models) == (400, message)
    assert await store_of(client).get_linked_models("a") == []


async def test_add_model_links_success_and_second_link(client: TestClient) -> None:
    await add_app(client, "a")
    await add_model(client, "m", "1")
    await add_model(client, "m2", "1")
    assert await link(client, "a", "m") == (200, "Successfully linked model with name 'm' to application 'a'")
    assert await link(client, "a", "m") == (400, "The model with name 'm' is already linked to 'a'")
    assert await link(client, "a", "m2") == (400, "A model with name m is already linked to 'a'.")


async def test_delete_model_links(client: TestClient) -> None:
    await add_app(client, "a")
    await add_model(client, "m", "1")
    await link(client, "a", "m")
    body = {"app_name": "a", "model_names": ["m"]}
    assert await post(client, "delete_model_links", {**body, "app_name": "zz"}) == (400, "No app with name zz exists.")
    assert await post(client, "delete_model_links", {**body, "model_names": ["m", "x"]}) == (
        400, "Cannot remove nonexistent link between app a and model x")
    assert await post(client, "delete_model_links", body) == (200, "Success!")
    assert await store_of(client).get_linked_models("a") == []
    assert await post(client, "delete_model_links", body) == (400, "Cannot remove nonexistent link between app a and model m")


# ------------------------------------------------------------------ models


async def test_add_model_success_and_current_version(client: TestClient) -> None:
    assert await add_model(client, "m", "1", "i") == "Successfully added model with name 'm' and input type 'integers'"
    assert await add_model(client, "m", "2", "ints", ["x", "y"]) == "Successfully added model with name 'm' and input type 'integers'"
    assert await store_of(client).get_current_version("m") == "2"  # adding always makes it current
    assert await ok(client, "get_all_models", {"verbose": False}) == '["m:1","m:2"]'
    assert await ok(client, "get_all_models", {"verbose": True}) == (
        '[{"model_name":"m","model_version":"1","input_type":"integers","labels":[""],"container_name":"img",'
        '"model_data_path":"DEPRECATED","is_current_version":false},'
        '{"model_name":"m","model_version":"2","input_type":"integers","labels":["x","y"],"container_name":"img",'
        '"model_data_path":"DEPRECATED","is_current_version":true}]'
    )
    assert await ok(client, "get_model", {"model_name": "m", "model_version": "1"}) == (
        '{"model_name":"m","model_version":"1","input_type":"integers","labels":[""],"container_name":"img",'
        '"model_data_path":"DEPRECATED","is_current_version":false}'
    )
    assert await ok(client, "get_model", {"model_name": "m", "model_version": "9"}) == "{}"


ADD_MODEL_BODY = {"model_name": "m", "model_version": "1", "labels": [], "input_type": "doubles",
                  "container_name": "img", "model_data_path": "p", "batch_size": -1}


@pytest.mark.parametrize(("changes", "message"), [
    ({}, "model with name 'm' and version '1' already exists"),
    ({"model_version": "2", "batch_size": 0}, "The batch size must be positive or DEFAULT_BATCH_SIZE, which is -1"),
    ({"model_version": "2:x"}, "Invalid model version supplied: 2:x. Contains one of: ',', ':'"),
    ({"model_name": "a,b"}, "Invalid model name supplied: a,b. Contains one of: ',', ':'"),
    ({"model_version": "2", "labels": ["a:b"]}, "Invalid label supplied: a:b. Contains one of: ',', ':'"),
    ({"model_version": "2", "input_type": "ints"}, "Model with name 'm' is already linked to app 'a' using input type 'doubles'. The input type you provided for a new version of the model, 'integers', is not compatible."),
    ({"model_version": "2", "batch_size": 1.5}, f"Error parsing JSON: PredictionData of type Number is not of type int. Expected JSON schema: {ADD_MODEL_SCHEMA}"),
])
async def test_add_model_errors(client: TestClient, changes: dict[str, object], message: str) -> None:
    await add_app(client, "a")
    await add_model(client, "m", "1")
    await link(client, "a", "m")
    assert await post(client, "add_model", {**ADD_MODEL_BODY, **changes}) == (400, message)
    assert await ok(client, "get_all_models", {"verbose": False}) == '["m:1"]'
    assert await store_of(client).get_current_version("m") == "1"


async def test_set_model_version(client: TestClient) -> None:
    await add_model(client, "m", "1", "ints")
    await add_model(client, "m", "2", "doubles")
    await add_app(client, "a", "doubles")
    await link(client, "a", "m")
    body = {"model_name": "m", "model_version": "1"}
    assert await post(client, "set_model_version", {**body, "model_name": "zz"}) == (400, "Cannot set version for nonexistent model 'zz'")
    assert await post(client, "set_model_version", {**body, "model_version": "7"}) == (400, "Cannot set non-existent version '7' for model with name 'm'")
    assert await post(client, "set_model_version", body) == (400, (
        "Model with name 'm' is already linked to app 'a' using input type 'doubles'. The input type you "
        "provided for a new version of the model, 'integers', is not compatible."))
    await post(client, "delete_model_links", {"app_name": "a", "model_names": ["m"]})
    assert await post(client, "set_model_version", body) == (200, "Successfully set model with name 'm' to version '1'")
    assert await store_of(client).get_current_version("m") == "1"


async def test_delete_versioned_model_marks_invalid(client: TestClient) -> None:
    await add_model(client, "m", "1")
    body = {"model_name": "m", "model_version": "1"}
    assert await post(client, "delete_versioned_model", {**body, "model_version": "2"}) == (400, "model with name 'm' and version '2' does not exist")
    assert await post(client, "delete_versioned_model", body) == (200, "Successfully deleted model with name 'm' and version '1'")
    model = await store_of(client).get_model("m", "1")
    assert model is not None and not model.is_valid  # HDEL valid; the query frontend cleans up
    assert await store_of(client).get_current_version("m") == "1"  # untouched, as the original
    assert await post(client, "delete_versioned_model", body) == (400, "model with name 'm' and version '1' is already marked as 'invalid'")


async def test_set_model_batch_size(client: TestClient) -> None:
    await add_model(client, "m", "1")
    body = {"model_name": "m", "model_version": "1", "batch_size": 8}
    assert await post(client, "set_model_batch_size", body) == (200, "Successfully set batch size of model with name 'm' and version '1' to 8")
    model = await store_of(client).get_model("m", "1")
    assert model is not None and model.batch_size == 8
    assert await post(client, "set_model_batch_size", {**body, "batch_size": 0}) == (400, "The batch size must be positive or DEFAULT_BATCH_SIZE, which is -1")
    assert await post(client, "set_model_batch_size", {**body, "model_version": "2"}) == (400, "model with name 'm' and version '2' does not exist")


# ------------------------------------------------------------------ containers


async def test_containers(client: TestClient) -> None:
    assert await ok(client, "get_all_containers", {"verbose": True}) == "[]"
    # Replicas are registered by the query frontend; write them through the store here.
    await store_of(client).add_container(ContainerInfo("m", "1", 1, 4, InputType.DOUBLES))
    await store_of(client).add_container(ContainerInfo("m", "1", 0, 3, InputType.DOUBLES))
    assert await ok(client, "get_all_containers", {"verbose": False}) == '["m:1:0","m:1:1"]'
    entry = '{"model_id":"m:1","model_name":"m","model_version":"1","model_replica_id":0,"input_type":"doubles"}'
    assert (await ok(client, "get_all_containers", {"verbose": True})).startswith(f"[{entry},")
    assert await ok(client, "get_container", {"model_name": "m", "model_version": "1", "replica_id": 0}) == entry
    assert await ok(client, "get_container", {"model_name": "m", "model_version": "1", "replica_id": 5}) == "{}"
