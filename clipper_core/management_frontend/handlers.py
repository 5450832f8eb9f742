"""HTTP edge of the management API: path + body -> validation -> operation -> response.

Every response is ``Content-Type: application/json`` like the original's, including its plain-text
success messages and 400 error texts. Unknown paths, wrong methods and oversized bodies are
answered by the shared JSON error middleware (``clipper_core.http``).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Awaitable, Callable
from typing import Final, TypeVar

from aiohttp import web

from clipper_core.errors import Rejected
from clipper_core.http import JSON_CONTENT_TYPE
from clipper_core.management_frontend import validation as v
from clipper_core.management_frontend.operations import ManagementService
from clipper_core.management_frontend.render import JsonValue, to_json_bytes

__all__ = ["ENDPOINTS", "PING_PATH", "SERVICE_KEY", "add_routes"]

logger = logging.getLogger(__name__)

SERVICE_KEY: Final = web.AppKey("management_service", ManagementService)
PING_PATH: Final = "/admin/ping"
HEALTH_PATH: Final = "/healthz"

Action = Callable[[ManagementService, bytes], Awaitable[web.Response]]


def _text(text: str, status: int = 200) -> web.Response:
    return web.Response(status=status, body=text.encode("utf-8"), content_type=JSON_CONTENT_TYPE)


def _json(value: JsonValue) -> web.Response:
    return web.Response(body=to_json_bytes(value), content_type=JSON_CONTENT_TYPE)


def _done(message: str) -> web.Response:
    logger.info("%s", message)
    return _text(message)


R = TypeVar("R")
T = TypeVar("T")


def _endpoint(
    parse: Callable[[bytes], R],
    operate: Callable[[ManagementService, R], Awaitable[T]],
    respond: Callable[[T], web.Response],
) -> Action:
    """Every endpoint's shape: parse the body (400 on a bad one), run the operation, render it."""

    async def action(service: ManagementService, body: bytes) -> web.Response:
        return respond(await operate(service, parse(body)))

    return action


def _app_name(parse: Callable[[bytes], v.AppName]) -> Callable[[bytes], str]:
    return lambda body: parse(body).name


def _verbose(body: bytes) -> bool:
    return v.parse_verbose(body).verbose


_S = ManagementService

# One row per endpoint keeps each path's parser, operation and response form side by side.
ENDPOINTS: Final[dict[str, Action]] = {
    "/admin/add_app": _endpoint(v.parse_add_app, _S.add_app, _done),
    "/admin/delete_app": _endpoint(_app_name(v.parse_delete_app), _S.delete_app, _done),
    "/admin/add_model_links": _endpoint(v.parse_add_model_links, _S.add_model_links, _done),
    "/admin/delete_model_links": _endpoint(v.parse_delete_model_links, _S.delete_model_links, _done),
    "/admin/add_model": _endpoint(v.parse_add_model, _S.add_model, _done),
    "/admin/set_model_version": _endpoint(v.parse_set_model_version, _S.set_model_version, _done),
    "/admin/delete_versioned_model": _endpoint(
        v.parse_delete_versioned_model, _S.delete_versioned_model, _done
    ),
    "/admin/set_model_batch_size": _endpoint(v.parse_set_batch_size, _S.set_model_batch_size, _done),
    "/admin/set_selection_policy": _endpoint(
        v.parse_set_selection_policy, _S.set_selection_policy, _done
    ),
    "/admin/get_all_applications": _endpoint(_verbose, _S.get_all_applications, _json),
    "/admin/get_application": _endpoint(_app_name(v.parse_get_application), _S.get_application, _json),
    "/admin/get_linked_models": _endpoint(
        _app_name(v.parse_linked_models_request), _S.get_linked_models, _json
    ),
    "/admin/get_all_models": _endpoint(_verbose, _S.get_all_models, _json),
    "/admin/get_model": _endpoint(v.parse_get_model, _S.get_model, _json),
    "/admin/get_all_containers": _endpoint(_verbose, _S.get_all_containers, _json),
    "/admin/get_container": _endpoint(v.parse_container_ref, _S.get_container, _json),
    # The raw default output, not JSON-encoded, as the original.
    "/admin/get_state": _endpoint(v.parse_get_state, _S.get_selection_state, _text),
}


def _post_handler(action: Action) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def handle(request: web.Request) -> web.Response:
        body = await request.read()
        try:
            return await action(request.app[SERVICE_KEY], body)
        except Rejected as exc:
            logger.info("%s refused: %r", request.path, exc.message)
            return _text(exc.message, status=400)

    return handle


async def _ping(request: web.Request) -> web.Response:
    return _text("PONG")


async def _health(request: web.Request) -> web.Response:
    # The pid lets a manager tell its own process from another one that took the port.
    return web.json_response({"status": "ok", "pid": os.getpid()})


def add_routes(app: web.Application) -> None:
    """``POST`` for every endpoint of :data:`ENDPOINTS`; ``GET`` for the ping and health paths."""
    for path, action in ENDPOINTS.items():
        app.router.add_post(path, _post_handler(action))
    app.router.add_get(PING_PATH, _ping)
    app.router.add_get(HEALTH_PATH, _health)
