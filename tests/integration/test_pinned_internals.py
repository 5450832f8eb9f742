"""The library internals the query hot path leans on are still there and still behave.

pyproject.toml caps aiohttp below 4 and pyzmq below 28 because of these two shortcuts; when an
upgrade inside those bounds (or a raised bound) changes them, these tests say what to fix
instead of leaving a stack trace deep in the serving path.
"""

from __future__ import annotations

import asyncio
import inspect

import aiohttp
import pytest
import zmq
from aiohttp import web

from clipper_core.query_frontend.server import request_factory
from clipper_core.rpc import frames as rpc_frames

ZMQ_HINT = (
    "pyzmq {version} changed zmq.backend.Socket, which clipper_core/rpc/frames.py "
    "calls directly on the hot path (_backend_send/_backend_recv/_backend_get): {problem}. Adapt "
    "those calls (or go back to Socket.send/recv/getsockopt) and revisit the pyzmq bound in "
    "pyproject.toml."
)
AIOHTTP_HINT = (
    "aiohttp {version} changed what clipper_core/query_frontend/server.py's request_factory "
    "relies on (web.Server's request_factory arguments, web.BaseRequest's constructor): "
    "{problem}. Adapt request_factory and revisit the aiohttp bound in pyproject.toml."
)


def _zmq_problem(problem: str) -> str:
    return ZMQ_HINT.format(version=zmq.__version__, problem=problem)


def _aiohttp_problem(problem: str) -> str:
    return AIOHTTP_HINT.format(version=aiohttp.__version__, problem=problem)


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


def test_aiohttp_base_request_constructor_is_what_request_factory_calls() -> None:
    parameters = inspect.signature(web.BaseRequest.__init__).parameters
    positional = [name for name, p in parameters.items() if p.kind is p.POSITIONAL_OR_KEYWORD]
    assert positional[:7] == ["self", "message", "payload", "protocol", "payload_writer", "task", "loop"], (
        _aiohttp_problem(f"BaseRequest.__init__{tuple(parameters)}")
    )
    assert "client_max_size" in parameters, _aiohttp_problem("BaseRequest takes no client_max_size")
    assert "request_factory" in inspect.signature(web.Server.__init__).parameters, _aiohttp_problem(
        "web.Server takes no request_factory"
    )


async def test_a_hand_built_request_serves_and_enforces_the_body_limit() -> None:
    async def echo(request: web.BaseRequest) -> web.Response:
        return web.Response(body=await request.read())

    make_request = request_factory(asyncio.get_running_loop(), 16)
    server = web.Server(echo, request_factory=make_request, access_log=None)
    runner = web.ServerRunner(server, handle_signals=False)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        async with aiohttp.ClientSession() as session:
            async with session.post(f"http://127.0.0.1:{port}/", data=b"small") as small:
                assert (small.status, await small.read()) == (200, b"small"), _aiohttp_problem(
                    f"a hand-built request answered {small.status}"
                )
            async with session.post(f"http://127.0.0.1:{port}/", data=b"x" * 17) as large:
                assert large.status == 413, _aiohttp_problem(
                    f"client_max_size is not enforced any more (status {large.status})"
                )
    finally:
        await runner.cleanup()
