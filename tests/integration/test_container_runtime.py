"""The container runtime as a real process against a hand-driven ROUTER on 127.0.0.1.

Frames sent to the container and expected from it are spelled with ``struct.pack`` here,
so these tests check the wire bytes, not just agreement with our own codec.
"""

from __future__ import annotations

import json
import struct
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import cloudpickle
import pytest
import zmq

from clipper_core.rpc import InputType
from containers.python.rpc import ModelContainerBase, RPCService
from containers.python.settings import ContainerSettings
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
        assert frames == HEARTBEAT
        self.send(identity, [b"", u32(3), u32(2), u32(1)])
        again, frames = self.recv()
        assert again == identity
        assert frames[:2] == [b"", u32(0)] and len(frames) == 6
        return identity

    def predict(self, identity: bytes, msg_id: int, input_type: int, payloads: list[bytes]) -> list[bytes]:
        header = struct.pack(f"<{2 + len(payloads)}Q", input_type, len(payloads), *map(len, payloads))
        self.send(identity, [b"", u32(3), u32(1), u32(msg_id), u32(0), u64(len(header)), header, *payloads])
        sender, reply = self.recv()
        assert sender == identity
        return reply

    def close(self) -> None:
        self.socket.close(linger=0)


@pytest.fixture
def zmq_context() -> Iterator[zmq.Context]:
    context = zmq.Context()
    yield context
    context.destroy(linger=0)


@pytest.fixture
def frontend(zmq_context: zmq.Context) -> Iterator[FakeFrontend]:
    fake = FakeFrontend(zmq_context, free_port())
    yield fake
    fake.close()


def outputs_of(reply: list[bytes], msg_id: int) -> list[str]:
    """Check a prediction response's layout (original-core 1.4 (c)) and return its outputs."""
    assert reply[:3] == [b"", u32(1), u32(msg_id)]
    n = struct.unpack("<Q", reply[4][:8])[0]
    assert reply[3] == u64(8 * (n + 1))
    assert reply[4] == struct.pack(f"<{n + 1}Q", n, *map(len, reply[5:]))
    return [o.decode("utf-8") for o in reply[5:]]


def error_of(reply: list[bytes], msg_id: int) -> tuple[int, str]:
    """Check our ContainerError layout and return (kind, text)."""
    assert len(reply) == 5
    assert reply[:3] == [b"", u32(3), u32(msg_id)]
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


