"""The query frontend's HTTP/1.1 server: an asyncio Protocol per connection over httptools.

:class:`HttpServer` listens (``loop.create_server``, uvloop's when it runs) and makes one
:class:`HttpConnection` per accepted connection. The connection feeds the bytes it receives to
an ``httptools.HttpRequestParser`` (llhttp, the parser under uvicorn), keeps only the headers the
handlers use (``Accept``, ``Expect``, ``Content-Encoding``, ``Content-Length`` for the early
413), builds a :class:`~clipper_core.query_frontend.wire.Request`, runs the handler in a task
and writes its :class:`~clipper_core.query_frontend.wire.Response` as one buffer. That replaced
aiohttp's low-level server, whose per-request machinery (header multidicts, stream readers,
payload writers, a task and several futures per request) cost more than the query itself on a
cache hit.

HTTP behaviour:

- keep-alive by default on HTTP/1.1, on request for HTTP/1.0; ``Connection: close`` honoured;
- pipelined requests are parsed as they come and answered in order, one handler at a time
  (reading pauses past ``MAX_PIPELINED`` waiting requests, and no handler starts while the
  transport's write buffer is full);
- chunked bodies are de-chunked by the parser; bodies are capped at ``max_request_bytes``
  while they arrive (413, see :mod:`~clipper_core.query_frontend.wire`);
- a malformed request (the parser refuses it, or a request line or header over
  ``MAX_FIELD_BYTES``, or a head over ``MAX_HEAD_BYTES``) is answered 400 with a JSON body, after
  the responses owed before it, and the connection is closed;
- an answer given before its request's body was read in full (413, 404 ...) says
  ``Connection: close``; the connection then half-closes and drops what the client still
  sends for up to ``LINGER_S``, so the client reads the answer instead of a reset;
- a client that disconnects (or half-closes) cancels its in-flight handler, so its queries
  leave their model queues (processor -> gateway.abandon) instead of being sent;
- no protocol upgrade: a request with ``Upgrade`` is answered as HTTP/1.1 and the connection
  then closes (llhttp hands over what follows its head, so a body it carries is not read).

Limits (the original's ``--timeout_request`` / ``--timeout_content``, core spec 2.1 and 7): each
connection has one deadline, re-armed as it moves through its phases:

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
import collections
import enum
import logging
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Final, cast

import httptools

from clipper_core.http_errors import ErrorAnswer, json_error_body
from clipper_core.query_frontend.wire import Request, Response, decode_path, error_answer_response, render
from clipper_core.rpc.stage_trace import TRACE

__all__ = ["ConnectionLimits", "Handler", "HttpConnection", "HttpServer"]

logger = logging.getLogger(__name__)

Handler = Callable[[Request], Awaitable[Response]]

OVER_CAPACITY_RETRY_AFTER_S: Final = 1
# A request line (or one header) longer than this is refused, as aiohttp did (8190 bytes).
MAX_FIELD_BYTES: Final = 8190
MAX_HEADERS: Final = 128
# The whole head of one request, however it is split into fields.
MAX_HEAD_BYTES: Final = 64 * 1024
# Requests parsed ahead of the one being answered before the connection stops reading.
MAX_PIPELINED: Final = 32
# How long a connection that answered before reading a whole body drains it before closing.
LINGER_S: Final = 5.0
# How long aclose lets in-flight requests finish before aborting their connections.
SHUTDOWN_GRACE_S: Final = 5.0

_OVER_CAPACITY_BODY: Final = json_error_body(
    "Service Unavailable", "The query frontend has reached its connection limit (--max_connections)"
)
_OVER_CAPACITY: Final = (
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
    + f"Content-Length: {len(_OVER_CAPACITY_BODY)}\r\n".encode()
    + f"Retry-After: {OVER_CAPACITY_RETRY_AFTER_S}\r\nConnection: close\r\n\r\n".encode()
    + _OVER_CAPACITY_BODY
)
_CONTINUE: Final = b"HTTP/1.1 100 Continue\r\n\r\n"
_METHODS: Final = {m.encode(): m for m in ("GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS")}
_INTERNAL_ERROR: Final = Response(json_error_body("Internal error", "the request handler failed"), status=500)


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


class _Malformed(Exception):
    """Raised from a parser callback: the request breaks one of our limits."""


@dataclass(slots=True, frozen=True)
class _Refusal:
    """A 400 owed for bytes that are not a request, answered in turn, then the connection closes."""

    cause: str


class HttpConnection(asyncio.Protocol):
    """One client connection: parser callbacks, the request queue, phases and their deadline."""

    def __init__(self, server: HttpServer) -> None:
        self._server = server
        self._limits = server.limits
        self._handler = server.handler
        self._max_body_bytes = server.max_body_bytes
        self._transport: asyncio.Transport | None = None
        self._parser = httptools.HttpRequestParser(self)
        self._pending: collections.deque[Request | _Refusal] = collections.deque()
        self._task: asyncio.Task[None] | None = None
        self._receiving: Request | None = None  # the request whose body is arriving
        self._is_counted = False
        self._is_reading_done = False  # no more requests are parsed on this connection
        self._is_read_paused = False
        self._is_write_paused = False
        self._is_shutting_down = False
        # The head of the request being parsed: only the headers the handlers use.
        self._is_in_head = False
        self._head_bytes = 0
        self._target = b""
        self._headers = 0
        self._accept = ""
        self._expect = ""
        self._content_encoding = ""
        self._content_length: int | None = None
        self._phase = _Phase.HEADERS
        self._deadline: asyncio.TimerHandle | None = None
        self._deadline_at = math.inf

    # -- asyncio.Protocol -----------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses; both have these methods.
        writable = cast(asyncio.Transport, transport)
        server = self._server
        if server.open_connections >= self._limits.max_connections:
            server.refused_connections += 1
            if server.refused_connections == 1 or server.refused_connections % 1000 == 0:
                logger.warning(
                    "At the connection limit (%d): refused %d connection(s) with 503 so far",
                    self._limits.max_connections, server.refused_connections,
                )
            self._is_reading_done = True
            writable.write(_OVER_CAPACITY)
            writable.close()
            return
        server.open_connections += 1
        server.connections.add(self)
        self._is_counted = True
        self._transport = writable
        self._enter(_Phase.HEADERS)

    def connection_lost(self, exc: BaseException | None) -> None:
        self._transport = None
        self._is_reading_done = True
        if not self._is_counted:
            return  # refused at the limit
        self._is_counted = False
        self._server.connection_closed(self)
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None
        if self._task is not None:
            # The client is gone: its handler's queries must not wait for a model.
            self._task.cancel()
            self._task = None
        self._pending.clear()

    def data_received(self, data: bytes) -> None:
        if TRACE is not None:
            TRACE.mark("http_data")
        if self._is_reading_done:
            return  # refused, closing, or draining a body nobody reads
        if self._phase is _Phase.IDLE:
            self._enter(_Phase.HEADERS)  # the next request has begun
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            # No protocol switch here: answer what was asked, then close.
            self._is_reading_done = True
            last = self._pending[-1] if self._pending else None
            if isinstance(last, Request):
                last.keep_alive = False
        except httptools.HttpParserError as exc:
            if not self._is_reading_done:  # llhttp refuses data after "Connection: close"
                cause = exc.__context__
                if cause is not None and not isinstance(cause, _Malformed):
                    # A callback of ours failed: our bug, not the client's request.
                    logger.error("HTTP request parsing failed", exc_info=cause)
                reason = cause if isinstance(cause, _Malformed) else exc
                self._refuse(str(reason) or type(reason).__name__)
        if self._is_in_head and not self._is_reading_done:
            # Only counts bytes while a head is incomplete; a chunk that also carried earlier
            # pipelined requests over-counts, which MAX_HEAD_BYTES leaves room for.
            self._head_bytes += len(data)
            if self._head_bytes > MAX_HEAD_BYTES:
                self._refuse(f"request head over {MAX_HEAD_BYTES} bytes")
        if self._task is None and self._pending:
            self._start_next()
        if len(self._pending) > MAX_PIPELINED and not self._is_read_paused and self._transport is not None:
            self._is_read_paused = True
            self._transport.pause_reading()

    def eof_received(self) -> bool | None:
        # Falsy: the transport closes, which cancels an in-flight handler (the client left).
        return None

    def pause_writing(self) -> None:
        self._is_write_paused = True

    def resume_writing(self) -> None:
        self._is_write_paused = False
        if self._task is None and self._pending:
            self._start_next()

    # -- httptools callbacks --------------------------------------------------------------------

    def on_message_begin(self) -> None:
        self._is_in_head = True
        self._head_bytes = 0
        self._target = b""
        self._headers = 0
        self._accept = self._expect = self._content_encoding = ""
        self._content_length = None

    def on_url(self, url: bytes) -> None:
        target = self._target = self._target + url
        if len(target) > MAX_FIELD_BYTES:
            raise _Malformed(f"request target over {MAX_FIELD_BYTES} bytes")

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers += 1
        if self._headers > MAX_HEADERS or len(name) + len(value) > MAX_FIELD_BYTES:
            raise _Malformed(f"more than {MAX_HEADERS} headers, or one over {MAX_FIELD_BYTES} bytes")
        key = name.lower()
        if key == b"content-length":
            try:
                self._content_length = int(value)  # llhttp has checked it already
            except ValueError:
                raise _Malformed("invalid Content-Length") from None
        elif key == b"accept":
            self._accept = value.decode("latin-1")
        elif key == b"expect":
            self._expect = value.decode("latin-1")
        elif key == b"content-encoding":
            self._content_encoding = value.decode("latin-1")

    def on_headers_complete(self) -> None:
        self._is_in_head = False
        parser = self._parser
        raw_method = parser.get_method()
        method = _METHODS.get(raw_method) or raw_method.decode("latin-1")
        is_http11 = parser.get_http_version() == "1.1"
        target = self._target
        if b"://" in target and not target.startswith(b"/"):
            # absolute-form ("http://host/path"): only the path routes
            target = httptools.parse_url(target).path or b""
        expect = self._expect
        request = Request(
            method,
            decode_path(target),
            is_http11=is_http11,
            keep_alive=parser.should_keep_alive() and not self._is_shutting_down,
            accept=self._accept,
            expect=expect,
            content_encoding=self._content_encoding,
            content_length=self._content_length,
            max_body_bytes=self._max_body_bytes,
            send_continue=(
                self._send_continue if is_http11 and expect.lower() == "100-continue" else None
            ),
        )
        self._receiving = request
        if not self._pending:
            self._enter(_Phase.CONTENT)
        self._pending.append(request)

    def on_body(self, body: bytes) -> None:
        if self._receiving is not None:
            self._receiving.feed(body)

    def on_message_complete(self) -> None:
        request = self._receiving
        if request is not None:
            self._receiving = None
            request.finish()
            if not request.keep_alive:
                self._is_reading_done = True

    # -- answering ------------------------------------------------------------------------------

    def _send_continue(self) -> None:
        if self._transport is not None:
            self._transport.write(_CONTINUE)

    def _refuse(self, cause: str) -> None:
        """Stop reading; a request whose body was arriving fails, else a 400 is owed in turn."""
        logger.debug("Malformed HTTP request: %s", cause)
        self._is_reading_done = True
        self._is_in_head = False
        receiving = self._receiving
        if receiving is not None:
            self._receiving = None
            receiving.fail(cause)  # its handler answers the 400
        else:
            self._pending.append(_Refusal(cause))

    def _start_next(self) -> None:
        if self._is_write_paused or self._transport is None:
            return  # resume_writing (or nothing, once closed) starts it
        request = self._pending[0]
        if isinstance(request, _Refusal):
            self._pending.clear()
            answer = ErrorAnswer(400, "Bad Request", f"Malformed HTTP request: {request.cause}")
            self._transport.write(render(error_answer_response(answer), is_http11=True, keep_alive=False))
            self._transport.close()
            return
        self._task = asyncio.get_running_loop().create_task(self._respond(request))

    # A Task per request (not the handler driven by hand until it first suspends): the Task
    # costs a few us, and without one ``asyncio.timeout`` (redis-py's, on a registry catch-up)
    # raises on the handler's first stretch.
    async def _respond(self, request: Request) -> None:
        try:
            response = await self._handler(request)
        except Exception:
            logger.exception("Unhandled error in %s %s", request.method, request.path)
            response = _INTERNAL_ERROR
        self._task = None
        self._write(request, response)

    def _write(self, request: Request, response: Response) -> None:
        transport = self._transport
        if transport is None:
            return
        # An answer before the whole body arrived cannot keep the connection: the rest of the
        # body would be read as the next request.
        keep_alive = request.keep_alive and request.is_complete and not self._is_shutting_down
        is_head = request.method == "HEAD"
        transport.write(render(response, is_http11=request.is_http11, keep_alive=keep_alive, is_head=is_head))
        if TRACE is not None:
            TRACE.mark("response_written")
        self._pending.popleft()
        if not keep_alive:
            self._close_after_answer(transport, request)
            return
        if self._pending:
            self._enter(_Phase.CONTENT)
            self._start_next()
        else:
            self._enter(_Phase.HEADERS if self._is_in_head else _Phase.IDLE)
        if self._is_read_paused and len(self._pending) <= MAX_PIPELINED // 2:
            self._is_read_paused = False
            transport.resume_reading()

    def _close_after_answer(self, transport: asyncio.Transport, request: Request) -> None:
        self._is_reading_done = True
        self._pending.clear()
        if request.is_complete or not transport.can_write_eof():
            transport.close()
            return
        # Half-close and drop what the client still sends (data_received ignores it now), so
        # that its unread body does not turn our answer into a connection reset.
        transport.write_eof()
        if self._is_read_paused:
            self._is_read_paused = False
            transport.resume_reading()
        asyncio.get_running_loop().call_later(LINGER_S, self.abort)

    def shut_down(self) -> None:
        """Stop serving: close now when idle, else after the answer in progress."""
        self._is_shutting_down = True
        if self._task is None and not self._pending and self._transport is not None:
            self._transport.close()

    def abort(self) -> None:
        """Drop the connection now (a no-op once it is closed)."""
        if self._transport is not None:
            self._transport.abort()

    # -- deadlines ------------------------------------------------------------------------------

    def _enter(self, phase: _Phase) -> None:
        # One timer per connection, re-armed lazily: a phase change only moves
        # ``_deadline_at``; the timer re-arms itself when it fires early. That keeps timer
        # churn off the per-request path.
        self._phase = phase
        limits = self._limits
        timeout_s = (
            limits.timeout_request_s
            if phase is _Phase.HEADERS
            else limits.timeout_content_s
            if phase is _Phase.CONTENT
            else limits.keepalive_timeout_s
        )
        if timeout_s <= 0 or self._transport is None:
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
        transport = self._transport
        if transport is None:
            return
        peer = transport.get_extra_info("peername")
        logger.debug("Closing a connection %s for too long (%s)", self._phase.value, peer)
        # abort, not close: close waits for unsent data a stalled client never reads.
        transport.abort()


class HttpServer:
    """Listens on one or more sockets and serves every connection with ``handler``.

    Args:
        handler: answers one request (it renders its own errors; an exception it lets out is
            logged and answered 500).
        limits: the per-phase timeouts and the connection cap.
        max_body_bytes: the largest request body read (413 above it).
    """

    def __init__(self, handler: Handler, limits: ConnectionLimits, max_body_bytes: int) -> None:
        self.handler = handler
        self.limits = limits
        self.max_body_bytes = max_body_bytes
        self.open_connections = 0
        self.refused_connections = 0
        self.connections: set[HttpConnection] = set()
        self._servers: list[asyncio.AbstractServer] = []
        self._all_closed: asyncio.Event | None = None

    def __call__(self) -> HttpConnection:
        return HttpConnection(self)

    async def listen(self, host: str, port: int, *, reuse_port: bool = False) -> int:
        """Start accepting on ``host:port``; returns the bound port (useful with port 0)."""
        server = await asyncio.get_running_loop().create_server(
            self, host, port, reuse_address=True, reuse_port=reuse_port or None
        )
        self._servers.append(server)
        return int(server.sockets[0].getsockname()[1])

    def connection_closed(self, connection: HttpConnection) -> None:
        self.open_connections -= 1
        self.connections.discard(connection)
        if not self.connections and self._all_closed is not None:
            self._all_closed.set()

    async def aclose(self) -> None:
        """Stop listening, let in-flight requests finish (``SHUTDOWN_GRACE_S``), then abort."""
        for server in self._servers:
            server.close()
        if self.connections:
            self._all_closed = asyncio.Event()
            for connection in list(self.connections):
                connection.shut_down()
            try:
                await asyncio.wait_for(self._all_closed.wait(), SHUTDOWN_GRACE_S)
            except TimeoutError:
                logger.warning("%d connection(s) still busy at shutdown: aborted", len(self.connections))
                for connection in list(self.connections):
                    connection.abort()
        for server in self._servers:
            await server.wait_closed()
        self._servers.clear()
