"""The query frontend end to end: real redis-server, the real gateway, real closure containers.

The frontend runs in-process (so tests can wait on its registry and gateway); the process-level
tests (flags, signals, start-up failures) are in ``test_query_frontend_process.py``. State is
written through ``StateStore`` as the management frontend would. Containers are
``python -m containers.python.closure_container`` subprocesses serving cloudpickled functions.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import cloudpickle
import pytest

from clipper_core.query_frontend.server import QueryFrontend
from clipper_core.rpc import InputType
from clipper_core.settings import QuerySettings, RedisOptions
from clipper_core.state import AppInfo, ModelId, ModelInfo, StateStore
from tests.helpers import PYTHON, RedisServer, free_port, stop_process

NO_CONNECTED = "No connected models found for query"
SLO_MISSED = "Failed to retrieve a prediction response within the specified latency SLO"
SCHEMA = '\n  {\n   "input" := [double] | [int] | [string] | [byte] | [float],\n  }\n'
MAX_BODY_BYTES = 100_000
LONG_SLO_US = 20_000_000


def json_error(message: str) -> dict[str, str]:
    return {"error": "Json error", "cause": f"Error parsing JSON: {message}. Expected JSON schema: {SCHEMA}"}


# ------------------------------------------------------------------------------- models


def _models() -> dict[str, Callable[[Any], list[str]]]:
    """Functions defined in a function so cloudpickle ships them by value."""
    import json as json_mod
    import time as time_mod

    def sum_doubles(xs: Any) -> list[str]:
        return [str(float(sum(x))) for x in xs]

    def sum_ints(xs: Any) -> list[str]:
        return [str(int(sum(x))) for x in xs]

    def upper(xs: Any) -> list[str]:
        return [x.upper() for x in xs]

    def describe_bytes(xs: Any) -> list[str]:
        return [json_mod.dumps({"len": len(x), "first": x[0] if x else None}) for x in xs]

    def version_two(xs: Any) -> list[str]:
        return ["2" for _ in xs]

    def slow(xs: Any) -> list[str]:
        time_mod.sleep(1.0)
        return ["late" for _ in xs]

    def broken(xs: Any) -> list[str]:
        raise ValueError("the model is broken")

    return {f.__name__: f for f in (sum_doubles, sum_ints, upper, describe_bytes, version_two, slow, broken)}


MODELS = _models()


class Containers:
    def __init__(self, root: Path, env: dict[str, str], rpc_port: int) -> None:
        self.root, self.env, self.rpc_port = root, env, rpc_port
        self.processes: list[subprocess.Popen[bytes]] = []

    def start(self, func: str, name: str, version: str, input_type: InputType) -> None:
        model_dir = self.root / f"{name}-{version}"
        model_dir.mkdir()
        with open(model_dir / "func.pkl", "wb") as file:
            cloudpickle.dump(MODELS[func], file)
        env = dict(self.env)
        env.update(
            CLIPPER_MODEL_NAME=name,
            CLIPPER_MODEL_VERSION=version,
            CLIPPER_MODEL_PATH=str(model_dir),
            CLIPPER_INPUT_TYPE=input_type.readable_name,
            CLIPPER_IP="127.0.0.1",
            CLIPPER_PORT=str(self.rpc_port),
            CLIPPER_READY_FILE=str(model_dir / "ready"),
        )
        log = open(self.root / f"{name}-{version}.log", "wb")
        self.processes.append(
            subprocess.Popen(
                [PYTHON, "-m", "containers.python.closure_container"], env=env, stdout=log, stderr=log
            )
        )
        log.close()

    def stop_all(self) -> None:
        for process in self.processes:
            stop_process(process)


# ------------------------------------------------------------------------------- fixtures


@pytest.fixture
async def frontend(redis_clean: RedisServer) -> AsyncIterator[QueryFrontend]:
    settings = QuerySettings(
        redis=RedisOptions(redis_clean.host, redis_clean.port),
        host="127.0.0.1",
        port=0,
        rpc_host="127.0.0.1",
        rpc_service_port=free_port(),
        max_request_bytes=MAX_BODY_BYTES,
    )
    qf = await QueryFrontend.start(settings)
    try:
        yield qf
    finally:
        await qf.aclose()


@pytest.fixture
async def store(redis_clean: RedisServer) -> AsyncIterator[StateStore]:
    async with await StateStore.connect(RedisOptions(redis_clean.host, redis_clean.port), timeout_s=10) as s:
        yield s


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:
        yield session


@pytest.fixture
def containers(
    tmp_path: Path, subprocess_env: dict[str, str], frontend: QueryFrontend
) -> Iterator[Containers]:
    group = Containers(tmp_path, subprocess_env, frontend.settings.rpc_service_port)
    try:
        yield group
    finally:
        group.stop_all()


async def eventually(check: Callable[[], bool], what: str, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


async def add_app(
    store: StateStore, qf: QueryFrontend, name: str, input_type: InputType, slo_us: int = LONG_SLO_US
) -> None:
    await store.add_app(AppInfo(name, input_type, "no_pred", slo_us))
    await eventually(lambda: qf.registry.app(name) is not None, f"app {name}")  # type: ignore[union-attr]


async def add_model(
    store: StateStore,
    qf: QueryFrontend,
    name: str,
    version: str,
    input_type: InputType,
    *,
    current: bool = True,
) -> None:
    await store.add_model(ModelInfo(name, version, input_type))
    await eventually(lambda: qf.registry.has_version(name, version), f"model {name}:{version}")  # type: ignore[union-attr]
    if current:
        await store.set_current_version(name, version)
        await eventually(
            lambda: qf.registry.current_model(name) == ModelId(name, version),  # type: ignore[union-attr]
            f"current version of {name}",
        )


async def link(store: StateStore, qf: QueryFrontend, app: str, model: str) -> None:
    await store.add_links(app, [model])
    await eventually(lambda: model in qf.registry.linked_models(app), f"link {app}->{model}")  # type: ignore[union-attr]


async def wait_for_replica(qf: QueryFrontend, name: str, version: str) -> None:
    await eventually(
        lambda: qf.gateway.replica_count(ModelId(name, version)) > 0, f"replica of {name}:{version}"
    )  # type: ignore[union-attr]


async def post(http: aiohttp.ClientSession, qf: QueryFrontend, path: str, body: Any) -> tuple[int, Any]:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    async with http.post(f"http://127.0.0.1:{qf.port}{path}", data=data) as response:
        raw = await response.read()
        if response.content_type == "application/json":
            return response.status, json.loads(raw)
        return response.status, raw.decode()


# ------------------------------------------------------------------------------- no model needed


async def test_unlinked_app_answers_default_at_once_with_consecutive_query_ids(
    store: StateStore, frontend: QueryFrontend, http: aiohttp.ClientSession
) -> None:
    await add_app(store, frontend, "app", InputType.DOUBLES)
    status, body = await post(http, frontend, "/app/predict", {"input": [1.0]})
    assert status == 200
    assert list(body) == ["query_id", "output", "default", "default_explanation"]
    assert body == {"query_id": 0, "output": "no_pred", "default": True, "default_explanation": NO_CONNECTED}
    status, body = await post(http, frontend, "/app/predict/", {"input_batch": [[1.0], [2.0]]})
    assert status == 200
    assert [p["query_id"] for p in body["batch_predictions"]] == [1, 2]
    assert all(p["default_explanation"] == NO_CONNECTED for p in body["batch_predictions"])
    # A batch of exactly one answers a single object, as the original.
    _, body = await post(http, frontend, "/app/predict", {"input_batch": [[3.0]]})
    assert body["query_id"] == 3 and "batch_predictions" not in body


async def test_linked_model_without_container_is_no_connected_models(
    store: StateStore, frontend: QueryFrontend, http: aiohttp.ClientSession
) -> None:
    await add_app(store, frontend, "app", InputType.DOUBLES)
    await add_model(store, frontend, "m", "1", InputType.DOUBLES)
    await link(store, frontend, "app", "m")
    _, body = await post(http, frontend, "/app/predict", {"input": [1.0]})
    assert (body["default"], body["default_explanation"]) == (True, NO_CONNECTED)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"input": [1]}, json_error("Array input of type Number is not of type double")),
        (
            {"input": "x"},
            json_error("Type mismatch! JSON key input expected type Arraybut found type String"),
        ),
        ({"input_batch": [[1.0], 2.0]}, json_error("Array input of type Number is not of type array")),
        ({"input_batch": []}, json_error("input_batch must contain at least one input")),
        ({"inputs": [1.0]}, json_error("JSON object does not have required keys input or input_batch")),
        (
            {"input": [1.0], "version": 3},
            json_error("Type mismatch! JSON key version expected type Stringbut found type Number"),
        ),
        ([1.0], json_error("JSON document of type Array is not of type Object")),
    ],
)
async def test_bad_inputs_get_the_exact_400_json(
    store: StateStore,
    frontend: QueryFrontend,
    http: aiohttp.ClientSession,
    body: Any,
    expected: dict[str, str],
) -> None:
    await add_app(store, frontend, "app", InputType.DOUBLES)
    assert await post(http, frontend, "/app/predict", body) == (400, expected)


async def test_malformed_json_oversize_body_and_unknown_routes(
    store: StateStore, frontend: QueryFrontend, http: aiohttp.ClientSession
) -> None:
    await add_app(store, frontend, "app", InputType.DOUBLES)
    status, body = await post(http, frontend, "/app/predict", b'{"input": [1.0,')
    assert status == 400 and body["error"] == "Json error"
    assert body["cause"].startswith("Error parsing JSON: JSON parse error: Invalid value. (offset ")
    assert body["cause"].endswith(f")\n. Expected JSON schema: {SCHEMA}")

    status, body = await post(
        http, frontend, "/app/predict", b'{"input": [' + b"1.0," * MAX_BODY_BYTES + b"1.0]}"
    )
    assert status == 413 and set(body) == {"error", "cause"}

    assert await post(http, frontend, "/nope/predict", {"input": [1.0]}) == (
        404,
        {"error": "Not found", "cause": "Application nope does not exist"},
    )
    status, body = await post(http, frontend, "/app/predictions", {"input": [1.0]})
    assert status == 404 and set(body) == {"error", "cause"}
    async with http.get(f"http://127.0.0.1:{frontend.port}/app/predict") as response:
        assert response.status == 405 and response.headers["Allow"] == "POST"
        assert await response.json() == {
            "error": "Method Not Allowed",
            "cause": "Method GET is not allowed for /app/predict; allowed: POST",
        }
    async with http.post(f"http://127.0.0.1:{frontend.port}/metrics") as response:
        assert response.status == 405 and response.headers["Allow"] == "GET,HEAD"
    for path in ("/", "//predict", "/a/b/predict", "/app/predict//"):
        status, body = await post(http, frontend, path, {"input": [1.0]})
        assert (status, body["error"]) == (404, "Not Found"), path
    async with http.head(f"http://127.0.0.1:{frontend.port}/healthz") as response:
        assert response.status == 200 and await response.read() == b""


async def test_routes_take_a_trailing_slash_and_answer_expect_continue(
    frontend: QueryFrontend, store: StateStore, http: aiohttp.ClientSession
) -> None:
    await add_app(store, frontend, "app", InputType.DOUBLES)
    for path in ("/app/predict", "/app/predict/"):
        status, body = await post(http, frontend, path, {"input": [1.0]})
        assert status == 200 and body["default"] is True, path
    # curl asks for "100 Continue" before sending a body over 1 KiB; the body must still arrive.
    big = json.dumps({"input": [0.5] * 400}).encode()
    # expect100: the client holds the body back until the server says "100 Continue".
    async with http.post(
        f"http://127.0.0.1:{frontend.port}/app/predict",
        data=big,
        expect100=True,
        timeout=aiohttp.ClientTimeout(total=10),
    ) as response:
        assert response.status == 200 and (await response.json())["default"] is True
    async with http.post(
        f"http://127.0.0.1:{frontend.port}/app/predict", data=big, headers={"Expect": "tea"}
    ) as response:
        assert response.status == 417 and (await response.json())["cause"] == "Unknown Expect: tea"


async def test_unknown_version_and_too_many_models(
    store: StateStore, frontend: QueryFrontend, http: aiohttp.ClientSession
) -> None:
    await add_app(store, frontend, "app", InputType.DOUBLES)
    await add_model(store, frontend, "m", "1", InputType.DOUBLES)
    await link(store, frontend, "app", "m")
    assert await post(http, frontend, "/app/predict", {"input": [1.0], "version": "9"}) == (
        400,
        {"error": "Query processing error", "cause": "Requested version: 9 does not exist for model: m"},
    )
    await link(store, frontend, "app", "other")
    assert await post(http, frontend, "/app/predict", {"input": [1.0], "version": "1"}) == (
        400,
        {"error": "Query processing error", "cause": "Too many models linked to application app"},
    )


async def test_update_endpoint_answers_as_the_original(
    store: StateStore, frontend: QueryFrontend, http: aiohttp.ClientSession
) -> None:
    await add_app(store, frontend, "app", InputType.DOUBLES)
    assert await post(http, frontend, "/app/update", {"uid": 0, "input": [1.0], "label": 1.0}) == (
        200,
        "Feedback received? 1",
    )
    assert await post(http, frontend, "/app/update/", {"uid": 4, "input": [1.0], "label": 1.0}) == (
        200,
        "Feedback received? 0",
    )
    status, text = await post(http, frontend, "/app/update", {"uid": 0, "input": [1.0], "label": 1})
    assert status == 400
    assert text.startswith(
        "Error parsing JSON: PredictionData of type Number is not of type double. Expected"
    )
    _, body = await post(http, frontend, "/app/predict", {"input": [1.0]})
    assert body["query_id"] == 2  # each update consumed a query id


async def test_metrics_negotiates_prometheus_and_the_json_report(
    store: StateStore, frontend: QueryFrontend, http: aiohttp.ClientSession
) -> None:
    await add_app(store, frontend, "app", InputType.DOUBLES)
    await post(http, frontend, "/app/predict", {"input": [1.0]})
    url = f"http://127.0.0.1:{frontend.port}/metrics"
    async with http.get(url) as response:
        assert response.status == 200 and response.content_type == "application/json"
        report = json.loads(await response.read())
    counters = {name for entry in report["counters"] for name in entry}
    assert "app:app:num_predictions" in counters
    scraper_accept = (
        "application/openmetrics-text;version=1.0.0;q=0.5,text/plain;version=0.0.4;q=0.3,*/*;q=0.1"
    )
    async with http.get(url, headers={"Accept": scraper_accept}) as response:
        assert response.status == 200 and response.content_type.startswith(
            ("text/plain", "application/openmetrics")
        )
        text = await response.text()
    assert "# TYPE" in text and 'app="app"' in text
    async with http.get(f"http://127.0.0.1:{frontend.port}/healthz") as response:
        assert response.status == 200 and (await response.json())["status"] == "ok"


# ------------------------------------------------------------------------------- real containers


async def test_predict_with_a_container_of_each_input_type(
    store: StateStore, frontend: QueryFrontend, http: aiohttp.ClientSession, containers: Containers
) -> None:
    deployments = [
        ("d", InputType.DOUBLES, "sum_doubles"),
        ("f", InputType.FLOATS, "sum_doubles"),
        ("i", InputType.INTS, "sum_ints"),
        ("s", InputType.STRINGS, "upper"),
        ("b", InputType.BYTES, "describe_bytes"),
    ]
    for name, input_type, func in deployments:
        containers.start(func, f"{name}-model", "1", input_type)
    for name, input_type, _ in deployments:
        await add_app(store, frontend, name, input_type)
        await add_model(store, frontend, f"{name}-model", "1", input_type)
        await link(store, frontend, name, f"{name}-model")
    for name, _, _ in deployments:
        await wait_for_replica(frontend, f"{name}-model", "1")

    async def predict(app: str, body: Any) -> Any:
        status, answer = await post(http, frontend, f"/{app}/predict", body)
        assert status == 200, answer
        return answer

    single = await predict("d", {"input": [1.5, 2.0]})
    assert list(single) == ["query_id", "output", "default"]
    assert (single["output"], single["default"]) == (3.5, False)  # "3.5" is embedded as a number
    batch = await predict("d", {"input_batch": [[1.0], [2.0, 0.5], [4.0]]})
    assert [p["output"] for p in batch["batch_predictions"]] == [1.0, 2.5, 4.0]
    assert (await predict("f", {"input": [0.25, 0.5]}))["output"] == 0.75
    assert (await predict("i", {"input": [1, 2, 3]}))["output"] == 6
    assert (await post(http, frontend, "/i/predict/", {"input_batch": [[5], [6, 7]]}))[1][
        "batch_predictions"
    ][1]["output"] == 13
    assert (await predict("s", {"input": "cat"}))["output"] == "CAT"  # not JSON -> a string
    assert (await predict("s", {"input_batch": ["a", "nan"]}))["batch_predictions"][1]["output"] == "NAN"
    described = await predict("b", {"input": "AAEC"})  # base64 of bytes 0, 1, 2
    assert described["output"] == {"len": 3, "first": 0}  # a JSON object output is embedded


async def test_slo_miss_gets_the_slo_default_and_the_late_output_fills_the_cache(
    store: StateStore, frontend: QueryFrontend, http: aiohttp.ClientSession, containers: Containers
) -> None:
    containers.start("slow", "slow", "1", InputType.DOUBLES)
    await add_app(store, frontend, "app", InputType.DOUBLES, slo_us=100_000)
    await add_model(store, frontend, "slow", "1", InputType.DOUBLES)
    await link(store, frontend, "app", "slow")
    await wait_for_replica(frontend, "slow", "1")
    _, body = await post(http, frontend, "/app/predict", {"input": [1.0]})
    assert body == {"query_id": 0, "output": "no_pred", "default": True, "default_explanation": SLO_MISSED}
    # The model answers after ~1 s; the same input is then served from the cache.
    deadline = time.monotonic() + 30
    while True:
        _, body = await post(http, frontend, "/app/predict", {"input": [1.0]})
        if not body["default"]:
            break
        assert body["default_explanation"] == SLO_MISSED
        assert time.monotonic() < deadline, "the late output never reached the cache"
        await asyncio.sleep(0.2)
    assert body["output"] == "late"


async def test_container_error_answers_default_at_once_with_the_cause(
    store: StateStore, frontend: QueryFrontend, http: aiohttp.ClientSession, containers: Containers
) -> None:
    containers.start("broken", "broken", "1", InputType.DOUBLES)
    await add_app(store, frontend, "app", InputType.DOUBLES, slo_us=LONG_SLO_US)
    await add_model(store, frontend, "broken", "1", InputType.DOUBLES)
    await link(store, frontend, "app", "broken")
    await wait_for_replica(frontend, "broken", "1")
    started = time.monotonic()
    _, body = await post(http, frontend, "/app/predict", {"input": [1.0]})
    # Far below the 20 s SLO: the error came back instead of a timeout.
    assert time.monotonic() - started < LONG_SLO_US / 1e6 / 2
    assert (body["default"], body["output"]) == (True, "no_pred")
    assert body["default_explanation"] not in (SLO_MISSED, NO_CONNECTED)
    assert "the model is broken" in body["default_explanation"]
    # The container keeps serving (and keeps failing) rather than dying.
    _, again = await post(http, frontend, "/app/predict", {"input": [2.0]})
    assert "the model is broken" in again["default_explanation"]


async def test_live_configuration_without_restart(
    store: StateStore, frontend: QueryFrontend, http: aiohttp.ClientSession, containers: Containers
) -> None:
    containers.start("sum_doubles", "m", "1", InputType.DOUBLES)
    containers.start("version_two", "m", "2", InputType.DOUBLES)
    status, _ = await post(http, frontend, "/live/predict", {"input": [1.0]})
    assert status == 404
    await add_app(store, frontend, "live", InputType.DOUBLES)
    await add_model(store, frontend, "m", "1", InputType.DOUBLES)
    await add_model(store, frontend, "m", "2", InputType.DOUBLES, current=False)
    _, body = await post(http, frontend, "/live/predict", {"input": [1.0]})
    assert body["default_explanation"] == NO_CONNECTED  # not linked yet

    await link(store, frontend, "live", "m")
    await wait_for_replica(frontend, "m", "1")
    await wait_for_replica(frontend, "m", "2")
    _, body = await post(http, frontend, "/live/predict", {"input": [1.0]})
    assert (body["output"], body["default"]) == (1.0, False)
    _, body = await post(http, frontend, "/live/predict", {"input": [1.0], "version": "2"})
    assert body["output"] == 2  # an explicit, non-current version

    await store.set_current_version("m", "2")
    await eventually(lambda: frontend.registry.current_model("m") == ModelId("m", "2"), "v2 current")  # type: ignore[union-attr]
    _, body = await post(http, frontend, "/live/predict", {"input": [1.0]})
    assert body["output"] == 2

    await store.remove_links("live", ["m"])
    await eventually(lambda: frontend.registry.linked_models("live") == (), "unlink")  # type: ignore[union-attr]
    _, body = await post(http, frontend, "/live/predict", {"input": [1.0]})
    assert body["default_explanation"] == NO_CONNECTED

    await store.delete_app("live")
    await eventually(lambda: frontend.registry.app("live") is None, "app deleted")  # type: ignore[union-attr]
    status, _ = await post(http, frontend, "/live/predict", {"input": [1.0]})
    assert status == 404


async def test_deleting_a_model_version_takes_it_out_of_rotation(
    store: StateStore, frontend: QueryFrontend, http: aiohttp.ClientSession, containers: Containers
) -> None:
    containers.start("sum_doubles", "m", "1", InputType.DOUBLES)
    await add_app(store, frontend, "app", InputType.DOUBLES)
    await add_model(store, frontend, "m", "1", InputType.DOUBLES)
    await link(store, frontend, "app", "m")
    await wait_for_replica(frontend, "m", "1")
    _, body = await post(http, frontend, "/app/predict", {"input": [4.0]})
    assert body["output"] == 4.0
    await store.mark_model_invalid("m", "1")  # what the management frontend's delete does
    await eventually(lambda: frontend.gateway.replica_count(ModelId("m", "1")) == 0, "replica removed")  # type: ignore[union-attr]
    _, body = await post(http, frontend, "/app/predict", {"input": [5.0]})
    assert body["default"] is True


async def test_healthz_reports_a_dead_keyspace_watcher(
    frontend: QueryFrontend, http: aiohttp.ClientSession
) -> None:
    url = f"http://127.0.0.1:{frontend.port}/healthz"
    async with http.get(url) as response:
        assert response.status == 200
        assert await response.json() == {"status": "ok", "applications": 0, "pid": os.getpid()}
    frontend._watcher.cancel()  # type: ignore[union-attr]  # simulate the watcher dying
    await eventually(lambda: frontend._watcher.done(), "watcher stopped")  # type: ignore[union-attr]
    async with http.get(url) as response:
        assert response.status == 503
        assert (await response.json())["status"] == "unhealthy"


# ------------------------------------------------------------------------------- read-your-writes


def slow_down_registry(frontend: QueryFrontend, monkeypatch: pytest.MonkeyPatch, delay_s: float) -> None:
    """A query frontend that learns of changes late: every keyspace event waits ``delay_s``."""
    registry = frontend.registry
    assert registry is not None
    apply = registry.apply

    async def slow_apply(change: Any) -> None:
        await asyncio.sleep(delay_s)
        await apply(change)

    monkeypatch.setattr(registry, "apply", slow_apply)


async def test_an_app_is_served_as_soon_as_its_registration_returned(
    store: StateStore, frontend: QueryFrontend, http: aiohttp.ClientSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    slow_down_registry(frontend, monkeypatch, delay_s=0.3)
    await store.add_app(AppInfo("fresh", InputType.DOUBLES, "no_pred", LONG_SLO_US))  # what /admin does
    assert frontend.registry.app("fresh") is None  # type: ignore[union-attr]  # not learned yet
    status, body = await post(http, frontend, "/fresh/predict", {"input": [1.0]})
    assert status == 200, body
    assert body["default"] is True and body["default_explanation"] == NO_CONNECTED


async def test_a_link_is_used_as_soon_as_it_returned(
    store: StateStore,
    frontend: QueryFrontend,
    http: aiohttp.ClientSession,
    containers: Containers,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    await add_app(store, frontend, "app", InputType.DOUBLES)
    await add_model(store, frontend, "m", "1", InputType.DOUBLES)
    containers.start("sum_doubles", "m", "1", InputType.DOUBLES)
    await wait_for_replica(frontend, "m", "1")
    slow_down_registry(frontend, monkeypatch, delay_s=0.3)
    await store.add_links("app", ["m"])
    status, body = await post(http, frontend, "/app/predict", {"input": [1.0, 2.0]})
    assert status == 200 and body["output"] == 3.0, body


async def test_an_unknown_app_is_still_a_404_after_catching_up(
    frontend: QueryFrontend, http: aiohttp.ClientSession
) -> None:
    status, body = await post(http, frontend, "/nowhere/predict", {"input": [1.0]})
    assert status == 404 and body["cause"] == "Application nowhere does not exist"
