"""The library internals the query hot path leans on are still there and still behave.

pyproject.toml caps pyzmq below 28 and httptools below 1 because of these; when an upgrade
inside those bounds (or a raised bound) changes them, these tests say what to fix instead of
leaving a stack trace deep in the serving path.
"""

from __future__ import annotations

import inspect

import httptools
import pytest
import zmq

from clipper_core.rpc import frames as rpc_frames

ZMQ_HINT = (
    "pyzmq {version} changed zmq.backend.Socket, which clipper_core/rpc/frames.py "
    "calls directly on the hot path (_backend_send/_backend_recv/_backend_get): {problem}. Adapt "
    "those calls (or go back to Socket.send/recv/getsockopt) and revisit the pyzmq bound in "
    "pyproject.toml."
)
HTTPTOOLS_HINT = (
    "httptools {version} changed what clipper_core/query_frontend/connections.py's HttpConnection "
    "relies on (the parser's callbacks and methods, its exceptions): {problem}. Adapt "
    "HttpConnection and revisit the httptools bound in pyproject.toml."
)


def _zmq_problem(problem: str) -> str:
    return ZMQ_HINT.format(version=zmq.__version__, problem=problem)


def _httptools_problem(problem: str) -> str:
    return HTTPTOOLS_HINT.format(version=httptools.__version__, problem=problem)


def test_zmq_backend_socket_is_the_base_of_zmq_socket() -> None:
    backend = getattr(getattr(zmq, "backend", None), "Socket", None)
    assert backend is not None, _zmq_problem("zmq.backend.Socket is gone")
    assert issubclass(zmq.Socket, backend), _zmq_problem("zmq.Socket no longer derives from it")
    expected = {
        "send": ["self", "data", "flags", "copy"],
        "recv": ["self", "flags", "copy"],
        "get": ["self", "option"],
    }
    for name, leading in expected.items():
        parameters = list(inspect.signature(getattr(backend, name)).parameters)
        assert parameters[: len(leading)] == leading, _zmq_problem(f"{name}{tuple(parameters)}")


def test_zmq_backend_calls_carry_multipart_messages() -> None:
    context: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    sender, receiver = context.socket(zmq.PAIR), context.socket(zmq.PAIR)
    try:
        receiver.bind("inproc://pinned-internals")
        sender.connect("inproc://pinned-internals")
        frames = [b"", b"header", bytearray(b"x" * 100), memoryview(b"tail")]
        rpc_frames.send_frames(sender, frames, b"peer")
        assert rpc_frames.is_readable(receiver), _zmq_problem("EVENTS does not report POLLIN")
        received = rpc_frames.recv_frames(receiver)
        assert received == [b"peer", b"", b"header", b"x" * 100, b"tail"], _zmq_problem(repr(received))
        with pytest.raises(zmq.Again):
            rpc_frames.recv_frames(receiver)
    finally:
        sender.close(0)
        receiver.close(0)
        context.term()


class _Recorder:
    """The parser callbacks HttpConnection defines, recording what they are given."""

    def __init__(self, parser_box: list[httptools.HttpRequestParser]) -> None:
        self.events: list[tuple[str, object]] = []
        self._parser_box = parser_box

    def on_message_begin(self) -> None:
        self.events.append(("begin", None))

    def on_url(self, url: bytes) -> None:
        self.events.append(("url", url))

    def on_header(self, name: bytes, value: bytes) -> None:
        if name == b"X-Refuse":
            raise LookupError("refused by a callback")
        self.events.append(("header", (name, value)))

    def on_headers_complete(self) -> None:
        parser = self._parser_box[0]
        head = (parser.get_method(), parser.get_http_version(), parser.should_keep_alive())
        self.events.append(("head", head))

    def on_body(self, body: bytes) -> None:
        self.events.append(("body", body))

    def on_message_complete(self) -> None:
        self.events.append(("complete", None))


def _parser() -> tuple[httptools.HttpRequestParser, _Recorder]:
    box: list[httptools.HttpRequestParser] = []
    recorder = _Recorder(box)
    box.append(httptools.HttpRequestParser(recorder))
    return box[0], recorder


def test_httptools_calls_the_callbacks_with_whole_headers_and_de_chunked_bodies() -> None:
    parser, recorder = _parser()
    # Split mid-header: on_header must still get the whole name and value once.
    parser.feed_data(b"POST /a/predict?x=1 HTTP/1.1\r\nHost: x\r\nContent-Le")
    parser.feed_data(b"ngth: 2\r\n\r\nab")
    parser.feed_data(b"POST /b HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nc\r\n1\r\nd\r\n0\r\n\r\n")
    assert recorder.events == [
        ("begin", None),
        ("url", b"/a/predict?x=1"),
        ("header", (b"Host", b"x")),
        ("header", (b"Content-Length", b"2")),
        ("head", (b"POST", "1.1", True)),
        ("body", b"ab"),
        ("complete", None),
        ("begin", None),
        ("url", b"/b"),
        ("header", (b"Transfer-Encoding", b"chunked")),
        ("head", (b"POST", "1.0", False)),
        ("body", b"c"),
        ("body", b"d"),
        ("complete", None),
    ], _httptools_problem(repr(recorder.events))


def test_httptools_errors_are_what_the_connection_catches() -> None:
    parser, _ = _parser()
    with pytest.raises(httptools.HttpParserError):
        parser.feed_data(b"GARBAGE\r\n\r\n")
    # A callback's exception surfaces as the __context__ of a parser error (our own limits).
    parser, _ = _parser()
    with pytest.raises(httptools.HttpParserError) as refused:
        parser.feed_data(b"GET / HTTP/1.1\r\nX-Refuse: 1\r\n\r\n")
    assert isinstance(refused.value.__context__, LookupError), _httptools_problem(repr(refused.value))
    # Bytes after a "Connection: close" request are an error the connection ignores.
    parser, recorder = _parser()
    with pytest.raises(httptools.HttpParserError):
        parser.feed_data(b"GET / HTTP/1.1\r\nConnection: close\r\n\r\nGET / HTTP/1.1\r\n\r\n")
    assert recorder.events[-1] == ("complete", None), _httptools_problem(repr(recorder.events))
    assert issubclass(httptools.HttpParserUpgrade, Exception), _httptools_problem("HttpParserUpgrade")
    parsed = httptools.parse_url(b"http://h:1/a/predict?q")
    assert parsed.path == b"/a/predict", _httptools_problem("parse_url")
