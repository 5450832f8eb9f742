"""Composition root of the management frontend: Redis store, service, routes, lifecycle."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Final

from aiohttp import web

from clipper_core.http import DEFAULT_MAX_BODY_BYTES, create_app
from clipper_core.management_frontend.auth import bearer_token_middleware
from clipper_core.management_frontend.dashboard import DASHBOARD_PATH, MetricsSampler, add_dashboard
from clipper_core.management_frontend.handlers import PING_PATH, SERVICE_KEY, add_routes
from clipper_core.management_frontend.operations import ManagementService
from clipper_core.settings import ManagementSettings, RedisOptions
from clipper_core.state import StateStore

__all__ = ["STORE_KEY", "build_app", "serve"]

logger = logging.getLogger(__name__)

STORE_KEY: Final = web.AppKey("state_store", StateStore)
SHUTDOWN_TIMEOUT_S: Final = 5.0


def build_app(
    redis: RedisOptions,
    *,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    admin_token: str | None = None,
    query_frontends: tuple[tuple[str, int], ...] = (),
) -> web.Application:
    """The aiohttp application; it connects to Redis on startup (retrying until Redis answers).

    With ``admin_token``, /admin/* (but /admin/ping) and /dashboard need the token (see ``auth``).
    With ``query_frontends`` ((host, port) each), the dashboard samples their /metrics.
    """
    middlewares = (
        []
        if admin_token is None
        else [bearer_token_middleware(admin_token, frozenset({PING_PATH}), browser_prefix=DASHBOARD_PATH)]
    )
    app = create_app(max_body_bytes=max_body_bytes, middlewares=middlewares)

    async def state_store(app: web.Application) -> AsyncIterator[None]:
        store = await StateStore.connect(redis)
        app[STORE_KEY] = store
        app[SERVICE_KEY] = ManagementService(store)
        try:
            yield
        finally:
            await store.aclose()

    app.cleanup_ctx.append(state_store)
    add_routes(app)
    sampler = MetricsSampler(query_frontends) if query_frontends else None
    add_dashboard(app, lambda: app[STORE_KEY], sampler)
    return app


async def serve(settings: ManagementSettings, started: asyncio.Event | None = None) -> None:
    """Connect to Redis, then listen on ``settings.host:port`` until cancelled.

    Redis comes first, so ``GET /admin/ping`` answering means the API is usable.
    """
    app = build_app(
        settings.redis, admin_token=settings.admin_token, query_frontends=settings.query_frontends
    )
    runner = web.AppRunner(app, shutdown_timeout=SHUTDOWN_TIMEOUT_S)
    await runner.setup()
    try:
        site = web.TCPSite(runner, settings.host, settings.port)
        await site.start()
        logger.info(
            "Management frontend listening on %s:%d (Redis %s:%d; %s); dashboard at %s%s",
            settings.host,
            settings.port,
            settings.redis.ip,
            settings.redis.port,
            "bearer token required" if settings.admin_token else "no admin token",
            DASHBOARD_PATH,
            "" if settings.query_frontends else " (no --query_frontend_address: no metrics)",
        )
        if started is not None:
            started.set()
        await asyncio.Future()  # until cancelled
    finally:
        await runner.cleanup()
