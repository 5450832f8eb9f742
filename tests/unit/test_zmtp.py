"""The sans-I/O ZMTP codec: golden bytes, handshakes, every split of the stream, errors.

Expected bytes are spelled out here by hand from RFC 23/37, never produced by the code under
test. The interop test against real libzmq sockets is tests/integration/test_zmtp_interop.py.
"""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clipper_core.errors import RpcProtocolError
from clipper_core.rpc.zmtp import (
    ZMTP_GREETING_BYTES,
    Message,
    Ready,
    ZmtpConnection,
    ZmtpError,
    ZmtpEvent,
)


def greeting(*, major: int = 3, minor: int = 0, mechanism: bytes = b"NULL", as_server: int = 0) -> bytes:
    return (
        b"\xff"
        + b"\0" * 8
        + b"\x7f"
        + bytes([major, minor])
        + mechanism.ljust(20, b"\0")
        + bytes([as_server])
        + b"\0" * 31
    )


def prop(name: bytes, value: bytes) -> bytes:
    return bytes([len(name)]) + name + struct.pack(">I", len(value)) + value


def command(name: bytes, data: bytes) -> bytes:
    body = bytes([len(name)]) + name + data
    return bytes([0x04, len(body)]) + body


def ready(socket_type: bytes, identity: bytes | None = None) -> bytes:
    data = prop(b"Socket-Type", socket_type)
    if identity is not None:
        data += prop(b"Identity", identity)
    return command(b"READY", data)


def peer_stream(socket_type: bytes = b"ROUTER", identity: bytes | None = None) -> bytes:
    """What a libzmq-like peer sends: greeting (3.1, as libzmq 4 does) + READY."""
    return greeting(minor=1) + ready(socket_type, identity)


def feed(conn: ZmtpConnection, chunks: list[bytes]) -> list[ZmtpEvent]:
    events: list[ZmtpEvent] = []
    for chunk in chunks:
        events += conn.receive_data(chunk)
    return events


def wire(conn: ZmtpConnection, frames: list[bytes]) -> bytes:
    return b"".join(bytes(b) for b in conn.encode(frames))


def connected_dealer(identity: bytes = b"") -> ZmtpConnection:
    conn = ZmtpConnection("DEALER", identity=identity, as_server=False)
    assert conn.receive_data(peer_stream()) == [Ready("ROUTER", b"")]
    conn.data_to_send()
    return conn


# ---------------------------------------------------------------------------- outgoing bytes


def test_dealer_sends_greeting_and_ready_with_identity() -> None:
    conn = ZmtpConnection("DEALER", identity=b"replica-7", as_server=False)
    expected = greeting() + ready(b"DEALER", b"replica-7")
    assert len(greeting()) == ZMTP_GREETING_BYTES
    assert conn.data_to_send() == expected
    assert conn.data_to_send() == b""
    assert not conn.ready


def test_router_server_sends_no_identity_and_sets_as_server() -> None:
    conn = ZmtpConnection("ROUTER", as_server=True)
    assert conn.data_to_send() == greeting(as_server=1) + ready(b"ROUTER")


def test_encode_sets_more_on_all_but_the_last_frame() -> None:
    conn = connected_dealer()
    assert wire(conn, [b"", b"ab", b"c"]) == b"\x01\x00" + b"\x01\x02ab" + b"\x00\x01c"
    assert wire(conn, [b"x"]) == b"\x00\x01x"


def test_encode_uses_long_sizes_above_255_and_does_not_copy_large_payloads() -> None:
    conn = connected_dealer()
    short = b"s" * 255
    medium = b"m" * 256
    large = bytearray(b"L" * 100_000)
    buffers = conn.encode([short, medium, large])
    assert b"".join(bytes(b) for b in buffers) == (
        b"\x01\xff"
        + short
        + b"\x03"
        + struct.pack(">Q", 256)
        + medium
        + b"\x02"
        + struct.pack(">Q", 100_000)
        + bytes(large)
    )
    assert any(b is large for b in buffers)


