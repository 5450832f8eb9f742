"""Optional bearer-token check for the management API: one middleware, not one check per handler.

When the frontend runs with ``--admin_token`` (or ``CLIPPER_ADMIN_TOKEN``), every ``/admin/*``
request except ``GET /admin/ping`` must carry ``Authorization: Bearer <token>``; anything else is
answered 401 with the usual ``{"error", "cause"}`` JSON and a ``WWW-Authenticate`` header. The
management API deploys code, so this is the lock on it when the port is reachable by others.

The read-only dashboard (``browser_prefix``, ``/dashboard``) is behind the same token, in a form a
browser can carry: open ``/dashboard?token=<token>`` once and the answer sets a cookie (HttpOnly,
SameSite=Strict, path ``/dashboard``) and redirects to the page without the token in its address.
The cookie holds an HMAC of the token, not the token, so it opens the dashboard and never
``/admin/*``. Scripts may send the bearer header to the dashboard's JSON instead.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Awaitable, Callable
from typing import Final

from aiohttp import hdrs, web

from clipper_core.http import json_error_response

__all__ = ["ADMIN_PREFIX", "DASHBOARD_COOKIE", "bearer_token_middleware", "dashboard_cookie_value"]

logger = logging.getLogger(__name__)

ADMIN_PREFIX: Final = "/admin/"
_SCHEME: Final = "bearer"
DASHBOARD_COOKIE: Final = "clipper_dashboard"
_LOGIN_PARAMETER: Final = "token"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Middleware = Callable[[web.Request, Handler], Awaitable[web.StreamResponse]]


def _presented_token(request: web.Request) -> str | None:
    scheme, _, token = request.headers.get(hdrs.AUTHORIZATION, "").strip().partition(" ")
    return token.strip() if scheme.lower() == _SCHEME and token.strip() else None


def dashboard_cookie_value(token: str) -> str:
    """The dashboard cookie's value for ``token``: an HMAC of it, useless as a bearer token."""
    return hmac.new(token.encode("utf-8"), b"clipper-dashboard", hashlib.sha256).hexdigest()


def _matches(presented: str | None, expected: str) -> bool:
    # Constant-time comparison: the answer's timing says nothing about the token.
    return presented is not None and hmac.compare_digest(presented.encode("utf-8"), expected.encode("utf-8"))


def bearer_token_middleware(
    token: str, open_paths: frozenset[str], browser_prefix: str | None = None
) -> Middleware:
    """A middleware admitting ``/admin/*`` requests that present ``token`` (``open_paths`` and
    paths outside ``/admin/`` and ``browser_prefix`` are always admitted); under
    ``browser_prefix`` the dashboard cookie is admitted too, and ``?token=`` sets it."""
    cookie = dashboard_cookie_value(token)

    @web.middleware
    async def require_token(request: web.Request, handler: Handler) -> web.StreamResponse:
        path = request.path
        if browser_prefix is not None and (path == browser_prefix or path.startswith(browser_prefix + "/")):
            return await _browser_request(request, handler, token, cookie, browser_prefix)
        if path.startswith(ADMIN_PREFIX) and path not in open_paths:
            presented = _presented_token(request)
            if not _matches(presented, token):
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


async def _browser_request(
    request: web.Request, handler: Handler, token: str, cookie: str, prefix: str
) -> web.StreamResponse:
    login = request.query.get(_LOGIN_PARAMETER)
    if login is not None and _matches(login, token):
        # Set the cookie and drop the token from the address bar (and from the history).
        redirect = web.HTTPSeeOther(prefix)
        redirect.set_cookie(DASHBOARD_COOKIE, cookie, path=prefix, httponly=True, samesite="Strict")
        raise redirect
    if _matches(request.cookies.get(DASHBOARD_COOKIE), cookie) or _matches(_presented_token(request), token):
        return await handler(request)
    logger.warning(
        "%s %s from %s refused: %s", request.method, request.path, request.remote,
        "wrong dashboard token" if login is not None else "no dashboard cookie or bearer token",
    )
    return json_error_response(
        401,
        "Unauthorized",
        f"This dashboard requires the management frontend's admin token: open {prefix}?token=<token> "
        "once (it sets a cookie), or send 'Authorization: Bearer <token>'",
    )
