"""clipper_core.http: the shared JSON error middleware, body limit and 404/405 rendering."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from clipper_core.errors import BadRequest, StateError
from clipper_core.http import create_app


async def _bad_request(request: web.Request) -> web.Response:
    raise BadRequest('cause with "quotes" é')


async def _state_error(request: web.Request) -> web.Response:
    raise StateError("Redis is gone", error="State error")


async def _crash(request: web.Request) -> web.Response:
    raise RuntimeError("boom")


async def _echo(request: web.Request) -> web.Response:
    return web.Response(body=await request.read())


@pytest.fixture
async def client() -> AsyncIterator[TestClient]:
    app = create_app(max_body_bytes=16)
    app.router.add_get("/bad", _bad_request)
    app.router.add_get("/state", _state_error)
    app.router.add_get("/crash", _crash)
    app.router.add_post("/echo", _echo)
    async with TestClient(TestServer(app)) as test_client:
        yield test_client


@pytest.mark.parametrize(
    ("method", "path", "status", "error", "cause"),
    [
        ("GET", "/bad", 400, "Json error", 'cause with "quotes" é'),
        ("GET", "/state", 500, "State error", "Redis is gone"),
        ("GET", "/crash", 500, "Internal error", "RuntimeError: boom"),
        ("GET", "/missing", 404, "Not Found", "No endpoint for GET /missing"),
        ("GET", "/echo", 405, "Method Not Allowed", "Method GET is not allowed for /echo; allowed: POST"),
    ],
)
async def test_errors_are_json(
    client: TestClient, method: str, path: str, status: int, error: str, cause: str
) -> None:
    response = await client.request(method, path)
    assert response.status == status
    assert response.headers["Content-Type"] == "application/json"
    body = await response.json()
    assert list(body.items()) == [("error", error), ("cause", cause)]


async def test_body_limit(client: TestClient) -> None:
    assert await (await client.post("/echo", data=b"x" * 16)).read() == b"x" * 16
    response = await client.post("/echo", data=b"x" * 17)
    assert response.status == 413
    assert (await response.json())["error"] == "Request Entity Too Large"
