"""HTTP edge of the query frontend: path + JSON body -> queries; replies -> JSON (core spec 2).

Routes: ``POST /<app>/predict[/]``, ``POST /<app>/update[/]``, ``GET /metrics``, ``GET /healthz``.

:class:`QueryRoutes` is the one handler of the frontend's own HTTP/1.1 server
(:mod:`clipper_core.query_frontend.connections`): it takes a
:class:`~clipper_core.query_frontend.wire.Request` and returns a complete
:class:`~clipper_core.query_frontend.wire.Response`. With four routes, splitting the path beats a
URL dispatcher, and one ``try`` beats a middleware chain. Errors raised here are
:class:`~clipper_core.errors.ClipperError` subclasses (among them the 413 of an oversize body,
from ``Request.read``), rendered as ``{"error","cause"}`` by :mod:`clipper_core.http_errors`,
whose texts the management frontend renders too. The one exception is ``/update``, whose 400
answers are plain text, as in the original.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Final, Protocol

import orjson

from clipper_core.errors import BadRequest, NotFound
from clipper_core.http_errors import answer_for_exception, json_error_body, method_not_allowed, not_found
from clipper_core.jsontext import schema_error_text
from clipper_core.query_frontend.inputs import (
    PREDICT_SCHEMA,
    UPDATE_SCHEMA,
    JsonInputError,
    parse_feedback,
    parse_json_object,
    parse_predict_inputs,
    parse_uid,
    parse_version,
)
from clipper_core.query_frontend.processor import QueryProcessor, Reply
from clipper_core.query_frontend.registry import AppEntry
from clipper_core.query_frontend.wire import TEXT, Request, Response, error_answer_response
from clipper_core.rpc.stage_trace import TRACE

__all__ = [
    "JSON_ERROR",
    "MetricsRenderer",
    "QueryHandlers",
    "QueryRoutes",
    "reply_object",
    "wants_prometheus",
]

JSON_ERROR: Final = "Json error"


class MetricsRenderer(Protocol):
    def render_prometheus(self) -> tuple[bytes, str]: ...

    def render_json_report(self) -> bytes: ...


def reply_object(reply: Reply) -> dict[str, Any]:
    """One prediction object; key order ``query_id, output, default[, default_explanation]``,
    then, for an ensemble's answer only, ``confidence, members_answered, members`` (ours)."""
    if reply.is_default:
        result: dict[str, Any] = {
            "query_id": reply.query_id,
            "output": reply.output,
            "default": True,
            "default_explanation": reply.default_explanation,
        }
    else:
        result = {"query_id": reply.query_id, "output": reply.output, "default": False}
    if reply.members is not None:
        result["confidence"] = reply.confidence
        result["members_answered"] = reply.members_answered
        result["members"] = reply.members
    return result


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
        max_inputs_per_request: int | None = None,
    ) -> None:
        self._processor = processor
        self._max_inputs = max_inputs_per_request
        self._metrics = metrics
        self._health = health

    async def _app_after_catching_up(self, name: str) -> AppEntry:
        """The path's application once the registry has caught up with Redis, or 404.

        Only for names the registry does not know: an app registered a moment ago may not have
        reached the registry yet, and its client must not see a 404.
        """
        await self._processor.catch_up()
        app = self._processor.find_app(name)
        if app is None:
            raise NotFound(f"Application {name} does not exist")
        return app

    async def predict(self, request: Request, app_name: str) -> Response:
        # Asked before the body is read (404 first, as the original); the known-app case stays
        # free of an extra coroutine level (each costs a resume per await on the hot path).
        app = self._processor.find_app(app_name) or await self._app_after_catching_up(app_name)
        body = await request.read()
        # Order matters for which error wins (spec 2.2): JSON, then version, then inputs.
        try:
            doc = parse_json_object(body)
            version = parse_version(doc)
        except JsonInputError as exc:
            raise _predict_json_error(exc) from None
        policy = app.policy
        if version is None and policy is not None and (policy.learns or policy.is_ensemble):
            # Exp3 / Exp4: a selection (and possibly several models) per input.
            try:
                payloads = parse_predict_inputs(doc, app.info.input_type, self._max_inputs)
                uid = parse_uid(doc)
            except JsonInputError as exc:
                raise _predict_json_error(exc) from None
            return self._predictions(await self._processor.predict_selected(app, policy, payloads, uid))
        target = self._processor.resolve_target(app, version)
        if target is None:
            # A link or version set a moment ago may still be on its way to the registry.
            await self._processor.catch_up()
            target = self._processor.resolve_target(app, version)
        try:
            payloads = parse_predict_inputs(doc, app.info.input_type, self._max_inputs)
        except JsonInputError as exc:
            raise _predict_json_error(exc) from None
        self._processor.check_policy(app)  # once, after the inputs, as the original
        hit = self._processor.answer_from_cache(app, target, payloads)
        if hit is not None:
            return Response(orjson.dumps(reply_object(hit)))
        replies = await self._processor.predict(app, target, payloads, cache_checked=True)
        if TRACE is not None:
            TRACE.mark("reply_resumed")
        return self._predictions(replies)

    @staticmethod
    def _predictions(replies: list[Reply]) -> Response:
        if len(replies) == 1:  # "input", or a batch of exactly one, answers a single object
            result: dict[str, Any] = reply_object(replies[0])
        else:
            result = {"batch_predictions": [reply_object(r) for r in replies]}
        return Response(orjson.dumps(result))

    async def update(self, request: Request, app_name: str) -> Response:
        app = self._processor.find_app(app_name) or await self._app_after_catching_up(app_name)
        body = await request.read()
        try:
            feedback = parse_feedback(parse_json_object(body), app.info.input_type)
        except JsonInputError as exc:
            return Response(
                schema_error_text(exc.message, UPDATE_SCHEMA).encode(), status=400, content_type=TEXT
            )
        # On the original's policy (and the A/B split) no container is contacted and the answer is
        # 1 iff uid is 0, as the original; a learning policy scores its models and learns.
        received = await self._processor.update(app, feedback)
        return Response(f"Feedback received? {int(received)}".encode(), content_type=TEXT)

    async def metrics(self, request: Request) -> Response:
        if wants_prometheus(request.accept):
            body, content_type = self._metrics.render_prometheus()
            return Response(body, content_type=content_type)  # may carry version/charset parameters
        return Response(self._metrics.render_json_report())

    async def healthz(self, request: Request) -> Response:
        health = self._health()
        healthy = bool(health.pop("healthy", True))
        body = {"status": "ok" if healthy else "unhealthy", **health}
        return Response(orjson.dumps(body), status=200 if healthy else 503)


