"""HTTP edge of the query frontend: path + JSON body -> queries; replies -> JSON (core spec 2).

Routes: ``POST /<app>/predict[/]``, ``POST /<app>/update[/]``, ``GET /metrics``, ``GET /healthz``.
Errors raised here are :class:`~clipper_core.errors.ClipperError` subclasses, rendered as
``{"error","cause"}`` by the shared middleware of :mod:`clipper_core.http` (which also turns
unknown routes into 404 JSON and oversize bodies into 413 JSON). The one exception is
``/update``, whose 400 answers are plain text, as in the original.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final, Protocol

import orjson
from aiohttp import web

from clipper_core.errors import BadRequest, NotFound
from clipper_core.jsontext import schema_error_text
from clipper_core.query_frontend.inputs import (
    PREDICT_SCHEMA,
    UPDATE_SCHEMA,
    JsonInputError,
    parse_feedback,
    parse_json_object,
    parse_predict_inputs,
    parse_version,
)
from clipper_core.query_frontend.processor import QueryProcessor, Reply
from clipper_core.query_frontend.registry import AppEntry

__all__ = ["JSON_ERROR", "MetricsRenderer", "QueryHandlers", "add_routes", "reply_object", "wants_prometheus"]

JSON_ERROR: Final = "Json error"
_JSON: Final = "application/json"
_TEXT: Final = "text/plain"


class MetricsRenderer(Protocol):
    def render_prometheus(self) -> tuple[bytes, str]: ...

    def render_json_report(self) -> bytes: ...


def reply_object(reply: Reply) -> dict[str, Any]:
    """One prediction object; key order ``query_id, output, default[, default_explanation]``."""
    if reply.is_default:
        return {
            "query_id": reply.query_id,
            "output": reply.output,
            "default": True,
            "default_explanation": reply.default_explanation,
        }
    return {"query_id": reply.query_id, "output": reply.output, "default": False}


def _predict_json_error(exc: JsonInputError) -> BadRequest:
    return BadRequest(schema_error_text(exc.message, PREDICT_SCHEMA), JSON_ERROR)


def wants_prometheus(accept: str) -> bool:
    """Prometheus scrapers ask for OpenMetrics or ``text/plain``; everyone else gets the JSON report."""
    return "openmetrics" in accept or "text/plain" in accept


class QueryHandlers:
    """The request handlers, bound to the objects the composition root built."""

    def __init__(
        self,
        processor: QueryProcessor,
        metrics: MetricsRenderer,
        health: Callable[[], dict[str, Any]] = dict,
    ) -> None:
        self._processor = processor
        self._metrics = metrics
        self._health = health

    async def _app_and_body(self, request: web.Request) -> tuple[AppEntry, bytes]:
        """The path's application (404 before the body is read, as the original) and the body."""
        name = request.match_info["app"]
        app = self._processor.find_app(name)
        if app is None:
            raise NotFound(f"Application {name} does not exist")
        return app, await request.read()

    async def predict(self, request: web.Request) -> web.Response:
        app, body = await self._app_and_body(request)
        # Order matters for which error wins (spec 2.2): JSON, then version, then inputs.
        try:
            doc = parse_json_object(body)
            version = parse_version(doc)
        except JsonInputError as exc:
            raise _predict_json_error(exc) from None
        target = self._processor.resolve_target(app, version)
        try:
            payloads = parse_predict_inputs(doc, app.info.input_type)
        except JsonInputError as exc:
            raise _predict_json_error(exc) from None
        hit = self._processor.answer_from_cache(app, target, payloads)
        if hit is not None:
            return web.Response(body=orjson.dumps(reply_object(hit)), content_type=_JSON)
        replies = await self._processor.predict(app, target, payloads, cache_checked=True)
        if len(replies) == 1:  # "input", or a batch of exactly one, answers a single object
            result: dict[str, Any] = reply_object(replies[0])
        else:
            result = {"batch_predictions": [reply_object(r) for r in replies]}
        return web.Response(body=orjson.dumps(result), content_type=_JSON)

    async def update(self, request: web.Request) -> web.Response:
        app, body = await self._app_and_body(request)
        try:
            feedback = parse_feedback(parse_json_object(body), app.info.input_type)
        except JsonInputError as exc:
            return web.Response(
                status=400,
                text=schema_error_text(exc.message, UPDATE_SCHEMA),
                content_type=_TEXT,
            )
        self._processor.take_query_ids(1)  # the original consumes a query id per update
        # As the original: no container is contacted; with the only selection policy the answer
        # is 1 iff uid is 0 (the app's selection state always exists once it is registered).
        return web.Response(text=f"Feedback received? {int(feedback.uid == 0)}", content_type=_TEXT)

    async def metrics(self, request: web.Request) -> web.Response:
        if wants_prometheus(request.headers.get("Accept", "")):
            body, content_type = self._metrics.render_prometheus()
            response = web.Response(body=body)
            response.headers["Content-Type"] = content_type  # may carry version/charset parameters
            return response
        return web.Response(body=self._metrics.render_json_report(), content_type=_JSON)

    async def healthz(self, request: web.Request) -> web.Response:
        health = self._health()
        healthy = bool(health.pop("healthy", True))
        body = {"status": "ok" if healthy else "unhealthy", **health}
        return web.Response(status=200 if healthy else 503, body=orjson.dumps(body), content_type=_JSON)


def add_routes(app: web.Application, handlers: QueryHandlers) -> None:
    """Register the query frontend's routes (trailing slash optional, as the original's regexes)."""
    app.router.add_get("/metrics", handlers.metrics)
    app.router.add_get("/healthz", handlers.healthz)
    app.router.add_post("/{app}/predict", handlers.predict)
    app.router.add_post("/{app}/predict/", handlers.predict)
    app.router.add_post("/{app}/update", handlers.update)
    app.router.add_post("/{app}/update/", handlers.update)
