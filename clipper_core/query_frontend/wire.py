"""HTTP/1.1 messages of the query frontend: the request a handler sees, the response it returns.

A :class:`Request` carries only what the handlers and the server use (method, decoded path,
version, keep-alive, ``Accept``, ``Expect``, ``Content-Encoding``) and its body, which the
connection (:mod:`clipper_core.query_frontend.connections`) feeds as it arrives and
:meth:`Request.read` returns once complete. The body is capped at ``max_request_bytes`` while it
arrives: past the cap (or a ``Content-Length`` over it) the chunks are dropped and ``read``
raises 413, so an oversize body is never buffered. ``read`` of a request that asked
``Expect: 100-continue`` sends the ``100 Continue`` the client waits for, and only then.

A :class:`Response` is a status, a body and a content type; :func:`render` writes it as one
bytes buffer: a pre-rendered status line and content-type line, ``Content-Length``, ``Date``
(rendered once per second), any extra header and ``Connection`` when the default does not apply.
Content types are what aiohttp sent before: ``application/json`` (no charset, as the original)
and ``text/plain; charset=utf-8``.
"""

from __future__ import annotations

import asyncio
import http
import time
import zlib
from collections.abc import Callable
from email.utils import formatdate
from typing import Final
from urllib.parse import unquote_to_bytes

from clipper_core.errors import BadRequest, ClipperError, PayloadTooLarge
from clipper_core.http_errors import JSON_CONTENT_TYPE, ErrorAnswer

__all__ = [
    "JSON",
    "TEXT",
    "Request",
    "Response",
    "decode_path",
    "error_answer_response",
    "render",
]

JSON: Final = JSON_CONTENT_TYPE
TEXT: Final = "text/plain; charset=utf-8"


class Request:
    """One request: what the handlers read of its head, and its body once complete."""

    __slots__ = (
        "_chunks",
        "_error",
        "_max_body_bytes",
        "_send_continue",
        "_size",
        "_waiter",
        "accept",
        "content_encoding",
        "expect",
        "is_complete",
        "is_http11",
        "keep_alive",
        "method",
        "path",
    )

    def __init__(
        self,
        method: str,
        path: str,
        *,
        is_http11: bool = True,
        keep_alive: bool = True,
        accept: str = "",
        expect: str = "",
        content_encoding: str = "",
        content_length: int | None = None,
        max_body_bytes: int,
        send_continue: Callable[[], None] | None = None,
    ) -> None:
        self.method = method
        self.path = path
        self.is_http11 = is_http11
        self.keep_alive = keep_alive
        self.accept = accept
        self.expect = expect
        self.content_encoding = content_encoding
        self.is_complete = False
        self._max_body_bytes = max_body_bytes
        self._chunks: list[bytes] = []
        self._size = 0
        self._error: ClipperError | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._send_continue = send_continue
        if content_length is not None and content_length > max_body_bytes:
            # Refused from the head alone: no 100 Continue, no body buffered.
            self._error = _too_large(max_body_bytes, f"actual body size {content_length}")

    # -- fed by the connection ----------------------------------------------------------------

    def feed(self, data: bytes) -> None:
        """A piece of the (de-chunked) body."""
        if self._error is not None:
            return
        size = self._size + len(data)
        if size > self._max_body_bytes:
            self._chunks.clear()
            self._error = _too_large(self._max_body_bytes, f"actual body size at least {size}")
            self._wake()
            return
        self._size = size
        self._chunks.append(data)

    def finish(self) -> None:
        """The whole body is in."""
        self.is_complete = True
        self._wake()

    def fail(self, cause: str) -> None:
        """The body cannot be read (the connection broke the HTTP framing)."""
        if self._error is None:
            self._error = BadRequest(f"Cannot read the request body: {cause}", "Bad Request")
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # -- used by the handlers -----------------------------------------------------------------

    async def read(self) -> bytes:
        """The body, decoded per ``Content-Encoding``.

        Raises:
            PayloadTooLarge: the body is over ``max_request_bytes`` (sent or decoded).
            BadRequest: the body cannot be read or decoded.
        """
        if not self.is_complete and self._error is None:
            send_continue, self._send_continue = self._send_continue, None
            if send_continue is not None:
                send_continue()
            self._waiter = asyncio.get_running_loop().create_future()
            await self._waiter
        if self._error is not None:
            raise self._error
        chunks = self._chunks
        body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        if self.content_encoding:
            return _decoded(body, self.content_encoding, self._max_body_bytes)
        return body


def _too_large(max_body_bytes: int, actual: str) -> PayloadTooLarge:
    return PayloadTooLarge(f"Maximum request body size {max_body_bytes} exceeded, {actual}")