def test_encode_takes_memoryviews_by_byte_size() -> None:
    conn = connected_dealer()
    doubles = memoryview(struct.pack("<3d", 1.0, 2.0, 3.0)).cast("d")
    assert wire(conn, [doubles]) == b"\x00\x18" + doubles.tobytes()  # type: ignore[list-item]


def test_encode_refuses_an_empty_message() -> None:
    with pytest.raises(ValueError):
        connected_dealer().encode([])


@pytest.mark.parametrize(("socket_type", "identity"), [("PUB", b""), ("DEALER", b"x" * 256)])
def test_constructor_refuses_unknown_type_and_long_identity(socket_type: str, identity: bytes) -> None:
    with pytest.raises(ValueError):
        ZmtpConnection(socket_type, identity=identity, as_server=False)


# ---------------------------------------------------------------------------- handshake + messages


def test_router_learns_the_dealers_identity() -> None:
    router = ZmtpConnection("ROUTER", as_server=True)
    events = router.receive_data(peer_stream(b"DEALER", b"abc"))
    assert events == [Ready("DEALER", b"abc")]
    assert router.ready and router.peer_identity == b"abc" and router.peer_socket_type == "DEALER"


def test_property_names_are_case_insensitive() -> None:
    router = ZmtpConnection("ROUTER", as_server=True)
    stream = greeting() + command(b"READY", prop(b"socket-type", b"REQ") + prop(b"IDENTITY", b"q"))
    assert router.receive_data(stream) == [Ready("REQ", b"q")]


def test_two_connections_talk_to_each_other() -> None:
    dealer = ZmtpConnection("DEALER", identity=b"d1", as_server=False)
    router = ZmtpConnection("ROUTER", as_server=True)
    assert router.receive_data(dealer.data_to_send()) == [Ready("DEALER", b"d1")]
    assert dealer.receive_data(router.data_to_send()) == [Ready("ROUTER", b"")]
    frames = [b"", b"\x03\0\0\0", b"x" * 70_000, b"tail"]
    assert router.receive_data(wire(dealer, frames)) == [Message(frames)]
    assert dealer.receive_data(wire(router, [b"", b"ok"])) == [Message([b"", b"ok"])]


def test_events_come_in_order_with_messages_right_after_ready() -> None:
    dealer = ZmtpConnection("DEALER", as_server=False)
    stream = peer_stream() + b"\x01\x00\x00\x01a" + b"\x00\x01b"
    assert dealer.receive_data(stream) == [Ready("ROUTER", b""), Message([b"", b"a"]), Message([b"b"])]


def test_long_encoded_small_frames_are_accepted() -> None:
    dealer = connected_dealer()
    assert dealer.receive_data(b"\x02" + struct.pack(">Q", 3) + b"abc") == [Message([b"abc"])]


STREAM_FRAMES = [[b"", b"\x01\x02\x03\x04", b"p" * 300, b""], [b"solo"], [b"", b"q" * 5000]]


def full_stream() -> bytes:
    encoder = connected_dealer()
    return peer_stream(b"ROUTER") + b"".join(wire(encoder, frames) for frames in STREAM_FRAMES)


EXPECTED = [Ready("ROUTER", b""), *(Message(frames) for frames in STREAM_FRAMES)]


def test_every_two_way_split_gives_the_same_events() -> None:
    stream = full_stream()
    for cut in range(len(stream) + 1):
        conn = ZmtpConnection("DEALER", as_server=False)
        assert feed(conn, [stream[:cut], stream[cut:]]) == EXPECTED, cut


def test_every_three_way_split_around_the_headers_gives_the_same_events() -> None:
    stream = full_stream()
    head = ZMTP_GREETING_BYTES + len(ready(b"ROUTER")) + 20
    for first in range(head):
        for second in range(first, head, 3):
            conn = ZmtpConnection("DEALER", as_server=False)
            events = feed(conn, [stream[:first], stream[first:second], stream[second:]])
            assert events == EXPECTED, (first, second)