@pytest.fixture
def launch(
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
    # Down for well over the activity timeout: the old session gives up and closes its socket.
    time.sleep(3.0)
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


# ------------------------------------------------------------------ start-up failures and exits


def run_to_exit(
    subprocess_env: dict[str, str], module: str, env: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in subprocess_env.items() if not k.startswith("CLIPPER_")}
    return subprocess.run(
        [sys.executable, "-m", module],
        env={**base, "CLIPPER_READY_FILE": "", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


CONFIG_ERRORS = {
    "no model name": (
        {"CLIPPER_MODEL_VERSION": "1"},
        "ERROR: CLIPPER_MODEL_NAME environment variable must be set",
    ),
    "no model version": (
        {"CLIPPER_MODEL_NAME": "m"},
        "ERROR: CLIPPER_MODEL_VERSION environment variable must be set",
    ),
    "no model path": (
        {"CLIPPER_MODEL_NAME": "m", "CLIPPER_MODEL_VERSION": "1"},
        "ERROR: CLIPPER_MODEL_PATH environment variable must be set",
    ),
    "unknown input type": (
        {
            "CLIPPER_MODEL_NAME": "m",
            "CLIPPER_MODEL_VERSION": "1",
            "CLIPPER_MODEL_PATH": "/x",
            "CLIPPER_INPUT_TYPE": "tensor",
        },
        "ERROR: CLIPPER_INPUT_TYPE 'tensor' is not a valid input type",
    ),
    "bad port": (
        {
            "CLIPPER_MODEL_NAME": "m",
            "CLIPPER_MODEL_VERSION": "1",
            "CLIPPER_MODEL_PATH": "/x",
            "CLIPPER_PORT": "seven",
        },
        "ERROR: CLIPPER_PORT must be an integer, got 'seven'",
    ),
}


@pytest.mark.parametrize("case", list(CONFIG_ERRORS))
def test_configuration_errors_exit_1_with_one_line(case: str, subprocess_env: dict[str, str]) -> None:
    env, message = CONFIG_ERRORS[case]
    result = run_to_exit(subprocess_env, "containers.python.closure_container", env)
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(message)


def test_noop_container_needs_no_model_path_but_a_name(subprocess_env: dict[str, str]) -> None:
    result = run_to_exit(subprocess_env, "containers.python.noop_container", {"CLIPPER_MODEL_VERSION": "1"})
    assert result.returncode == 1
    assert result.stderr == "ERROR: CLIPPER_MODEL_NAME environment variable must be set\n"


def test_unresolvable_clipper_ip_exits_1(subprocess_env: dict[str, str], tmp_path: Path) -> None:
    (tmp_path / "func.pkl").write_bytes(cloudpickle.dumps(make_failing()))
    env = {
        "CLIPPER_MODEL_NAME": "m",
        "CLIPPER_MODEL_VERSION": "1",
        "CLIPPER_MODEL_PATH": str(tmp_path),
        "CLIPPER_IP": "no-such-host.invalid",
    }
    result = run_to_exit(subprocess_env, "containers.python.closure_container", env)
    assert result.returncode == 1
    assert result.stderr.splitlines()[-1].startswith(
        "ERROR: cannot resolve CLIPPER_IP 'no-such-host.invalid'"
    )


def test_missing_func_pkl_exits_1(subprocess_env: dict[str, str], tmp_path: Path) -> None:
    env = {"CLIPPER_MODEL_NAME": "m", "CLIPPER_MODEL_VERSION": "1", "CLIPPER_MODEL_PATH": str(tmp_path)}
    result = run_to_exit(subprocess_env, "containers.python.closure_container", env)
    assert result.returncode == 1
    assert result.stderr.splitlines()[-1].startswith(f"ERROR: cannot load the model from {tmp_path}")


SHOUT_SOURCE = "def shout(xs):\n    return [x.upper() + '!' for x in xs]\n"


def _pickle_function_from_module(module_dir: Path, module_name: str) -> bytes:
    """Pickle a function of a real module BY REFERENCE, as cloudpickle does for importable code."""
    module_dir.mkdir(parents=True, exist_ok=True)
    (module_dir / f"{module_name}.py").write_text(SHOUT_SOURCE)
    sys.path.insert(0, str(module_dir))
    try:
        module = __import__(module_name)
        return cloudpickle.dumps(module.shout)
    finally:
        sys.path.remove(str(module_dir))
        sys.modules.pop(module_name, None)


def test_import_error_while_loading_exits_3_with_a_hint(
    subprocess_env: dict[str, str], tmp_path: Path
) -> None:
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    pickled = _pickle_function_from_module(tmp_path / "elsewhere", "clipper_missing_mod_xyz")
    (model_dir / "func.pkl").write_bytes(pickled)
    env = {
        "CLIPPER_MODEL_NAME": "m",
        "CLIPPER_MODEL_VERSION": "1",
        "CLIPPER_MODEL_PATH": str(model_dir),
        "CLIPPER_INPUT_TYPE": "strings",
    }
    result = run_to_exit(subprocess_env, "containers.python.closure_container", env)
    assert result.returncode == 3
    assert "clipper_missing_mod_xyz" in result.stderr
    assert "pkgs_to_install" in result.stderr


def test_modules_dir_supplies_modules_to_the_closure(
    tmp_path: Path, frontend: FakeFrontend, launch: Callable[..., Container]
) -> None:
    pickled = _pickle_function_from_module(tmp_path / "src", "clipper_shipped_mod_xyz")
    launch(pickled, input_type="strings", modules={"clipper_shipped_mod_xyz.py": SHOUT_SOURCE})
    identity = frontend.register()
    assert outputs_of(frontend.predict(identity, 1, 4, [b"hi"]), 1) == ["HI!"]


# ------------------------------------------------------------------ metrics and stopping


def test_metrics_are_served_when_enabled(frontend: FakeFrontend, launch: Callable[..., Container]) -> None:
    port = free_port()
    launch(
        make_failing(), input_type="strings", CLIPPER_METRICS_PORT=str(port), CLIPPER_METRICS_HOST="127.0.0.1"
    )
    identity = frontend.register()
    for msg_id in range(3):
        outputs_of(frontend.predict(identity, msg_id, 4, [b"a", b"b"]), msg_id)
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        body = response.read().decode()
    assert "clipper_mc_pred_total 3.0" in body
    for name in ("recv_time_ms", "parse_time_ms", "handle_time_ms", "end_to_end_latency_ms"):
        assert f"clipper_mc_{name}_count 3.0" in body


def test_sigterm_stops_the_container_cleanly(
    frontend: FakeFrontend, launch: Callable[..., Container]
) -> None:
    container = launch(make_failing(), input_type="strings")
    frontend.register()
    container.process.terminate()
    assert container.process.wait(timeout=10) == 0
    assert "stopped serving" in container.log


class _Upper(ModelContainerBase):
    def predict_strings(self, inputs: list[str]) -> list[str]:  # type: ignore[override]
        return [s.upper() for s in inputs]


def test_in_process_serve_stops_from_another_thread(frontend: FakeFrontend, tmp_path: Path) -> None:
    settings = ContainerSettings(
        model_name="inproc",
        model_version="1",
        input_type=InputType.STRINGS,
        clipper_port=frontend.port,
        ready_file=str(tmp_path / "ready"),
    )
    service = RPCService(read_config=False, settings=settings)
    thread = threading.Thread(target=service.serve, args=(_Upper(),), daemon=True)
    thread.start()
    identity = frontend.register()
    assert outputs_of(frontend.predict(identity, 1, 4, [b"abc"]), 1) == ["ABC"]
    service.stop()
    thread.join(timeout=10)
    assert not thread.is_alive()