def _decoded(body: bytes, encoding: str, max_body_bytes: int) -> bytes:
    """``gzip`` and ``deflate`` bodies, as aiohttp decoded them before; at most the body limit."""
    encoding = encoding.strip().lower()
    if encoding == "identity":
        return body
    if encoding in ("gzip", "x-gzip"):
        decoder = zlib.decompressobj(16 + zlib.MAX_WBITS)
    elif encoding == "deflate":
        # "deflate" is meant to be zlib-wrapped, but some clients send raw deflate: a zlib
        # stream's first byte names method 8 in its low nibble.
        is_zlib = bool(body) and body[0] & 0x0F == 8
        decoder = zlib.decompressobj(zlib.MAX_WBITS if is_zlib else -zlib.MAX_WBITS)
    else:
        raise BadRequest(f"Cannot read the request body: unsupported Content-Encoding {encoding!r}",
                         "Bad Request")
    try:
        decoded = decoder.decompress(body, max_body_bytes + 1)
    except zlib.error as exc:
        raise BadRequest(f"Cannot read the request body: {exc}", "Bad Request") from None
    if len(decoded) > max_body_bytes:
        raise _too_large(max_body_bytes, "once decoded")
    if not decoder.eof:
        raise BadRequest(f"Cannot read the request body: truncated {encoding} data", "Bad Request")
    return decoded


def decode_path(target: bytes) -> str:
    """The path of a request target (``/a/b?q`` -> ``/a/b``), percent-decoded as UTF-8."""
    path = target.partition(b"?")[0].partition(b"#")[0]
    if b"%" in path:
        path = unquote_to_bytes(path)
    # "replace": a path is echoed in 404 causes, which must encode as UTF-8.
    return path.decode("utf-8", "replace")


class Response:
    """A complete answer: status, body, content type and any extra ``(name, value)`` headers."""

    __slots__ = ("body", "content_type", "headers", "status")

    def __init__(
        self,
        body: bytes,
        *,
        status: int = 200,
        content_type: str = JSON,
        headers: tuple[tuple[str, str], ...] = (),
    ) -> None:
        self.body = body
        self.status = status
        self.content_type = content_type
        self.headers = headers


def error_answer_response(answer: ErrorAnswer) -> Response:
    """The JSON ``{"error","cause"}`` response of an answer (with its ``Allow`` for a 405)."""
    headers = (("Allow", answer.allow),) if answer.allow is not None else ()
    return Response(answer.body, status=answer.status, headers=headers)


def _status_line(version: bytes, status: int) -> bytes:
    try:
        reason = http.HTTPStatus(status).phrase
    except ValueError:
        reason = "Unknown"
    return b"%s %d %s\r\n" % (version, status, reason.encode())


_STATUS_LINES_11: Final = {s.value: _status_line(b"HTTP/1.1", s.value) for s in http.HTTPStatus}
_STATUS_LINES_10: Final = {s.value: _status_line(b"HTTP/1.0", s.value) for s in http.HTTPStatus}
_CONTENT_TYPE_LINES: Final[dict[str, bytes]] = {}
# Content types come from a handful of constants (and the metrics' Prometheus type), so the
# cache stays small; the bound only guards against a caller passing arbitrary values.
_CONTENT_TYPE_CACHE_SIZE: Final = 64
_CLOSE: Final = b"Connection: close\r\n"
_KEEP_ALIVE: Final = b"Connection: keep-alive\r\n"


class _DateLine:
    """``Date: <IMF-fixdate>\\r\\n``, rendered at most once per second."""

    __slots__ = ("_line", "_second")

    def __init__(self) -> None:
        self._second = -1
        self._line = b""

    def __call__(self) -> bytes:
        second = int(time.time())  # wall clock: it is what the header states
        if second != self._second:
            self._line = b"Date: %s\r\n" % formatdate(second, usegmt=True).encode()
            self._second = second
        return self._line


_date_line: Final = _DateLine()


def _content_type_line(content_type: str) -> bytes:
    line = _CONTENT_TYPE_LINES.get(content_type)
    if line is None:
        line = b"Content-Type: %s\r\n" % content_type.encode("latin-1")
        if len(_CONTENT_TYPE_LINES) < _CONTENT_TYPE_CACHE_SIZE:
            _CONTENT_TYPE_LINES[content_type] = line
    return line


def render(response: Response, *, is_http11: bool, keep_alive: bool, is_head: bool = False) -> bytes:
    """The status line, headers and body of ``response`` as one buffer.

    ``Connection`` is written only when it differs from the version's default (close for
    HTTP/1.0, keep-alive for HTTP/1.1), as aiohttp did. A HEAD answer keeps the
    ``Content-Length`` of the body it leaves out.
    """
    status = response.status
    lines = _STATUS_LINES_11 if is_http11 else _STATUS_LINES_10
    status_line = lines.get(status) or _status_line(b"HTTP/1.1" if is_http11 else b"HTTP/1.0", status)
    body = response.body
    parts = [
        status_line,
        _content_type_line(response.content_type),
        b"Content-Length: %d\r\n" % len(body),
        _date_line(),
    ]
    for name, value in response.headers:
        parts.append(b"%s: %s\r\n" % (name.encode("latin-1"), value.encode("latin-1")))
    if is_http11 != keep_alive:
        parts.append(_CLOSE if is_http11 else _KEEP_ALIVE)
    parts.append(b"\r\n")
    if not is_head:
        parts.append(body)
    return b"".join(parts)
