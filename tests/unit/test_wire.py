"""query_frontend.wire: response rendering, path decoding and request bodies (no sockets)."""

from __future__ import annotations

import asyncio
import gzip
import re
import zlib

import pytest

from clipper_core.errors import BadRequest, PayloadTooLarge
from clipper_core.http_errors import method_not_allowed
from clipper_core.query_frontend.wire import (
    TEXT,
    Request,
    Response,
    decode_path,
    error_answer_response,
    render,
)

DATE = rb"Date: \w{3}, \d{2} \w{3} \d{4} \d{2}:\d{2}:\d{2} GMT\r\n"


def test_render_writes_one_buffer_with_the_default_connection_header_left_out() -> None:
    wire = render(Response(b'{"a":1}'), is_http11=True, keep_alive=True)
    assert re.fullmatch(
        rb'HTTP/1\.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 7\r\n' + DATE
        + rb'\r\n\{"a":1\}', wire), wire
    closing = render(Response(b"x", content_type=TEXT, status=400), is_http11=True, keep_alive=False)
    assert closing.startswith(b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\n")
    assert b"\r\nConnection: close\r\n" in closing
    old = render(Response(b"x"), is_http11=False, keep_alive=True)
    assert old.startswith(b"HTTP/1.0 200 OK\r\n") and b"\r\nConnection: keep-alive\r\n" in old
    assert b"Connection" not in render(Response(b"x"), is_http11=False, keep_alive=False)


def test_render_head_keeps_the_length_and_drops_the_body() -> None:
    wire = render(Response(b"12345"), is_http11=True, keep_alive=True, is_head=True)
    assert wire.endswith(b"\r\n\r\n") and b"Content-Length: 5\r\n" in wire and b"12345" not in wire


def test_error_answers_carry_their_allow_header() -> None:
    response = error_answer_response(method_not_allowed("GET", "/a/predict", ("POST",)))
    wire = render(response, is_http11=True, keep_alive=True)
    assert wire.startswith(b"HTTP/1.1 405 Method Not Allowed\r\n") and b"\r\nAllow: POST\r\n" in wire
    assert wire.endswith(b'{"error":"Method Not Allowed","cause":"Method GET is not allowed for '
                         b'/a/predict; allowed: POST"}')
    unknown = render(Response(b"", status=599), is_http11=True, keep_alive=True)
    assert unknown.startswith(b"HTTP/1.1 599 Unknown")


@pytest.mark.parametrize(
    ("target", "path"),
    [
        (b"/app/predict", "/app/predict"),
        (b"/app/predict?x=1#f", "/app/predict"),
        (b"/%C3%A9/predict", "/\u00e9/predict"),
        (b"/a%2Fb/predict", "/a/b/predict"),
        (b"/%ff/predict", "/\ufffd/predict"),
    ],
)
def test_decode_path(target: bytes, path: str) -> None:
    assert decode_path(target) == path


def _request(body: bytes, *, encoding: str = "", limit: int = 100, length: int | None = None) -> Request:
    request = Request("POST", "/a/predict", content_encoding=encoding, content_length=length,
                      max_body_bytes=limit)
    request.feed(body[:3])
    request.feed(body[3:])
    request.finish()
    return request


async def test_bodies_are_joined_and_decoded() -> None:
    assert await _request(b'{"input": [1]}').read() == b'{"input": [1]}'
    assert await _request(gzip.compress(b"hello"), encoding="gzip").read() == b"hello"
    assert await _request(zlib.compress(b"hello"), encoding="deflate").read() == b"hello"
    raw = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    assert await _request(raw.compress(b"hello") + raw.flush(), encoding="deflate").read() == b"hello"
    assert await _request(b"hello", encoding="identity").read() == b"hello"


@pytest.mark.parametrize(
    ("body", "encoding", "error"),
    [
        (b"x" * 101, "", PayloadTooLarge),
        (gzip.compress(b"x" * 101), "gzip", PayloadTooLarge),
        (b"not gzip", "gzip", BadRequest),
        (gzip.compress(b"hello")[:-4], "gzip", BadRequest),
        (b"{}", "br", BadRequest),
    ],
)
async def test_bodies_over_the_limit_or_undecodable_are_refused(
    body: bytes, encoding: str, error: type[Exception]
) -> None:
    with pytest.raises(error):
        await _request(body, encoding=encoding).read()


async def test_a_content_length_over_the_limit_is_refused_without_waiting_or_continue() -> None:
    sent: list[bool] = []
    request = Request(
        "POST", "/a", content_length=101, max_body_bytes=100, send_continue=lambda: sent.append(True)
    )
    with pytest.raises(PayloadTooLarge, match="actual body size 101"):
        await request.read()
    assert sent == []


async def test_read_sends_continue_once_and_waits_for_the_body() -> None:
    sent: list[bool] = []
    request = Request("POST", "/a", max_body_bytes=100, send_continue=lambda: sent.append(True))
    reading = asyncio.ensure_future(request.read())
    await asyncio.sleep(0)
    assert sent == [True] and not reading.done()
    request.feed(b"ok")
    request.finish()
    assert await reading == b"ok" and sent == [True]
    failed = Request("POST", "/a", max_body_bytes=100)
    reading = asyncio.ensure_future(failed.read())
    await asyncio.sleep(0)
    failed.fail("broken chunk")
    with pytest.raises(BadRequest, match="Cannot read the request body: broken chunk"):
        await reading
