"""Harness for container-runtime tests: a hand-driven ROUTER playing the query frontend,
a launcher for container processes with a deployer-style model directory, test models.

Frames are spelled with ``struct.pack`` here, so tests check wire bytes, not just
agreement with our own codec.
"""

from __future__ import annotations

import os
import struct
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import cloudpickle
import pytest
import zmq

from tests.helpers import free_port, stop_process

RECV_TIMEOUT_S = 10.0
FAST_KEEPALIVE = {"CLIPPER_RPC_POLL_MS": "150", "CLIPPER_RPC_ACTIVITY_TIMEOUT_MS": "5000"}


def u32(value: int) -> bytes:
    return struct.pack("<I", value)


def u64(value: int) -> bytes:
    return struct.pack("<Q", value)


HEARTBEAT = [b"", u32(2)]


class FakeFrontend:
    """A ROUTER socket playing the query frontend's side of RPC v3."""

    def __init__(self, context: zmq.Context, port: int) -> None:
        self.port = port
        self.socket = context.socket(zmq.ROUTER)
        self.socket.setsockopt(zmq.LINGER, 0)
        self.socket.bind(f"tcp://127.0.0.1:{port}")

    def recv(self, timeout_s: float = RECV_TIMEOUT_S) -> tuple[bytes, list[bytes]]:
        """(routing identity, frames after it); fails the test on timeout."""
        if not self.socket.poll(int(timeout_s * 1000)):
            raise AssertionError(f"no message from the container within {timeout_s} s")
        identity, *frames = self.socket.recv_multipart()
        return identity, frames

    def recv_nothing(self, duration_s: float) -> list[list[bytes]]:
        """Every message that arrives during ``duration_s``."""
        received = []
        deadline = time.monotonic() + duration_s
        while (left := deadline - time.monotonic()) > 0:
            if self.socket.poll(int(left * 1000) + 1):
                received.append(self.socket.recv_multipart()[1:])
        return received

    def send(self, identity: bytes, frames: list[bytes]) -> None:
        self.socket.send_multipart([identity, *frames])

    def register(self) -> bytes:
        """Heartbeat -> RequestContainerMetadata -> NewContainer; returns the identity."""
        identity, frames = self.recv()
        assert frames == HEARTBEAT, f"expected a heartbeat, got {frames!r}"
        self.send(identity, [b"", u32(3), u32(2), u32(1)])
        again, frames = self.recv()
        assert again == identity, "metadata came from another connection"
        assert frames[:2] == [b"", u32(0)] and len(frames) == 6, f"not a NewContainer: {frames!r}"
        return identity

    def predict(self, identity: bytes, msg_id: int, input_type: int, payloads: list[bytes]) -> list[bytes]:
        header = struct.pack(f"<{2 + len(payloads)}Q", input_type, len(payloads), *map(len, payloads))
        self.send(identity, [b"", u32(3), u32(1), u32(msg_id), u32(0), u64(len(header)), header, *payloads])
        while True:
            sender, reply = self.recv()
            assert sender == identity, "reply came from another connection"
            if reply != HEARTBEAT:
                return reply
            # An idle-timer heartbeat may cross our request on a loaded machine; answer it
            # as the frontend would and keep waiting for the reply.
            self.send(identity, [b"", u32(3), u32(2), u32(0)])

    def close(self) -> None:
        self.socket.close(linger=0)


@pytest.fixture(name="zmq_context")
def zmq_context_fixture() -> Iterator[zmq.Context]:
    context = zmq.Context()
    yield context
    context.destroy(linger=0)


@pytest.fixture(name="frontend")
def frontend_fixture(zmq_context: zmq.Context) -> Iterator[FakeFrontend]:
    fake = FakeFrontend(zmq_context, free_port())
    yield fake
    fake.close()


def zmq_thread_names(pid: int) -> list[str]:
    """libzmq's I/O and reaper threads in process ``pid`` (none when the runtime speaks ZMTP itself)."""
    tasks = Path(f"/proc/{pid}/task")
    names = ((tasks / tid / "comm").read_text().strip() for tid in os.listdir(tasks))
    return [name for name in names if name.startswith("ZMQbg")]


