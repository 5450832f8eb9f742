"""aiohttp edge helpers of the management frontend (and its dashboard).

- :func:`json_error_middleware`: renders every error as ``{"error": ..., "cause": ...}`` JSON
  (keys in that order): a :class:`~clipper_core.errors.ClipperError` with its own status and texts,
  aiohttp's HTTP errors (404 unknown route, 405 wrong method, 413 body too large, ...) with their
  reason, and any other exception as 500 after logging it once.
- :func:`create_app`: an ``web.Application`` with that middleware and a request-body limit
  (aiohttp raises 413 when a handler reads a larger body).
- :func:`error_response`: the same rendering for servers without the middleware, with
  :func:`not_found_response` and :func:`method_not_allowed_response` for their own routing.
- :func:`json_error_response`: the same body for handlers that answer an error themselves.

The texts and bodies come from :mod:`clipper_core.http_errors`, which the query frontend's own
HTTP server (no aiohttp) renders too. Bodies are ``application/json`` without a charset
parameter, as the original wrote them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import Final

from aiohttp import web
from aiohttp.web_protocol import RequestPayloadError

from clipper_core.http_errors import (
    JSON_CONTENT_TYPE,
    ErrorAnswer,
    answer_for_exception,
    json_error_body,
    method_not_allowed,
    not_found,
)

__all__ = [
    "DEFAULT_MAX_BODY_BYTES",
    "JSON_CONTENT_TYPE",
    "create_app",
    "error_response",
    "json_error_body",
    "json_error_middleware",
    "json_error_response",
    "method_not_allowed_response",
    "not_found_response",
]

DEFAULT_MAX_BODY_BYTES: Final = 1024 * 1024

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def json_error_response(status: int, error: str, cause: str) -> web.Response:
    return web.Response(status=status, body=json_error_body(error, cause), content_type=JSON_CONTENT_TYPE)


def _response(answer: ErrorAnswer) -> web.Response:
    response = json_error_response(answer.status, answer.error, answer.cause)
    if answer.allow is not None:
        response.headers["Allow"] = answer.allow
    return response


def not_found_response(request: web.BaseRequest) -> web.Response:
    return _response(not_found(request.method, request.path))


def method_not_allowed_response(request: web.BaseRequest, allowed: Iterable[str]) -> web.Response:
    return _response(method_not_allowed(request.method, request.path, allowed))


def error_response(request: web.BaseRequest, exc: Exception) -> web.Response:
    """The JSON answer for an exception a handler raised (logged when it is the server's fault).

    Raises:
        web.HTTPException: ``exc`` itself when it is not an error (redirects pass through).
    """
    if isinstance(exc, web.HTTPException):
        if exc.status < 400:
            raise exc
        if exc.status == 404:
            return not_found_response(request)
        if exc.status == 405:
            return method_not_allowed_response(request, getattr(exc, "allowed_methods", ()) or ())
        return json_error_response(exc.status, exc.reason, exc.text or exc.reason)
    if isinstance(exc, RequestPayloadError):
        # The body could not be read as sent (e.g. it does not decode under its
        # Content-Encoding): the client's fault, not ours.
        return json_error_response(400, "Bad Request", f"Cannot read the request body: {exc}")
    return _response(answer_for_exception(request.method, request.path, exc))


@web.middleware
async def json_error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every error answer is JSON ``{"error","cause"}``; unexpected exceptions become 500."""
    try:
        return await handler(request)
    except Exception as exc:
        return error_response(request, exc)


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