_POST_ONLY: Final = ("POST",)
_GET_ONLY: Final = ("GET", "HEAD")


class QueryRoutes:
    """The server's handler: routes, checks ``Expect``, renders every error as JSON.

    ``/<app>/predict`` and ``/<app>/update`` take an optional trailing slash, as the original's
    regexes did; ``<app>`` is one non-empty path segment. GET routes answer HEAD too (the
    server leaves the body out).
    """

    def __init__(self, handlers: QueryHandlers) -> None:
        self._fixed: dict[str, Callable[[Request], Awaitable[Response]]] = {
            "/metrics": handlers.metrics,
            "/healthz": handlers.healthz,
        }
        self._per_app: dict[str, Callable[[Request, str], Awaitable[Response]]] = {
            "predict": handlers.predict,
            "update": handlers.update,
        }

    async def __call__(self, request: Request) -> Response:
        # Routing inline rather than in a helper coroutine: one resume fewer per await.
        if TRACE is not None:
            TRACE.mark("handler")
        try:
            path = request.path
            method = request.method
            parts = path.split("/")
            # "/a/predict" -> ["", "a", "predict"]; "/a/predict/" -> ["", "a", "predict", ""]
            if (len(parts) == 3 or (len(parts) == 4 and not parts[3])) and parts[1]:
                per_app = self._per_app.get(parts[2])
                if per_app is not None:
                    if method != "POST":
                        return error_answer_response(method_not_allowed(method, path, _POST_ONLY))
                    expect = request.expect
                    # "100-continue" is sent by Request.read when the body is wanted.
                    if expect and request.is_http11 and expect.lower() != "100-continue":
                        return Response(
                            json_error_body("Expectation Failed", f"Unknown Expect: {expect}"), status=417
                        )
                    return await per_app(request, parts[1])
            fixed = self._fixed.get(path)
            if fixed is None:
                return error_answer_response(not_found(method, path))
            if method not in _GET_ONLY:
                return error_answer_response(method_not_allowed(method, path, _GET_ONLY))
            return await fixed(request)
        except Exception as exc:
            return error_answer_response(answer_for_exception(request.method, request.path, exc))
