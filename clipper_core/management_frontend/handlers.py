"""HTTP edge of the management API: path + body -> validation -> operation -> response.

Every response is ``Content-Type: application/json`` like the original's, including its plain-text
success messages and 400 error texts. Unknown paths, wrong methods and oversized bodies are
answered by the shared JSON error middleware (``clipper_core.http``).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Final

from aiohttp import web

from clipper_core.http import JSON_CONTENT_TYPE
from clipper_core.management_frontend import validation as v
from clipper_core.management_frontend.operations import ManagementService
from clipper_core.management_frontend.render import JsonValue, to_json_bytes

__all__ = ["ENDPOINTS", "PING_PATH", "SERVICE_KEY", "add_routes"]

logger = logging.getLogger(__name__)

SERVICE_KEY: Final = web.AppKey("management_service", ManagementService)
PING_PATH: Final = "/admin/ping"

Action = Callable[[ManagementService, bytes], Awaitable[web.Response]]


def _text(text: str, status: int = 200) -> web.Response:
    return web.Response(status=status, body=text.encode("utf-8"), content_type=JSON_CONTENT_TYPE)


def _json(value: JsonValue) -> web.Response:
    return web.Response(body=to_json_bytes(value), content_type=JSON_CONTENT_TYPE)


def _done(message: str) -> web.Response:
    logger.info("%s", message)
    return _text(message)


# One coroutine per endpoint keeps each path's parser and operation side by side.


async def _add_app(s: ManagementService, body: bytes) -> web.Response:
    return _done(await s.add_app(v.parse_add_app(body)))


async def _delete_app(s: ManagementService, body: bytes) -> web.Response:
    return _done(await s.delete_app(v.parse_delete_app(body).name))


async def _add_model_links(s: ManagementService, body: bytes) -> web.Response:
    return _done(await s.add_model_links(v.parse_add_model_links(body)))


async def _delete_model_links(s: ManagementService, body: bytes) -> web.Response:
    return _done(await s.delete_model_links(v.parse_delete_model_links(body)))


async def _add_model(s: ManagementService, body: bytes) -> web.Response:
    return _done(await s.add_model(v.parse_add_model(body)))


async def _set_model_version(s: ManagementService, body: bytes) -> web.Response:
    return _done(await s.set_model_version(v.parse_set_model_version(body)))


async def _delete_versioned_model(s: ManagementService, body: bytes) -> web.Response:
    return _done(await s.delete_versioned_model(v.parse_delete_versioned_model(body)))


async def _set_model_batch_size(s: ManagementService, body: bytes) -> web.Response:
    return _done(await s.set_model_batch_size(v.parse_set_batch_size(body)))


async def _get_all_applications(s: ManagementService, body: bytes) -> web.Response:
    return _json(await s.get_all_applications(v.parse_verbose(body).verbose))


async def _get_application(s: ManagementService, body: bytes) -> web.Response:
    return _json(await s.get_application(v.parse_get_application(body).name))


async def _get_linked_models(s: ManagementService, body: bytes) -> web.Response:
    return _json(await s.get_linked_models(v.parse_linked_models_request(body).name))


async def _get_all_models(s: ManagementService, body: bytes) -> web.Response:
    return _json(await s.get_all_models(v.parse_verbose(body).verbose))


async def _get_model(s: ManagementService, body: bytes) -> web.Response:
    return _json(await s.get_model(v.parse_get_model(body)))


async def _get_all_containers(s: ManagementService, body: bytes) -> web.Response:
    return _json(await s.get_all_containers(v.parse_verbose(body).verbose))


async def _get_container(s: ManagementService, body: bytes) -> web.Response:
    return _json(await s.get_container(v.parse_container_ref(body)))


async def _get_state(s: ManagementService, body: bytes) -> web.Response:
    # The raw default output, not JSON-encoded, as the original.
    return _text(await s.get_selection_state(v.parse_get_state(body)))


ENDPOINTS: Final[dict[str, Action]] = {
    "/admin/add_app": _add_app,
    "/admin/delete_app": _delete_app,
    "/admin/add_model_links": _add_model_links,
    "/admin/delete_model_links": _delete_model_links,
    "/admin/add_model": _add_model,
    "/admin/set_model_version": _set_model_version,
    "/admin/delete_versioned_model": _delete_versioned_model,
    "/admin/set_model_batch_size": _set_model_batch_size,
    "/admin/get_all_applications": _get_all_applications,
    "/admin/get_application": _get_application,
    "/admin/get_linked_models": _get_linked_models,
    "/admin/get_all_models": _get_all_models,
    "/admin/get_model": _get_model,
    "/admin/get_all_containers": _get_all_containers,
    "/admin/get_container": _get_container,
    "/admin/get_state": _get_state,
}


def _post_handler(action: Action) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def handle(request: web.Request) -> web.Response:
        body = await request.read()
        try:
            return await action(request.app[SERVICE_KEY], body)
        except v.Rejected as exc:
            logger.info("%s refused: %r", request.path, exc.message)
            return _text(exc.message, status=400)

    return handle


async def _ping(request: web.Request) -> web.Response:
    return _text("PONG")


def add_routes(app: web.Application) -> None:
    """``POST`` for every endpoint of :data:`ENDPOINTS`, ``GET`` for :data:`PING_PATH`."""
    for path, action in ENDPOINTS.items():
        app.router.add_post(path, _post_handler(action))
    app.router.add_get(PING_PATH, _ping)
