"""The query frontend's own HTTP/1.1 server (connections.py + wire.py) over raw loopback sockets.

A toy handler stands in for the query routes, so each HTTP behaviour is checked on its own:
pipelining, HTTP/1.0, ``Connection: close``, chunked and compressed bodies, the body limit
before buffering, ``Expect: 100-continue``, HEAD, ``Date``, malformed requests, and a client
disconnect cancelling its handler. The same behaviours through the real routes are in
test_query_frontend.py, test_query_frontend_robustness.py and test_connection_limits.py.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import re
from collections.abc import AsyncIterator

import pytest

from clipper_core.http_errors import answer_for_exception
from clipper_core.query_frontend.connections import ConnectionLimits, HttpServer
from clipper_core.query_frontend.wire import Request, Response, error_answer_response

MAX_BODY_BYTES = 64
LIMITS = ConnectionLimits(timeout_request_s=5, timeout_content_s=5, keepalive_timeout_s=5, max_connections=16)
DATE = re.compile(rb"\r\nDate: \w{3}, \d{2} \w{3} \d{4} \d{2}:\d{2}:\d{2} GMT\r\n")


class Toy:
    """Echoes method, path and body; ``/sleep/<s>`` waits first; ``/hang`` never answers."""

    def __init__(self) -> None:
        self.hanging = asyncio.Event()
        self.cancelled = asyncio.Event()

    async def __call__(self, request: Request) -> Response:
        try:
            if request.path.startswith("/sleep/"):
                await asyncio.sleep(float(request.path.rsplit("/", 1)[1]))
            if request.path == "/hang":
                self.hanging.set()
                try:
                    await asyncio.Event().wait()
                except asyncio.CancelledError:
                    self.cancelled.set()
                    raise
            body = b"" if request.method in ("GET", "HEAD") else await request.read()
            return Response(json.dumps({"m": request.method, "p": request.path, "b": body.decode()}).encode())
        except Exception as exc:
            return error_answer_response(answer_for_exception(request.method, request.path, exc))


@pytest.fixture
async def served() -> AsyncIterator[tuple[Toy, int]]:
    toy = Toy()
    server = HttpServer(toy, LIMITS, MAX_BODY_BYTES)
    port = await server.listen("127.0.0.1", 0)
    try:
        yield toy, port
    finally:
        await server.aclose()


async def _exchange(port: int, raw: bytes, *, read_until_closed: bool = True) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(raw)
    try:
        if read_until_closed:
            return await asyncio.wait_for(reader.read(), 10)
        return await asyncio.wait_for(reader.read(65536), 10)
    finally:
        writer.close()


def _responses(data: bytes) -> list[tuple[bytes, bytes]]:
    """(head, body) of each response in ``data`` (Content-Length framed)."""
    out = []
    while data:
        head, _, rest = data.partition(b"\r\n\r\n")
        length = int(re.search(rb"Content-Length: (\d+)", head).group(1))  # type: ignore[union-attr]
        out.append((head, rest[:length]))
        data = rest[length:]
    return out


async def test_pipelined_requests_are_answered_in_order(served: tuple[Toy, int]) -> None:
    _, port = served
    raw = (b"POST /sleep/0.2 HTTP/1.1\r\nContent-Length: 1\r\n\r\na"
           b"GET /second HTTP/1.1\r\n\r\n"
           b"POST /third HTTP/1.1\r\nContent-Length: 1\r\nConnection: close\r\n\r\nc")
    answers = _responses(await _exchange(port, raw))
    assert [json.loads(body)["p"] for _, body in answers] == ["/sleep/0.2", "/second", "/third"]
    assert b"Connection: close" in answers[2][0] and b"Connection" not in answers[0][0]


async def test_http_1_0_closes_unless_asked_to_keep_alive(served: tuple[Toy, int]) -> None:
    _, port = served
    closed = await _exchange(port, b"GET /a HTTP/1.0\r\n\r\n")
    assert closed.startswith(b"HTTP/1.0 200 OK\r\n") and b"Connection" not in closed
    kept = await _exchange(
        port, b"GET /a HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", read_until_closed=False
    )
    assert kept.startswith(b"HTTP/1.0 200 OK\r\n") and b"\r\nConnection: keep-alive\r\n" in kept


async def test_headers_date_content_type_and_head(served: tuple[Toy, int]) -> None:
    _, port = served
    data = await _exchange(port, b"GET /x HTTP/1.1\r\n\r\nHEAD /x HTTP/1.1\r\nConnection: close\r\n\r\n")
    get_head, _, rest = data.partition(b"\r\n\r\n")
    assert get_head.startswith(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n")
    assert DATE.search(get_head + b"\r\n")
    body = rest[: int(re.search(rb"Content-Length: (\d+)", get_head).group(1))]  # type: ignore[union-attr]
    assert json.loads(body)["m"] == "GET"
    head_answer = rest[len(body):]
    # HEAD: the Content-Length of the body left out.
    left_out = json.dumps({"m": "HEAD", "p": "/x", "b": ""}).encode()
    assert head_answer.endswith(b"\r\n\r\n") and f"Content-Length: {len(left_out)}".encode() in head_answer


async def test_chunked_and_gzip_bodies_are_read(served: tuple[Toy, int]) -> None:
    _, port = served
    chunked = await _exchange(
        port, b"POST /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
              b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n")
    assert json.loads(_responses(chunked)[0][1])["b"] == "abcde"
    packed = gzip.compress(b"hello")
    zipped = await _exchange(
        port, b"POST /z HTTP/1.1\r\nContent-Encoding: gzip\r\nConnection: close\r\n"
              + f"Content-Length: {len(packed)}\r\n\r\n".encode() + packed)
    assert json.loads(_responses(zipped)[0][1])["b"] == "hello"
    bomb = gzip.compress(b"x" * (MAX_BODY_BYTES + 1))
    refused = await _exchange(
        port, b"POST /z HTTP/1.1\r\nContent-Encoding: gzip\r\nConnection: close\r\n"
              + f"Content-Length: {len(bomb)}\r\n\r\n".encode() + bomb)
    assert refused.startswith(b"HTTP/1.1 413 ")


async def test_an_oversize_body_is_413_before_it_is_sent(served: tuple[Toy, int]) -> None:
    _, port = served
    # Expect: 100-continue with a Content-Length over the limit: 413 at once, no 100 Continue.
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"POST /big HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 1000000\r\n\r\n")
    answer = await asyncio.wait_for(reader.read(65536), 10)
    assert answer.startswith(b"HTTP/1.1 413 Request Entity Too Large\r\n"), answer
    assert b"Connection: close" in answer
    assert json.loads(answer.partition(b"\r\n\r\n")[2])["error"] == "Request Entity Too Large"
    # The client may send the body anyway: it is drained, then the server's side is closed.
    writer.write(b"x" * 100_000)
    assert await asyncio.wait_for(reader.read(), 10) == b""
    writer.close()
    # A chunked body is cut off as soon as it passes the limit.
    chunked = await _exchange(port, b"POST /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                                    + b"40\r\n" + b"x" * 64 + b"\r\n1\r\ny\r\n", read_until_closed=False)
    assert chunked.startswith(b"HTTP/1.1 413 ")


async def test_expect_100_continue_is_sent_when_the_body_is_wanted(served: tuple[Toy, int]) -> None:
    _, port = served
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"POST /e HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n")
    assert await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10) == b"HTTP/1.1 100 Continue\r\n\r\n"
    writer.write(b"ok")
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    assert head.startswith(b"HTTP/1.1 200 OK")
    writer.close()


async def test_malformed_requests_are_400_json_after_the_answers_owed(served: tuple[Toy, int]) -> None:
    _, port = served
    data = await _exchange(port, b"GET /first HTTP/1.1\r\n\r\nGARBAGE\r\n\r\n")
    (first_head, first_body), (bad_head, bad_body) = _responses(data)
    assert first_head.startswith(b"HTTP/1.1 200") and json.loads(first_body)["p"] == "/first"
    assert bad_head.startswith(b"HTTP/1.1 400 Bad Request") and b"Connection: close" in bad_head
    assert json.loads(bad_body)["error"] == "Bad Request"
    long_header = await _exchange(port, b"GET / HTTP/1.1\r\nX: " + b"a" * 9000 + b"\r\n\r\n")
    assert long_header.startswith(b"HTTP/1.1 400 ")
    broken_chunk = await _exchange(port, b"POST /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n")
    assert broken_chunk.startswith(b"HTTP/1.1 400 ")
    assert json.loads(_responses(broken_chunk)[0][1])["cause"].startswith("Cannot read the request body")


async def test_a_client_that_disconnects_cancels_its_handler(served: tuple[Toy, int]) -> None:
    toy, port = served
    _, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /hang HTTP/1.1\r\n\r\n")
    await asyncio.wait_for(toy.hanging.wait(), 10)
    writer.close()
    await asyncio.wait_for(toy.cancelled.wait(), 10)


async def test_an_upgrade_request_is_answered_as_http_1_1_then_closed(served: tuple[Toy, int]) -> None:
    _, port = served
    raw = b"GET /u HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n\x81\x00"
    ((head, body),) = _responses(await _exchange(port, raw))
    assert head.startswith(b"HTTP/1.1 200 OK") and b"Connection: close" in head
    assert json.loads(body)["p"] == "/u"
