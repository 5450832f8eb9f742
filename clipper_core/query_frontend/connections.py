"""Connection limits of the query frontend's HTTP server: timeouts per phase and a cap.

aiohttp bounds an idle keep-alive connection but not the time to send a request's headers or
its body: a client may hold a connection (and a file descriptor) open for ever by sending a
byte now and then, or by sending a body shorter than its ``Content-Length``. Each connection
here has one deadline, re-armed as it moves through its phases (the original's
``--timeout_request`` / ``--timeout_content``, core spec 2.1 and 7):

- *headers*: from the connection's start, or from the first byte after an idle pause, until
  the request line and headers are in: ``timeout_request_s``;
- *content*: from then until the response is written (reading the body, answering, writing):
  ``timeout_content_s``;
- *idle*: between a response and the next request on a keep-alive connection:
  ``keepalive_timeout_s``.

A connection past its deadline is aborted (its handler is cancelled, so its queries leave
their queues). A timeout of 0 disables that phase's limit, as in the original. Connections
beyond ``max_connections`` are answered ``503`` with ``Retry-After`` and closed at once.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Final, cast

from aiohttp import web
from aiohttp.web_protocol import RequestHandler

from clipper_core.http import json_error_body
from clipper_core.rpc.stage_trace import TRACE

__all__ = ["ConnectionLimits", "LimitedServer", "request_started"]

logger = logging.getLogger(__name__)

OVER_CAPACITY_RETRY_AFTER_S: Final = 1
_OVER_CAPACITY_BODY: Final = json_error_body(
    "Service Unavailable", "The query frontend has reached its connection limit (--max_connections)"
)
_OVER_CAPACITY: Final = (
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
    + f"Content-Length: {len(_OVER_CAPACITY_BODY)}\r\n".encode()
    + f"Retry-After: {OVER_CAPACITY_RETRY_AFTER_S}\r\nConnection: close\r\n\r\n".encode()
    + _OVER_CAPACITY_BODY
)


@dataclass(slots=True, frozen=True)
class ConnectionLimits:
    """Seconds per phase (0 = no limit) and the most connections served at once."""

    timeout_request_s: float
    timeout_content_s: float
    keepalive_timeout_s: float
    max_connections: int


class _Phase(enum.Enum):
    HEADERS = "reading the request headers"
    CONTENT = "reading the body and writing the response"
    IDLE = "idle between requests"


class _LimitedHandler(RequestHandler):
    """aiohttp's connection protocol plus one deadline per phase."""

    def __init__(self, manager: LimitedServer, limits: ConnectionLimits, **kwargs: Any) -> None:
        super().__init__(manager, **kwargs)
        self._limits = limits
        self._limited_server = manager
        self._phase = _Phase.HEADERS
        self._deadline: asyncio.TimerHandle | None = None
        self._deadline_at = math.inf
        self._is_counted = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        server = self._limited_server
        if server.open_connections >= self._limits.max_connections:
            server.refused_connections += 1
            if server.refused_connections == 1 or server.refused_connections % 1000 == 0:
                logger.warning(
                    "At the connection limit (%d): refused %d connection(s) with 503 so far",
                    self._limits.max_connections, server.refused_connections,
                )
            # uvloop's transports are not asyncio.Transport subclasses; both have these.
            writable = cast(asyncio.Transport, transport)
            writable.write(_OVER_CAPACITY)
            writable.close()
            return
        server.open_connections += 1
        self._is_counted = True
        super().connection_made(transport)
        self._enter(_Phase.HEADERS)

    def connection_lost(self, exc: BaseException | None) -> None:
        if not self._is_counted:
            return  # refused at the limit: aiohttp never saw it
        self._is_counted = False
        self._limited_server.open_connections -= 1
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if TRACE is not None:
            TRACE.mark("http_data")
        if not self._is_counted:
            return
        if self._phase is _Phase.IDLE and data:
            self._enter(_Phase.HEADERS)  # the next request has begun
        super().data_received(data)

    def request_started(self) -> None:
        """The request line and headers are parsed: the content phase begins."""
        self._enter(_Phase.CONTENT)

    async def finish_response(
        self, request: web.BaseRequest, resp: web.StreamResponse, start_time: float | None
    ) -> tuple[web.StreamResponse, bool]:
        result = await super().finish_response(request, resp, start_time)
        if TRACE is not None:
            TRACE.mark("response_written")
        self._enter(_Phase.IDLE)
        return result

    def _enter(self, phase: _Phase) -> None:
        # One timer per connection, re-armed lazily (as aiohttp's keep-alive timer is): a phase
        # change only moves ``_deadline_at``; the timer re-arms itself when it fires early.
        # That keeps timer churn off the per-request path.
        self._phase = phase
        limits = self._limits
        timeout_s = (
            limits.timeout_request_s
            if phase is _Phase.HEADERS
            else limits.timeout_content_s
            if phase is _Phase.CONTENT
            else limits.keepalive_timeout_s
        )
        if timeout_s <= 0 or self.transport is None:
            self._deadline_at = math.inf
            return
        loop = asyncio.get_running_loop()
        deadline_at = self._deadline_at = loop.time() + timeout_s
        timer = self._deadline
        if timer is None or timer.when() > deadline_at:
            if timer is not None:
                timer.cancel()
            self._deadline = loop.call_at(deadline_at, self._check_deadline)

    def _check_deadline(self) -> None:
        self._deadline = None
        deadline_at = self._deadline_at
        if deadline_at == math.inf:
            return
        loop = asyncio.get_running_loop()
        if loop.time() < deadline_at:
            self._deadline = loop.call_at(deadline_at, self._check_deadline)
            return
        transport = self.transport
        logger.debug("Closing a connection %s for too long (%s)", self._phase.value, self._peer(transport))
        self.force_close()
        if transport is not None:
            # abort, not close: close waits for unsent data a stalled client never reads.
            transport.abort()

    @staticmethod
    def _peer(transport: asyncio.BaseTransport | None) -> object:
        return transport.get_extra_info("peername") if transport is not None else None


class LimitedServer(web.Server):
    """``web.Server`` whose connections obey :class:`ConnectionLimits`."""

    def __init__(
        self,
        handler: Callable[[web.BaseRequest], Awaitable[web.StreamResponse]],
        limits: ConnectionLimits,
        **kwargs: Any,
    ) -> None:
        handler_kwargs = {
            k: v for k, v in kwargs.items() if k not in ("request_factory", "handler_cancellation", "loop")
        }
        if limits.keepalive_timeout_s > 0:
            handler_kwargs["keepalive_timeout"] = limits.keepalive_timeout_s
        super().__init__(handler, **kwargs)
        self.limits = limits
        self._handler_kwargs = handler_kwargs
        self.open_connections = 0
        self.refused_connections = 0

    def __call__(self) -> RequestHandler:
        return _LimitedHandler(self, self.limits, loop=asyncio.get_running_loop(), **self._handler_kwargs)


def request_started(protocol: object) -> None:
    """Tell the connection its request's headers are in (called by the request factory)."""
    if type(protocol) is _LimitedHandler:
        protocol.request_started()