def test_one_byte_at_a_time_and_memoryview_chunks() -> None:
    stream = full_stream()
    conn = ZmtpConnection("DEALER", as_server=False)
    assert feed(conn, [stream[i : i + 1] for i in range(len(stream))]) == EXPECTED
    conn = ZmtpConnection("DEALER", as_server=False)
    view = memoryview(bytearray(stream))
    events: list[ZmtpEvent] = []
    for i in range(0, len(stream), 777):
        events += conn.receive_data(view[i : i + 777])
    assert events == EXPECTED


@pytest.mark.parametrize("chunk_bytes", [7, 1000, 20_000, 300_000])
def test_views_of_a_reused_receive_buffer_are_copied_out(chunk_bytes: int) -> None:
    frames = [b"", bytes(range(256)) * 400, b"small", b"z" * 70_000]
    stream = peer_stream() + wire(connected_dealer(), frames) * 2
    reused = bytearray(chunk_bytes)
    conn = ZmtpConnection("DEALER", as_server=False)
    events: list[ZmtpEvent] = []
    for i in range(0, len(stream), chunk_bytes):
        piece = stream[i : i + chunk_bytes]
        reused[: len(piece)] = piece
        events += conn.receive_data(memoryview(reused)[: len(piece)])
        reused[:] = b"\xee" * chunk_bytes  # what the next recv_into would do
    assert events == [Ready("ROUTER", b""), Message(frames), Message(frames)]
    assert all(type(f) is bytes for e in events if isinstance(e, Message) for f in e.frames)


@settings(max_examples=200, deadline=None)
@given(
    messages=st.lists(st.lists(st.binary(max_size=600), min_size=1, max_size=5), min_size=1, max_size=5),
    cuts=st.lists(st.integers(min_value=0, max_value=10_000), max_size=8),
)
def test_random_messages_survive_random_chunking(messages: list[list[bytes]], cuts: list[int]) -> None:
    stream = peer_stream() + b"".join(wire(connected_dealer(), m) for m in messages)
    points = sorted({c % (len(stream) + 1) for c in cuts})
    chunks = [stream[a:b] for a, b in zip([0, *points], [*points, len(stream)], strict=True)]
    conn = ZmtpConnection("DEALER", as_server=False)
    assert feed(conn, chunks) == [Ready("ROUTER", b""), *(Message(m) for m in messages)]


# ---------------------------------------------------------------------------- commands


def test_ping_is_answered_with_pong_echoing_the_context() -> None:
    dealer = connected_dealer()
    assert dealer.receive_data(command(b"PING", b"\x00\x64" + b"ctx")) == []
    assert dealer.data_to_send() == command(b"PONG", b"ctx")
    assert dealer.receive_data(command(b"PING", b"\x00\x00")) == []
    assert dealer.data_to_send() == command(b"PONG", b"")


def test_other_commands_are_ignored_even_inside_a_multipart_message() -> None:
    dealer = connected_dealer()
    stream = b"\x01\x01a" + command(b"PONG", b"x") + command(b"SUBSCRIBE", b"t") + b"\x00\x01b"
    assert dealer.receive_data(stream) == [Message([b"a", b"b"])]
    assert dealer.data_to_send() == b""


def test_a_long_command_frame_is_read() -> None:
    dealer = connected_dealer()
    body = b"\x04PING" + b"\x00\x01" + b"c" * 300
    assert dealer.receive_data(b"\x06" + struct.pack(">Q", len(body)) + body) == []
    assert dealer.data_to_send() == command(b"PONG", b"c" * 16)


# ---------------------------------------------------------------------------- errors

AFTER_HANDSHAKE = greeting() + ready(b"DEALER")


