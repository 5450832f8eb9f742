"""The dashboard's HTTP surface against a real redis-server and a stand-in query frontend that
serves the real ``FrontendMetrics`` text (aiohttp test clients; the browser test is tests/ui)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from clipper_core.management_frontend import build_app
from clipper_core.management_frontend.auth import DASHBOARD_COOKIE
from clipper_core.management_frontend.server import STORE_KEY
from clipper_core.query_frontend.metrics import FrontendMetrics
from clipper_core.settings import RedisOptions
from clipper_core.state import ContainerInfo, InputType
from tests.helpers import RedisServer, free_port

TOKEN = "dash-secret"


@dataclass
class Frontend:
    metrics: FrontendMetrics
    port: int
    garbage: bool = False


@pytest.fixture
async def frontend() -> AsyncIterator[Frontend]:
    """A query frontend's /metrics and /healthz, rendered by the query frontend's own code."""
    metrics = FrontendMetrics()
    frontend = Frontend(metrics, 0)

    async def scrape(request: web.Request) -> web.Response:
        if frontend.garbage:
            return web.Response(text='clipper_app_requests_total{app="a" 1\n{{{')
        body, content_type = metrics.render_prometheus()
        response = web.Response(body=body)
        response.headers["Content-Type"] = content_type
        return response

    async def health(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    app = web.Application()
    app.router.add_get("/metrics", scrape)
    app.router.add_get("/healthz", health)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        frontend.port = int(server.port)  # type: ignore[arg-type]
        yield frontend
    finally:
        await server.close()


ClientFactory = Callable[..., Awaitable[TestClient]]


@pytest.fixture
async def make_client(redis_clean: RedisServer) -> AsyncIterator[ClientFactory]:
    clients: list[TestClient] = []

    async def make(query_port: int | None, admin_token: str | None = None, *more_ports: int) -> TestClient:
        ports = () if query_port is None else (query_port, *more_ports)
        app = build_app(
            RedisOptions(redis_clean.host, redis_clean.port),
            admin_token=admin_token,
            query_frontends=tuple(("127.0.0.1", port) for port in ports),
        )
        client = TestClient(TestServer(app))
        await client.start_server()
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.close()


async def admin(client: TestClient, endpoint: str, body: object, token: str | None = None) -> None:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = await client.post(f"/admin/{endpoint}", data=json.dumps(body), headers=headers)
    assert response.status == 200, await response.text()


async def until(probe: Callable[[], Awaitable[object]], timeout_s: float = 10.0) -> object:
    """Poll ``probe`` (the sampler scrapes on its own schedule) until it returns something."""
    async with asyncio.timeout(timeout_s):
        while True:
            value = await probe()
            if value:
                return value
            await asyncio.sleep(0.1)


async def test_cluster_and_metrics_json(make_client: ClientFactory, frontend: Frontend) -> None:
    client = await make_client(frontend.port)
    await admin(client, "add_app", {"name": "a", "input_type": "doubles", "default_output": "-1",
                                    "latency_slo_micros": 20000})
    for version in ("1", "2"):
        await admin(client, "add_model", {"model_name": "m", "model_version": version, "labels": [],
                                          "input_type": "doubles", "container_name": "c",
                                          "model_data_path": "/x", "batch_size": -1})
    await admin(client, "add_model_links", {"app_name": "a", "model_names": ["m"]})
    await client.app[STORE_KEY].add_container(ContainerInfo("m", "2", 0, 1, InputType.DOUBLES))

    cluster = await (await client.get("/dashboard/api/cluster")).json()
    assert [app["name"] for app in cluster["cluster"]["apps"]] == ["a"]
    assert cluster["cluster"]["apps"][0]["linked_models"] == ["m"]
    (model,) = cluster["cluster"]["models"]
    assert model["current_version"] == "2"
    assert [(v["version"], v["health"], len(v["replicas"])) for v in model["versions"]] == [
        ("2", "ok", 1), ("1", "idle", 0)
    ]

    stats = frontend.metrics.add_model("m:2")
    for _ in range(5):
        frontend.metrics.record_app_query("a", 0.004, is_default=False)
    frontend.metrics.record_app_query("a", 0.03, is_default=True)
    frontend.metrics.record_cache_lookup(stats, "miss")
    frontend.metrics.record_batch(stats, 3, 0.002)

    async def sampled() -> dict[str, object] | None:
        body = await (await client.get("/dashboard/api/metrics")).json()
        app = body["apps"].get("a")
        return body if app and app["total"]["requests"] == 6 else None

    body = await until(sampled)
    assert isinstance(body, dict)
    assert body["query_frontend"]["reachable"] is True and body["query_frontend"]["health"] == "ok"
    assert body["apps"]["a"]["total"]["slo_misses"] == 1
    assert body["models"]["m:2"]["total"]["mean_batch_size"] == 3


async def test_an_unreachable_query_frontend_leaves_the_cluster_view(make_client: ClientFactory) -> None:
    client = await make_client(free_port())

    async def failed() -> dict[str, object] | None:
        body = await (await client.get("/dashboard/api/metrics")).json()
        return body if body["query_frontend"]["error"] else None

    body = await until(failed)
    assert isinstance(body, dict)
    assert body["query_frontend"]["reachable"] is False and body["apps"] == {}
    assert (await client.get("/dashboard/api/cluster")).status == 200


async def test_a_round_missing_one_of_several_frontends_is_not_recorded(
    make_client: ClientFactory, frontend: Frontend
) -> None:
    frontend.metrics.record_app_query("a", 0.001, is_default=False)
    client = await make_client(frontend.port, None, free_port())

    async def checked() -> dict[str, object] | None:
        body = await (await client.get("/dashboard/api/metrics")).json()
        frontends = body["query_frontend"]["frontends"]
        return body if all(f["error"] or f["reachable"] for f in frontends) else None

    body = await until(checked)
    assert isinstance(body, dict)
    assert [f["reachable"] for f in body["query_frontend"]["frontends"]] == [True, False]
    assert body["query_frontend"]["reachable"] is False
    # Half the cluster's counters would look like a counter reset: nothing is recorded.
    assert body["apps"] == {} and body["sampled_at"] is None


async def test_a_bad_scrape_is_reported_and_sampling_goes_on(
    make_client: ClientFactory, frontend: Frontend
) -> None:
    frontend.garbage = True
    client = await make_client(frontend.port)

    async def status(reachable: bool) -> dict[str, object] | None:
        body = await (await client.get("/dashboard/api/metrics")).json()
        front = body["query_frontend"]
        return front if front["reachable"] is reachable and front["checked_at_s"] is not None else None

    failed = await until(lambda: status(False))
    assert isinstance(failed, dict) and failed["error"]
    frontend.garbage = False
    frontend.metrics.record_app_query("a", 0.001, is_default=False)
    await until(lambda: status(True))


async def test_page_static_files_and_bad_queries(make_client: ClientFactory) -> None:
    client = await make_client(None)
    page = await client.get("/dashboard")
    assert page.status == 200 and page.content_type == "text/html"
    assert "/dashboard/static/dashboard.js" in await page.text()
    script = await client.get("/dashboard/static/dashboard.js")
    assert script.status == 200 and script.content_type == "text/javascript"
    assert (await client.get("/dashboard/static/nothing.js")).status == 404
    bad = await client.get("/dashboard/api/metrics?window_s=0")
    assert bad.status == 400 and (await bad.json())["cause"] == "window_s=0 is outside 1-3600 seconds"
    metrics = await (await client.get("/dashboard/api/metrics")).json()
    assert metrics["query_frontend"] == {"configured": False}


async def test_the_admin_token_guards_the_dashboard(make_client: ClientFactory) -> None:
    client = await make_client(None, admin_token=TOKEN)
    for path in ("/dashboard", "/dashboard/api/cluster", "/dashboard/static/dashboard.js"):
        assert (await client.get(path)).status == 401, path
    assert (await client.get(f"/dashboard?token=wrong{TOKEN}")).status == 401
    bearer = {"Authorization": f"Bearer {TOKEN}"}
    assert (await client.get("/dashboard/api/cluster", headers=bearer)).status == 200

    login = await client.get(f"/dashboard?token={TOKEN}", allow_redirects=False)
    assert login.status == 303 and login.headers["Location"] == "/dashboard"
    cookie = login.cookies[DASHBOARD_COOKIE]
    assert cookie["httponly"] and cookie["samesite"] == "Strict" and cookie["path"] == "/dashboard"
    assert TOKEN not in cookie.value
    with_cookie = {"Cookie": f"{DASHBOARD_COOKIE}={cookie.value}"}
    assert (await client.get("/dashboard", headers=with_cookie)).status == 200
    assert (await client.get("/dashboard/api/cluster", headers=with_cookie)).status == 200
    # The dashboard's cookie opens nothing else.
    refused = await client.post(
        "/admin/get_all_applications", data=b'{"verbose": false}', headers=with_cookie
    )
    assert refused.status == 401
