"""The container runtime as a real process against a hand-driven ROUTER on 127.0.0.1:
registration, predictions per input type, errors that must not stop the loop, liveness."""

from __future__ import annotations

import json
import struct
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import zmq

from tests.helpers import free_port, stop_process
from tests.integration.cluster_processes import eventually
from tests.integration.container_harness import (  # noqa: F401 (fixtures)
    FAST_KEEPALIVE,
    HEARTBEAT,
    Container,
    FakeFrontend,
    error_of,
    frontend_fixture,
    launch_fixture,
    make_describe,
    make_failing,
    make_miscounting,
    outputs_of,
    u32,
    u64,
    zmq_context_fixture,
)

# ------------------------------------------------------------------ registration and predictions


def test_registration_handshake_and_ready_file(
    frontend: FakeFrontend, launch: Callable[..., Container]
) -> None:
    container = launch(make_describe(), input_type="d")
    identity, frames = frontend.recv()
    assert frames == [b"", b"\x02\x00\x00\x00"]
    frontend.send(identity, [b"", u32(3), u32(2), u32(1)])
    same, frames = frontend.recv()
    assert same == identity
    assert frames == [b"", b"\x00\x00\x00\x00", b"test-model", b"4", b"3", b"\x03\x00\x00\x00"]
    assert (container.model_dir / "ready.check").read_text() == "READY"


DOUBLE_ROWS = [struct.pack("<2d", 1.5, -2.0), struct.pack("<2d", 0.0, 4.25)]
PREDICT_CASES = {
    "doubles": (
        "doubles",
        3,
        DOUBLE_ROWS,
        [["ndarray", "float64", [1.5, -2.0]], ["ndarray", "float64", [0.0, 4.25]]],
    ),
    "doubles unequal": (
        "doubles",
        3,
        [struct.pack("<d", 1.0), struct.pack("<3d", 1.0, 2.0, 3.0)],
        [["list", "float64", [1.0]], ["list", "float64", [1.0, 2.0, 3.0]]],
    ),
    "ints": (
        "ints",
        1,
        [struct.pack("<3i", -7, 0, 2**31 - 1)],
        [["ndarray", "int32", [-7, 0, 2**31 - 1]]],
    ),
    "floats": (
        "floats",
        2,
        [struct.pack("<f", 0.5), struct.pack("<f", -8.0)],
        [["ndarray", "float32", [0.5]], ["ndarray", "float32", [-8.0]]],
    ),
    "bytes": (
        "bytes",
        0,
        [b"\x00\xff\x10", b"\x89PNG"],
        [["list", "bytes", "00ff10"], ["list", "bytes", "89504e47"]],
    ),
    "strings": (
        "strings",
        4,
        ["héllo".encode(), "日本語".encode(), b""],
        [["list", "str", "héllo"], ["list", "str", "日本語"], ["list", "str", ""]],
    ),
}


@pytest.mark.parametrize("case", list(PREDICT_CASES))
def test_predict_round_trip_per_input_type(
    case: str, frontend: FakeFrontend, launch: Callable[..., Container]
) -> None:
    input_type, code, payloads, expected = PREDICT_CASES[case]
    launch(make_describe(), input_type=input_type)
    identity = frontend.register()
    reply = frontend.predict(identity, 17, code, payloads)
    assert [json.loads(o) for o in outputs_of(reply, 17)] == expected


def test_empty_batch_gets_an_empty_response(frontend: FakeFrontend, launch: Callable[..., Container]) -> None:
    launch(make_failing(), input_type="strings")
    identity = frontend.register()
    assert outputs_of(frontend.predict(identity, 0, 4, []), 0) == []
    assert outputs_of(frontend.predict(identity, 1, 4, [b"a"]), 1) == ["A"]


def test_large_batch(frontend: FakeFrontend, launch: Callable[..., Container]) -> None:
    launch(make_failing(), input_type="strings")
    identity = frontend.register()
    payloads = [f"item {i}".encode() for i in range(5000)]
    outputs = outputs_of(frontend.predict(identity, 2, 4, payloads), 2)
    assert outputs == [f"ITEM {i}" for i in range(5000)]


@pytest.mark.parametrize(
    ("module", "expected"),
    [
        ("containers.python.noop_container", ["1.0", "1.0"]),
        ("containers.python.sum_container", ["3.0", "7.5"]),
    ],
)
def test_builtin_test_models(
    module: str, expected: list[str], frontend: FakeFrontend, launch: Callable[..., Container]
) -> None:
    launch(module=module, CLIPPER_MODEL_PATH="")
    identity = frontend.register()
    payloads = [struct.pack("<2d", 1.0, 2.0), struct.pack("<2d", 3.5, 4.0)]
    assert outputs_of(frontend.predict(identity, 5, 3, payloads), 5) == expected


# ------------------------------------------------------------------ errors never stop the loop