def outputs_of(reply: list[bytes], msg_id: int) -> list[str]:
    """Check a prediction response's layout (original-core 1.4 (c)) and return its outputs."""
    assert reply[:3] == [b"", u32(1), u32(msg_id)], f"not a response to {msg_id}: {reply[:5]!r}"
    n = struct.unpack("<Q", reply[4][:8])[0]
    assert reply[3] == u64(8 * (n + 1)), f"bad header length frame {reply[3]!r}"
    assert reply[4] == struct.pack(f"<{n + 1}Q", n, *map(len, reply[5:])), "header does not match outputs"
    return [o.decode("utf-8") for o in reply[5:]]


def error_of(reply: list[bytes], msg_id: int) -> tuple[int, str]:
    """Check our ContainerError layout and return (kind, text)."""
    assert len(reply) == 5, f"not a ContainerError: {reply[:5]!r}"
    assert reply[:3] == [b"", u32(3), u32(msg_id)], f"not an error for {msg_id}: {reply!r}"
    return struct.unpack("<I", reply[3])[0], reply[4].decode("utf-8")


class Container:
    """A container process with its stderr captured to a file."""

    def __init__(self, process: subprocess.Popen[bytes], log_path: Path, model_dir: Path) -> None:
        self.process = process
        self.log_path = log_path
        self.model_dir = model_dir

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@pytest.fixture(name="launch")
def launch_fixture(
    tmp_path: Path, subprocess_env: dict[str, str], frontend: FakeFrontend
) -> Iterator[Callable[..., Container]]:
    started: list[Container] = []

    def _launch(
        func: Callable[..., object] | bytes | None = None,
        *,
        input_type: str = "doubles",
        module: str = "containers.python.closure_container",
        modules: dict[str, str] | None = None,
        **env: str,
    ) -> Container:
        """Write the model directory as the deployers do, then start the container."""
        index = len(started)
        model_dir = tmp_path / f"model{index}"
        model_dir.mkdir()
        if func is not None:
            pickled = func if isinstance(func, bytes) else cloudpickle.dumps(func)
            (model_dir / "func.pkl").write_bytes(pickled)
        if modules:
            (model_dir / "modules").mkdir()
            for file_name, source in modules.items():
                (model_dir / "modules" / file_name).write_text(source)
        child_env = {
            **subprocess_env,
            "CLIPPER_MODEL_NAME": "test-model",
            "CLIPPER_MODEL_VERSION": "4",
            "CLIPPER_MODEL_PATH": str(model_dir),
            "CLIPPER_IP": "127.0.0.1",
            "CLIPPER_PORT": str(frontend.port),
            "CLIPPER_INPUT_TYPE": input_type,
            "CLIPPER_READY_FILE": str(model_dir / "ready.check"),
            **env,
        }
        log_path = tmp_path / f"container{index}.log"
        with open(log_path, "wb") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", module], env=child_env, stdout=log, stderr=subprocess.STDOUT
            )
        container = Container(process, log_path, model_dir)
        started.append(container)
        return container

    yield _launch
    for container in started:
        stop_process(container.process)


# ------------------------------------------------------------------ models (pickled by value)


def make_describe() -> Callable[[object], list[str]]:
    """A closure reporting how the runtime handed over each input."""

    def describe(inputs: object) -> list[str]:
        import json

        import numpy as np

        batch_kind = type(inputs).__name__
        out = []
        for x in inputs:  # type: ignore[attr-defined]
            if isinstance(x, np.ndarray):
                out.append(json.dumps([batch_kind, x.dtype.name, x.tolist()]))
            elif isinstance(x, bytes):
                out.append(json.dumps([batch_kind, "bytes", x.hex()]))
            else:
                out.append(json.dumps([batch_kind, type(x).__name__, x]))
        return out

    return describe


def make_failing() -> Callable[[list[str]], list[str]]:
    def failing(inputs: list[str]) -> list[str]:
        if "boom" in inputs:
            raise ValueError("boom requested")
        return [s.upper() for s in inputs]

    return failing


def make_miscounting() -> Callable[[list[str]], list[str]]:
    def miscounting(inputs: list[str]) -> list[str]:
        if len(inputs) > 1:
            return list(inputs[:-1])
        return list(inputs)

    return miscounting


def make_slow_upper() -> Callable[[list[str]], list[str]]:
    """Upper-cases its inputs; takes half a second when one of them is "slow"."""

    def slow_upper(inputs: list[str]) -> list[str]:
        import time

        if "slow" in inputs:
            time.sleep(0.5)
        return [s.upper() for s in inputs]

    return slow_upper
