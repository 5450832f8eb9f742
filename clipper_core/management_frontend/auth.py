"""Optional bearer-token check for the management API: one middleware, not one check per handler.

When the frontend runs with ``--admin_token`` (or ``CLIPPER_ADMIN_TOKEN``), every ``/admin/*``
request except ``GET /admin/ping`` must carry ``Authorization: Bearer <token>``; anything else is
answered 401 with the usual ``{"error", "cause"}`` JSON and a ``WWW-Authenticate`` header. The
management API deploys code, so this is the lock on it when the port is reachable by others.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Awaitable, Callable
from typing import Final

from aiohttp import hdrs, web

from clipper_core.http import json_error_response

__all__ = ["ADMIN_PREFIX", "bearer_token_middleware"]

logger = logging.getLogger(__name__)

ADMIN_PREFIX: Final = "/admin/"
_SCHEME: Final = "bearer"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Middleware = Callable[[web.Request, Handler], Awaitable[web.StreamResponse]]


def _presented_token(request: web.Request) -> str | None:
    scheme, _, token = request.headers.get(hdrs.AUTHORIZATION, "").strip().partition(" ")
    return token.strip() if scheme.lower() == _SCHEME and token.strip() else None


def bearer_token_middleware(token: str, open_paths: frozenset[str]) -> Middleware:
    """A middleware admitting ``/admin/*`` requests that present ``token`` (``open_paths`` and
    paths outside ``/admin/`` are always admitted)."""
    expected = token.encode("utf-8")

    @web.middleware
    async def require_token(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path.startswith(ADMIN_PREFIX) and request.path not in open_paths:
            presented = _presented_token(request)
            # Constant-time comparison: the answer's timing says nothing about the token.
            if presented is None or not hmac.compare_digest(presented.encode("utf-8"), expected):
                logger.warning(
                    "%s %s from %s refused: %s", request.method, request.path, request.remote,
                    "no bearer token" if presented is None else "wrong bearer token",
                )
                response = json_error_response(
                    401,
                    "Unauthorized",
                    "This management API requires 'Authorization: Bearer <token>' (the token the "
                    "frontend was started with: --admin_token or CLIPPER_ADMIN_TOKEN)",
                )
                response.headers[hdrs.WWW_AUTHENTICATE] = 'Bearer realm="clipper-admin"'
                return response
        return await handler(request)

    return require_token