def test_model_exception_is_reported_and_serving_continues(
    frontend: FakeFrontend, launch: Callable[..., Container]
) -> None:
    container = launch(make_failing(), input_type="strings")
    identity = frontend.register()
    kind, text = error_of(frontend.predict(identity, 1, 4, [b"ok", b"boom"]), 1)
    assert kind == 0  # MODEL_EXCEPTION
    assert text == "ValueError: boom requested"
    assert outputs_of(frontend.predict(identity, 2, 4, [b"fine"]), 2) == ["FINE"]
    assert container.process.poll() is None
    assert "Traceback" in container.log and "boom requested" in container.log


def test_wrong_output_count_is_bad_output(frontend: FakeFrontend, launch: Callable[..., Container]) -> None:
    launch(make_miscounting(), input_type="strings")
    identity = frontend.register()
    kind, text = error_of(frontend.predict(identity, 8, 4, [b"a", b"b", b"c"]), 8)
    assert kind == 1  # BAD_OUTPUT
    assert text == "model returned 2 outputs for 3 inputs"
    assert outputs_of(frontend.predict(identity, 9, 4, [b"z"]), 9) == ["z"]


def test_input_type_mismatch_is_bad_input(frontend: FakeFrontend, launch: Callable[..., Container]) -> None:
    launch(make_describe(), input_type="doubles")
    identity = frontend.register()
    kind, text = error_of(frontend.predict(identity, 3, 4, [b"text"]), 3)
    assert kind == 2  # BAD_INPUT
    assert "strings" in text and "doubles" in text
    assert len(outputs_of(frontend.predict(identity, 4, 3, [struct.pack("<d", 1.0)]), 4)) == 1


def test_malformed_messages_are_dropped(frontend: FakeFrontend, launch: Callable[..., Container]) -> None:
    container = launch(make_failing(), input_type="strings")
    identity = frontend.register()
    for garbage in (
        [b"", u32(3), u32(9), u32(0)],  # unknown message type
        [b"", u32(2), u32(2), u32(0)],  # wrong RPC version
        [b"junk"],
        [b"", u32(3), u32(1), u32(5), u32(0), u64(24), struct.pack("<2Q", 4, 1)],  # header length lies
    ):
        frontend.send(identity, garbage)
    assert outputs_of(frontend.predict(identity, 6, 4, [b"still here"]), 6) == ["STILL HERE"]
    assert container.log.count("dropping a malformed message") == 4


# ------------------------------------------------------------------ liveness


def test_idle_container_sends_heartbeats(frontend: FakeFrontend, launch: Callable[..., Container]) -> None:
    launch(make_failing(), input_type="strings", **FAST_KEEPALIVE)
    identity = frontend.register()
    for _ in range(3):
        sender, frames = frontend.recv()
        assert (sender, frames) == (identity, HEARTBEAT)
        frontend.send(identity, [b"", u32(3), u32(2), u32(0)])  # KeepAlive: no new metadata
    assert outputs_of(frontend.predict(identity, 1, 4, [b"x"]), 1) == ["X"]


def test_container_started_before_the_frontend_registers_once_it_binds(
    zmq_context: zmq.Context, subprocess_env: dict[str, str], tmp_path: Path
) -> None:
    port = free_port()
    env = {
        **subprocess_env,
        "CLIPPER_MODEL_NAME": "early",
        "CLIPPER_MODEL_VERSION": "1",
        "CLIPPER_PORT": str(port),
        "CLIPPER_READY_FILE": "",
        **FAST_KEEPALIVE,
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "containers.python.noop_container"], env=env, stderr=subprocess.DEVNULL
    )
    try:
        time.sleep(1.0)
        late = FakeFrontend(zmq_context, port)
        try:
            identity = late.register()
            assert outputs_of(late.predict(identity, 1, 3, [struct.pack("<d", 2.0)]), 1) == ["1.0"]
        finally:
            late.close()
    finally:
        stop_process(process)


def test_reconnects_with_a_new_socket_after_the_frontend_goes_away(
    zmq_context: zmq.Context, frontend: FakeFrontend, launch: Callable[..., Container]
) -> None:
    container = launch(
        make_failing(), input_type="strings", CLIPPER_RPC_POLL_MS="100", CLIPPER_RPC_ACTIVITY_TIMEOUT_MS="800"
    )
    frontend.register()
    frontend.close()
    # Down for longer than the activity timeout: the old session gives up, closes its socket
    # and a second one starts.
    eventually(lambda: "session 2: connecting" in container.log or None, timeout_s=15, what="a new session")
    revived = FakeFrontend(zmq_context, frontend.port)
    try:
        identity, frames = revived.recv()
        assert frames == HEARTBEAT
        # A fresh session is not "connected" until it hears from us, so it sends exactly one
        # heartbeat; the old socket would have flushed its queued keep-alive heartbeats.
        assert revived.recv_nothing(0.6) == []
        revived.send(identity, [b"", u32(3), u32(2), u32(1)])
        _, frames = revived.recv()
        assert frames == [b"", u32(0), b"test-model", b"4", b"4", u32(3)]
        assert outputs_of(revived.predict(identity, 1, 4, [b"back"]), 1) == ["BACK"]
    finally:
        revived.close()
    assert "reconnecting with a new socket" in container.log
    assert "session 2: connecting" in container.log
