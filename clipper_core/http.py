"""Shared aiohttp edge helpers for both frontends.

- :func:`json_error_middleware`: renders every error as ``{"error": ..., "cause": ...}`` JSON
  (keys in that order): a :class:`~clipper_core.errors.ClipperError` with its own status and texts,
  aiohttp's HTTP errors (404 unknown route, 405 wrong method, 413 body too large, ...) with their
  reason, and any other exception as 500 after logging it once.
- :func:`create_app`: an ``web.Application`` with that middleware and a request-body limit
  (aiohttp raises 413 when a handler reads a larger body).
- :func:`json_error_response`: the same body for handlers that answer an error themselves.

Bodies are ``application/json`` without a charset parameter, as the original wrote them.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Final

from aiohttp import web
from aiohttp.web_protocol import RequestPayloadError

from clipper_core.errors import ClipperError

__all__ = [
    "DEFAULT_MAX_BODY_BYTES",
    "JSON_CONTENT_TYPE",
    "create_app",
    "json_error_body",
    "json_error_middleware",
    "json_error_response",
]

logger = logging.getLogger(__name__)

JSON_CONTENT_TYPE: Final = "application/json"
DEFAULT_MAX_BODY_BYTES: Final = 1024 * 1024

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def json_error_body(error: str, cause: str) -> bytes:
    return json.dumps({"error": error, "cause": cause}, ensure_ascii=False, separators=(",", ":")).encode()


def json_error_response(status: int, error: str, cause: str) -> web.Response:
    return web.Response(status=status, body=json_error_body(error, cause), content_type=JSON_CONTENT_TYPE)


def _http_exception_response(request: web.Request, exc: web.HTTPException) -> web.Response:
    if exc.status == 404:
        cause = f"No endpoint for {request.method} {request.path}"
    elif exc.status == 405:
        allowed = ", ".join(sorted(getattr(exc, "allowed_methods", ()) or ()))
        cause = f"Method {request.method} is not allowed for {request.path}; allowed: {allowed}"
    else:
        cause = exc.text or exc.reason
    response = json_error_response(exc.status, exc.reason, cause)
    for name in ("Allow",):
        if name in exc.headers:
            response.headers[name] = exc.headers[name]
    return response


@web.middleware
async def json_error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every error answer is JSON ``{"error","cause"}``; unexpected exceptions become 500."""
    try:
        return await handler(request)
    except ClipperError as exc:
        if exc.http_status >= 500:
            logger.error("%s %s failed: %s", request.method, request.path, exc.cause)
        return json_error_response(exc.http_status, exc.error, exc.cause)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise  # redirects and the like pass through untouched
        return _http_exception_response(request, exc)
    except RequestPayloadError as exc:
        # The body could not be read as sent (e.g. it does not decode under its
        # Content-Encoding): the client's fault, not ours.
        return json_error_response(400, "Bad Request", f"Cannot read the request body: {exc}")
    except Exception as exc:
        logger.exception("Unhandled error in %s %s", request.method, request.path)
        return json_error_response(500, "Internal error", f"{type(exc).__name__}: {exc}")


def create_app(
    *,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    middlewares: Iterable[Callable[..., Awaitable[web.StreamResponse]]] = (),
) -> web.Application:
    """An application whose first middleware is :func:`json_error_middleware`."""
    return web.Application(
        client_max_size=max_body_bytes,
        middlewares=[json_error_middleware, *middlewares],
    )
