"""The R model container against a bare ZeroMQ ROUTER speaking through our codec: every frame it
sends must decode with ``clipper_core.rpc`` and be byte-identical to what the Python runtime
encodes (registration, responses, the ContainerError extension), it must keep serving after
model errors, send heartbeats while idle and reconnect with a new identity after silence."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import zmq

from clipper_core.rpc import (
    ContainerDraining,
    ContainerError,
    ContainerErrorKind,
    ContainerHeartbeat,
    HeartbeatType,
    InputType,
    NewContainer,
    PredictResponse,
    decode_from_container,
    encode_container_draining,
    encode_heartbeat_reply,
    encode_new_container,
    encode_predict_request,
    encode_predict_response,
)
from tests.helpers import REPO_ROOT, stop_process
from tests.r.conftest import run_r

pytestmark = pytest.mark.r

RECV_TIMEOUT_MS = 20_000
ACTIVITY_TIMEOUT_MS = 1500

# 13 anywhere -> an R error; 7 first -> one output too few; 99 first -> slow; else the lengths.
MODEL_CODE = """
fn <- function(inputs) {
  if (inputs[[1]][1] == 99L) Sys.sleep(1.5)
  if (any(vapply(inputs, function(x) 13L %in% x, logical(1)))) stop("unlucky thirteen")
  out <- lapply(inputs, function(x) as.character(length(x)))
  if (inputs[[1]][1] == 7L) out <- out[-1]
  out
}
Rclipper::serialize_model(fn, as.integer(c(1, 2)), commandArgs(TRUE)[1])
"""


class Frontend:
    """A ROUTER standing in for the query frontend."""

    def __init__(self) -> None:
        self.context = zmq.Context()
        self.socket = self.context.socket(zmq.ROUTER)
        self.socket.setsockopt(zmq.LINGER, 0)
        self.socket.setsockopt(zmq.RCVTIMEO, RECV_TIMEOUT_MS)
        self.port = self.socket.bind_to_random_port("tcp://127.0.0.1")

    def recv(self) -> tuple[bytes, list[bytes]]:
        identity, *frames = self.socket.recv_multipart()
        return identity, frames

    def send(self, identity: bytes, frames: list[bytes]) -> None:
        self.socket.send_multipart([identity, *frames])

    def recv_non_heartbeat(self) -> tuple[bytes, list[bytes]]:
        while True:
            identity, frames = self.recv()
            if not isinstance(decode_from_container(frames), ContainerHeartbeat):
                return identity, frames

    def close(self) -> None:
        self.socket.close()
        self.context.term()


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "model"
    script = tmp_path / "build.R"
    script.write_text(MODEL_CODE)
    subprocess.run(["Rscript", str(script), str(directory)], check=True, timeout=120)
    return directory


@pytest.fixture
def frontend() -> Iterator[Frontend]:
    fe = Frontend()
    yield fe
    fe.close()


def start_container(
    frontend: Frontend, model_dir: Path, tmp_path: Path, **extra: str
) -> subprocess.Popen[bytes]:
    env = dict(os.environ)
    env.update(
        PYTHONPATH=str(REPO_ROOT),
        CLIPPER_MODEL_NAME="r-model",
        CLIPPER_MODEL_VERSION="3",
        CLIPPER_MODEL_PATH=str(model_dir),
        CLIPPER_IP="127.0.0.1",
        CLIPPER_PORT=str(frontend.port),
        CLIPPER_INPUT_TYPE="ints",
        CLIPPER_READY_FILE=str(tmp_path / "ready"),
        CLIPPER_RPC_POLL_MS="200",
        CLIPPER_RPC_ACTIVITY_TIMEOUT_MS=str(ACTIVITY_TIMEOUT_MS),
    )
    env.update(extra)
    return subprocess.Popen([sys.executable, "-m", "containers.python.r_container"], env=env)


def ints(*values: int) -> bytes:
    return np.array(values, dtype="<i4").tobytes()


def register(frontend: Frontend) -> bytes:
    identity, frames = frontend.recv()
    assert isinstance(decode_from_container(frames), ContainerHeartbeat)
    frontend.send(identity, encode_heartbeat_reply(HeartbeatType.REQUEST_CONTAINER_METADATA))
    identity, frames = frontend.recv_non_heartbeat()
    expected = NewContainer("r-model", "3", InputType.INTS)
    assert decode_from_container(frames) == expected
    assert frames == encode_new_container(expected)
    return identity


def test_registers_answers_and_reports_errors_byte_for_byte(
    frontend: Frontend, model_dir: Path, tmp_path: Path
) -> None:
    process = start_container(frontend, model_dir, tmp_path)
    try:
        identity = register(frontend)
        assert (tmp_path / "ready").read_text() == "READY"

        message_id = 2**31 + 5  # above R's signed integers: echoed verbatim
        frontend.send(identity, encode_predict_request(message_id, InputType.INTS, [ints(1, 2, 3), ints(9)]))
        _, frames = frontend.recv_non_heartbeat()
        assert frames == encode_predict_response(PredictResponse(message_id, [b"3", b"1"]))

        frontend.send(identity, encode_predict_request(6, InputType.INTS, [ints(1, 13)]))
        reply = decode_from_container(frontend.recv_non_heartbeat()[1])
        assert isinstance(reply, ContainerError)
        assert (reply.message_id, reply.kind) == (6, ContainerErrorKind.MODEL_EXCEPTION)
        assert "unlucky thirteen" in reply.message

        frontend.send(identity, encode_predict_request(7, InputType.INTS, [ints(7), ints(1, 2)]))
        reply = decode_from_container(frontend.recv_non_heartbeat()[1])
        assert isinstance(reply, ContainerError)
        assert (reply.message_id, reply.kind) == (7, ContainerErrorKind.BAD_OUTPUT)
        assert "returned 1 outputs for 2 inputs" in reply.message

        frontend.send(identity, encode_predict_request(8, InputType.DOUBLES, [b"\0" * 8]))
        reply = decode_from_container(frontend.recv_non_heartbeat()[1])
        assert isinstance(reply, ContainerError) and reply.kind is ContainerErrorKind.BAD_INPUT

        # A malformed message (RPC version 2) is dropped; the container keeps serving.
        bad = encode_predict_request(9, InputType.INTS, [ints(1)])
        bad[1] = (2).to_bytes(4, "little")
        frontend.send(identity, bad)
        frontend.send(identity, encode_predict_request(10, InputType.INTS, [ints(5, 5, 5, 5, 5)]))
        _, frames = frontend.recv_non_heartbeat()
        assert frames == encode_predict_response(PredictResponse(10, [b"5"]))

        # An empty batch is answered at once with no outputs.
        frontend.send(identity, encode_predict_request(11, InputType.INTS, []))
        assert frontend.recv_non_heartbeat()[1] == encode_predict_response(PredictResponse(11, []))
        assert process.poll() is None
    finally:
        stop_process(process)


def test_heartbeats_while_idle_and_reconnects_after_silence(
    frontend: Frontend, model_dir: Path, tmp_path: Path
) -> None:
    process = start_container(frontend, model_dir, tmp_path)
    try:
        identity = register(frontend)
        # Connected and idle: a heartbeat per poll interval, each answered with keep-alive.
        beats = 0
        deadline = time.monotonic() + 5
        while beats < 3 and time.monotonic() < deadline:
            sender, frames = frontend.recv()
            if sender == identity and isinstance(decode_from_container(frames), ContainerHeartbeat):
                beats += 1
                frontend.send(identity, encode_heartbeat_reply(HeartbeatType.KEEP_ALIVE))
        assert beats == 3
        # Silence: after the activity timeout a new socket (a new identity) says hello.
        started = time.monotonic()
        while True:
            sender, frames = frontend.recv()
            if sender != identity:
                break
        assert isinstance(decode_from_container(frames), ContainerHeartbeat)
        assert time.monotonic() - started >= (ACTIVITY_TIMEOUT_MS / 1000) * 0.5
        frontend.send(sender, encode_heartbeat_reply(HeartbeatType.REQUEST_CONTAINER_METADATA))
        _, frames = frontend.recv_non_heartbeat()
        assert isinstance(decode_from_container(frames), NewContainer)
        frontend.send(sender, encode_predict_request(1, InputType.INTS, [ints(4, 4)]))
        assert frontend.recv_non_heartbeat()[1] == encode_predict_response(PredictResponse(1, [b"2"]))
    finally:
        stop_process(process)


def test_sigterm_drains_answers_what_comes_and_exits_when_let_go(
    frontend: Frontend, model_dir: Path, tmp_path: Path
) -> None:
    process = start_container(frontend, model_dir, tmp_path)
    try:
        identity = register(frontend)
        process.send_signal(signal.SIGTERM)
        _, frames = frontend.recv_non_heartbeat()
        assert frames == encode_container_draining()
        assert isinstance(decode_from_container(frames), ContainerDraining)
        # Still answering while draining; keep-alives do not end it.
        frontend.send(identity, encode_heartbeat_reply(HeartbeatType.KEEP_ALIVE))
        frontend.send(identity, encode_predict_request(3, InputType.INTS, [ints(1, 2)]))
        assert frontend.recv_non_heartbeat()[1] == encode_predict_response(PredictResponse(3, [b"2"]))
        assert process.poll() is None
        # The frontend lets it go: an unprompted RequestContainerMetadata. No re-registration.
        frontend.send(identity, encode_heartbeat_reply(HeartbeatType.REQUEST_CONTAINER_METADATA))
        assert process.wait(timeout=10) == 0
        frontend.socket.setsockopt(zmq.RCVTIMEO, 300)
        with pytest.raises(zmq.Again):
            frontend.recv_non_heartbeat()
    finally:
        stop_process(process)


def test_sigterm_during_a_prediction_answers_it_then_drains(
    frontend: Frontend, model_dir: Path, tmp_path: Path
) -> None:
    process = start_container(frontend, model_dir, tmp_path)
    try:
        identity = register(frontend)
        frontend.send(identity, encode_predict_request(4, InputType.INTS, [ints(99, 1, 1)]))
        time.sleep(0.5)  # inside the slow prediction
        process.send_signal(signal.SIGTERM)
        assert frontend.recv_non_heartbeat()[1] == encode_predict_response(PredictResponse(4, [b"3"]))
        assert frontend.recv_non_heartbeat()[1] == encode_container_draining()
        frontend.send(identity, encode_heartbeat_reply(HeartbeatType.REQUEST_CONTAINER_METADATA))
        assert process.wait(timeout=10) == 0
    finally:
        stop_process(process)


def test_sigterm_before_any_frontend_spoke_exits_at_once(
    frontend: Frontend, model_dir: Path, tmp_path: Path
) -> None:
    process = start_container(frontend, model_dir, tmp_path)
    try:
        frontend.recv()  # its first heartbeat, left unanswered
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
    finally:
        stop_process(process)


def test_configuration_errors_exit_with_one_line(frontend: Frontend, model_dir: Path, tmp_path: Path) -> None:
    for extra, text in (
        ({"CLIPPER_MODEL_NAME": ""}, "ERROR: CLIPPER_MODEL_NAME environment variable must be set"),
        (
            {"CLIPPER_INPUT_TYPE": "quaternions"},
            "ERROR: CLIPPER_INPUT_TYPE 'quaternions' is not a valid input type",
        ),
        ({"CLIPPER_MODEL_PATH": str(tmp_path / "absent")}, "ERROR: no model.rds in the model directory"),
    ):
        env = dict(os.environ, PYTHONPATH=str(REPO_ROOT), CLIPPER_MODEL_NAME="m", CLIPPER_MODEL_VERSION="1",
                   CLIPPER_MODEL_PATH=str(model_dir), CLIPPER_PORT=str(frontend.port))
        env.update(extra)
        result = subprocess.run([sys.executable, "-m", "containers.python.r_container"], env=env,
                                capture_output=True, text=True, timeout=60, check=False)
        assert result.returncode == 1, result.stderr
        assert text in result.stderr


def test_run_r_helper_reports_r_errors(tmp_path: Path) -> None:
    assert run_r('cat(Rclipper::infer_input_type(mtcars))', tmp_path) == "strings"