@pytest.mark.parametrize(
    ("stream", "match"),
    [
        (b"GET / HTTP/1.1\r\n", "did not send a ZMTP greeting"),
        (b"\xff" + b"\0" * 8 + b"\x00", "ZMTP 1.0"),
        (greeting(major=2)[:11], "ZMTP 2.x"),
        (greeting(major=1), "ZMTP 1.x"),
        (b"\xff" + b"\0" * 8 + b"\x01" + greeting()[10:], "0x7F"),
        (greeting(mechanism=b"CURVE"), "CURVE"),
        (greeting(mechanism=b"PLAIN"), "PLAIN"),
        (greeting() + ready(b"PUB"), "'PUB' cannot talk to a ROUTER"),
        (greeting() + command(b"READY", b""), "'' cannot talk"),
        (greeting() + b"\x00\x01x", "before the peer's READY"),
        (greeting() + command(b"HELLO", b""), "expected READY"),
        (greeting() + command(b"ERROR", b"\x06denied"), "refused the handshake: denied"),
        (greeting() + command(b"READY", b"\x0bSocket-Type\x00\x00\x00\x09ROUT"), "value truncated"),
        (greeting() + command(b"READY", b"\x0bSocket"), "metadata truncated"),
        (greeting() + b"\x04\x03\x05ab", "shorter than its name"),
        (greeting() + b"\x04\x00", "shorter than its name"),
        (AFTER_HANDSHAKE + b"\x05\x02\x01a", "command frame has the MORE flag"),
        (AFTER_HANDSHAKE + b"\x08\x01a", "reserved bits"),
        (AFTER_HANDSHAKE + b"\x02\xff" + b"\0" * 7 + b"a", "top bit"),
        (AFTER_HANDSHAKE + ready(b"DEALER"), "second READY"),
    ],
)
def test_protocol_violations_raise_zmtp_error(stream: bytes, match: str) -> None:
    router = ZmtpConnection("ROUTER", as_server=True)
    with pytest.raises(ZmtpError, match=match.replace(".", r"\.")):
        router.receive_data(stream)


def test_dealer_refuses_a_dealer_only_when_types_clash() -> None:
    # DEALER<->DEALER is allowed (libzmq allows it); DEALER<->REQ is not.
    assert ZmtpConnection("DEALER", as_server=False).receive_data(greeting() + ready(b"DEALER")) == [
        Ready("DEALER", b"")
    ]
    with pytest.raises(ZmtpError, match="'REQ' cannot talk to a DEALER"):
        ZmtpConnection("DEALER", as_server=False).receive_data(greeting() + ready(b"REQ"))


def test_garbage_is_refused_from_the_first_byte() -> None:
    with pytest.raises(ZmtpError):
        ZmtpConnection("DEALER", as_server=False).receive_data(b"H")


def test_a_failed_connection_stays_failed() -> None:
    dealer = connected_dealer()
    with pytest.raises(ZmtpError):
        dealer.receive_data(b"\x10\x00")
    with pytest.raises(ZmtpError):
        dealer.receive_data(b"\x00\x01a")


def test_zmtp_error_is_an_rpc_protocol_error() -> None:
    assert issubclass(ZmtpError, RpcProtocolError)


def test_message_at_the_limit_passes_and_one_byte_more_is_refused_before_its_body() -> None:
    dealer = ZmtpConnection("DEALER", as_server=False, max_message_bytes=600)
    dealer.receive_data(peer_stream())
    frames = [b"a" * 300, b"b" * 300]
    assert dealer.receive_data(wire(dealer, frames)) == [Message(frames)]
    # Only the header of a 301-byte frame after 300 bytes: refused without waiting for the body.
    assert dealer.receive_data(b"\x01\xff" + b"a" * 255 + b"\x01\x2d" + b"a" * 45) == []
    with pytest.raises(ZmtpError, match="larger than 600"):
        dealer.receive_data(b"\x02" + struct.pack(">Q", 301))


def test_oversize_command_is_refused() -> None:
    dealer = ZmtpConnection("DEALER", as_server=False, max_message_bytes=100)
    dealer.receive_data(peer_stream())
    with pytest.raises(ZmtpError, match="command larger than 100"):
        dealer.receive_data(b"\x06" + struct.pack(">Q", 1 << 40))
