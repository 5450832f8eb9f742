"""HTTP edge of the dashboard: the page and its JSON, under ``/dashboard`` on the management port.

``GET /dashboard`` is the page (static files shipped in this package, read once at start-up);
the page polls the JSON endpoints of :data:`ENDPOINTS` (query string -> parse -> operate ->
respond, as the management API's table). All of it is read-only.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Final, TypeVar

import orjson
from aiohttp import web

from clipper_core.errors import BadRequest
from clipper_core.http import JSON_CONTENT_TYPE
from clipper_core.management_frontend.dashboard.cluster import read_cluster
from clipper_core.management_frontend.dashboard.digest import Json, digest
from clipper_core.management_frontend.dashboard.sampler import MetricsSampler
from clipper_core.state import StateStore

__all__ = [
    "DASHBOARD_PATH",
    "ENDPOINTS",
    "STATIC_FILES",
    "DashboardService",
    "add_dashboard",
    "parse_metrics_query",
]

logger = logging.getLogger(__name__)

DASHBOARD_PATH: Final = "/dashboard"
API_PREFIX: Final = DASHBOARD_PATH + "/api/"
STATIC_PREFIX: Final = DASHBOARD_PATH + "/static/"
DEFAULT_WINDOW_S: Final = 60.0
# Shipped in the package (pyproject's package-data): name -> content type.
STATIC_FILES: Final = {
    "index.html": "text/html",
    "dashboard.js": "text/javascript",
    "dashboard.css": "text/css",
}
_PAGE: Final = "index.html"


@dataclass(slots=True, frozen=True)
class MetricsQuery:
    window_s: float = DEFAULT_WINDOW_S


def parse_metrics_query(query: Mapping[str, str]) -> MetricsQuery:
    """``?window_s=S``: the span of the "window" numbers, 1-3600 s (default 60).

    Raises:
        BadRequest: an unknown parameter or a bad value.
    """
    unknown = sorted(set(query) - {"window_s"})
    if unknown:
        raise BadRequest(f"unknown query parameter(s): {', '.join(unknown)}")
    raw = query.get("window_s")
    if raw is None:
        return MetricsQuery()
    try:
        window_s = float(raw)
    except ValueError:
        raise BadRequest(f"window_s={raw!r} is not a number") from None
    if not 1.0 <= window_s <= 3600.0:
        raise BadRequest(f"window_s={raw} is outside 1-3600 seconds")
    return MetricsQuery(window_s)


def _no_parameters(query: Mapping[str, str]) -> None:
    if query:
        raise BadRequest(f"unknown query parameter(s): {', '.join(sorted(query))}")


class DashboardService:
    """What the dashboard's JSON reads: the Redis state and the sampler's ring buffer."""

    def __init__(self, store: StateStore, sampler: MetricsSampler | None) -> None:
        self._store = store
        self.sampler = sampler

    def _frontend(self) -> Json:
        """A summary over the query frontends (reachable: all of them) and one entry each."""
        if self.sampler is None:
            return {"configured": False}
        statuses = self.sampler.statuses
        healths = {status.health for status in statuses}
        checked = [status.checked_at_s for status in statuses if status.checked_at_s is not None]
        return {
            "configured": True,
            "address": ", ".join(status.address for status in statuses),
            "reachable": all(status.reachable for status in statuses),
            "health": healths.pop() if len(healths) == 1 else "mixed",
            "error": next((f"{s.address}: {s.error}" for s in statuses if s.error), None),
            "checked_at_s": min(checked) if len(checked) == len(statuses) else None,
            "frontends": [
                {"address": s.address, "reachable": s.reachable, "health": s.health, "error": s.error}
                for s in statuses
            ],
            "interval_s": self.sampler.interval_s,
            "horizon_s": self.sampler.horizon_s,
        }

    async def cluster(self, _: None) -> Json:
        return {"cluster": await read_cluster(self._store), "query_frontend": self._frontend()}

    async def metrics(self, query: MetricsQuery) -> Json:
        scrapes = list(self.sampler.scrapes) if self.sampler is not None else []
        return {**digest(scrapes, query.window_s), "query_frontend": self._frontend()}


SERVICE_KEY: Final = web.AppKey("dashboard_service", DashboardService)

Action = Callable[[DashboardService, Mapping[str, str]], Awaitable[web.Response]]
R = TypeVar("R")


def _json(value: Json) -> web.Response:
    response = web.Response(body=orjson.dumps(value), content_type=JSON_CONTENT_TYPE)
    response.headers["Cache-Control"] = "no-store"
    return response


def _endpoint(
    parse: Callable[[Mapping[str, str]], R],
    operate: Callable[[DashboardService, R], Awaitable[Json]],
) -> Action:
    async def action(service: DashboardService, query: Mapping[str, str]) -> web.Response:
        return _json(await operate(service, parse(query)))

    return action


# One row per endpoint: its query parser and the operation; every answer is JSON.
ENDPOINTS: Final[dict[str, Action]] = {
    API_PREFIX + "cluster": _endpoint(_no_parameters, DashboardService.cluster),
    API_PREFIX + "metrics": _endpoint(parse_metrics_query, DashboardService.metrics),
}


def _get_handler(action: Action) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def handle(request: web.Request) -> web.Response:
        return await action(request.app[SERVICE_KEY], request.query)

    return handle


def _read_static() -> dict[str, bytes]:
    folder = resources.files(__package__).joinpath("static")
    return {name: folder.joinpath(name).read_bytes() for name in STATIC_FILES}


def _static_handler(files: dict[str, bytes]) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def handle(request: web.Request) -> web.Response:
        name = request.match_info.get("name", _PAGE)
        body = files.get(name)
        if body is None:
            raise web.HTTPNotFound()
        response = web.Response(body=body, content_type=STATIC_FILES[name])
        response.headers["Cache-Control"] = "no-cache"
        return response

    return handle


def add_dashboard(
    app: web.Application,
    store: Callable[[], StateStore],
    sampler: MetricsSampler | None,
) -> None:
    """Routes for the page, its static files and its JSON; the sampler (if any) runs while the
    application does. ``store`` returns the application's store once it is connected."""
    files: dict[str, bytes] = {}

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        # File reads off the event loop, once.
        files.update(await asyncio.get_running_loop().run_in_executor(None, _read_static))
        app[SERVICE_KEY] = DashboardService(store(), sampler)
        task = asyncio.create_task(sampler.run(), name="dashboard-sampler") if sampler else None
        if task is not None:
            task.add_done_callback(_log_sampler_end)
        try:
            yield
        finally:
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)

    app.cleanup_ctx.append(lifecycle)
    static = _static_handler(files)
    app.router.add_get(DASHBOARD_PATH, static)
    app.router.add_get(DASHBOARD_PATH + "/", static)
    app.router.add_get(STATIC_PREFIX + "{name}", static)
    for path, action in ENDPOINTS.items():
        app.router.add_get(path, _get_handler(action))


def _log_sampler_end(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        logger.error("The dashboard's metrics sampler stopped", exc_info=task.exception())
