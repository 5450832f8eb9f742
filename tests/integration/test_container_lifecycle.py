"""Container processes' start-up failures and exit codes, model directory loading,
metrics, and stopping (SIGTERM drains, or stop() for an in-process service)."""

from __future__ import annotations

import signal
import struct
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import cloudpickle
import pytest

from clipper_core.rpc import InputType
from containers.python.rpc import ModelContainerBase, RPCService
from containers.python.server import DRAIN_QUIET_S
from containers.python.settings import ContainerSettings
from tests.helpers import free_port
from tests.integration.container_harness import (  # noqa: F401 (fixtures)
    HEARTBEAT,
    Container,
    FakeFrontend,
    frontend_fixture,
    launch_fixture,
    make_failing,
    make_slow_upper,
    outputs_of,
    u32,
    zmq_context_fixture,
)

DRAINING = [b"", u32(4)]
KEEP_ALIVE = [b"", u32(3), u32(2), u32(0)]
REQUEST_METADATA = [b"", u32(3), u32(2), u32(1)]

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


def _next_non_heartbeat(frontend: FakeFrontend, identity: bytes) -> list[bytes]:
    """The container's next message other than a heartbeat (those are answered KeepAlive)."""
    while True:
        sender, frames = frontend.recv()
        assert sender == identity
        if frames != HEARTBEAT:
            return frames
        frontend.send(identity, KEEP_ALIVE)


def test_sigterm_finishes_the_batch_in_hand_then_drains(
    frontend: FakeFrontend, launch: Callable[..., Container]
) -> None:
    """A frontend that ignores the draining message (as the original does) keeps getting
    answers; the container exits once no request came for DRAIN_QUIET_S."""
    container = launch(make_slow_upper(), input_type="strings")
    identity = frontend.register()
    frontend.send(identity, [b"", u32(3), u32(1), u32(7), u32(0), *_strings_request([b"slow"])])
    time.sleep(0.2)  # the model is sleeping on the batch
    container.process.send_signal(signal.SIGTERM)
    assert outputs_of(_next_non_heartbeat(frontend, identity), 7) == ["SLOW"]
    assert _next_non_heartbeat(frontend, identity) == DRAINING
    assert outputs_of(frontend.predict(identity, 8, 4, [b"after"]), 8) == ["AFTER"]  # still answers
    answered = time.monotonic()
    while container.process.poll() is None:
        assert time.monotonic() - answered < DRAIN_QUIET_S + 5, "the container did not exit"
        if frontend.socket.poll(50):
            sender, frames = frontend.recv()
            assert frames == HEARTBEAT, frames  # never registers again, never anything else
            frontend.send(sender, KEEP_ALIVE)
    assert time.monotonic() - answered >= DRAIN_QUIET_S - 0.1
    assert container.process.returncode == 0
    assert "drained: no request" in container.log
    assert "stopped serving" in container.log


def test_draining_container_exits_as_soon_as_the_frontend_lets_it_go(
    frontend: FakeFrontend, launch: Callable[..., Container]
) -> None:
    container = launch(make_failing(), input_type="strings")
    identity = frontend.register()
    container.process.send_signal(signal.SIGTERM)
    assert _next_non_heartbeat(frontend, identity) == DRAINING
    sender, frames = frontend.recv()
    assert frames == HEARTBEAT
    frontend.send(sender, REQUEST_METADATA)  # what our frontend answers once it forgot us
    assert container.process.wait(timeout=10) == 0
    assert "drained: the frontend has let this container go" in container.log  # not the quiet grace
    assert all(f == HEARTBEAT for f in frontend.recv_nothing(0.2)), "it registered again"


def test_sigterm_before_any_frontend_answered_exits_at_once(
    frontend: FakeFrontend, launch: Callable[..., Container]
) -> None:
    container = launch(make_failing(), input_type="strings")
    frontend.recv()  # its first heartbeat, never answered
    container.process.send_signal(signal.SIGTERM)
    assert container.process.wait(timeout=10) == 0
    assert "draining" not in container.log  # nobody to drain from: it stopped at once
    assert "stopped serving" in container.log


def _strings_request(payloads: list[bytes]) -> list[bytes]:
    header = struct.pack(f"<{2 + len(payloads)}Q", 4, len(payloads), *map(len, payloads))
    return [struct.pack("<Q", len(header)), header, *payloads]


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
