"""The ``clipper`` command (issue 18.1), run as a real subprocess against a real local cluster
it starts itself: start, deploy from a file, predict, scale, roll back a version, status --json,
logs, one-line errors with exit status 1, usage errors with 2, stop.

One cluster for the module (free ports, a temporary CLIPPER_HOME); the last test stops it.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import REPO_ROOT, free_port, tiny_wheel

SUM_MODEL = REPO_ROOT / "examples" / "cli" / "sum_model.py"
COMMAND_TIMEOUT_S = 120
PROGRESS = re.compile(r"\d\d:\d\d:\d\d INFO ")


@dataclass
class Cli:
    env: dict[str, str]
    cluster: str
    home: Path
    start: subprocess.CompletedProcess[str]

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [sys.executable, "-m", "clipper_admin.cli", "--cluster", self.cluster, *args],
            env=self.env, capture_output=True, text=True, timeout=COMMAND_TIMEOUT_S,
        )
        if check:
            assert done.returncode == 0, f"clipper {' '.join(args)}: {done.returncode}\n{done.stderr}"
        return done

    def json(self, *args: str) -> Any:
        return json.loads(self.run(*args, "--json").stdout)


def _error_lines(done: subprocess.CompletedProcess[str]) -> list[str]:
    """stderr without the INFO progress lines (which commands that change the cluster print)."""
    return [line for line in done.stderr.splitlines() if line.strip() and not PROGRESS.match(line)]


@pytest.fixture(scope="module")
def cli(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cli]:
    home = tmp_path_factory.mktemp("clipper_home")
    env = {**os.environ, "CLIPPER_HOME": str(home), "COLUMNS": "200",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))}
    env.pop("CLIPPER_MANAGER", None)
    cluster = f"cli-{uuid.uuid4().hex[:8]}"
    placeholder = subprocess.CompletedProcess[str]([], 0, "", "")
    cli = Cli(env, cluster, home, placeholder)
    cli.start = cli.run(
        "start", "--json", "--query-port", str(free_port()), "--management-port", str(free_port()),
        "--rpc-port", str(free_port()), "--redis-port", str(free_port()),
    )
    try:
        yield cli
    finally:
        cli.run("stop", check=False)


def test_help_documents_exit_codes_and_usage_errors_exit_2() -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "COLUMNS": "200"}
    shown = subprocess.run([sys.executable, "-m", "clipper_admin.cli", "--help"], env=env,
                           capture_output=True, text=True, timeout=60)
    assert shown.returncode == 0
    text = " ".join(shown.stdout.split())
    assert "Exit status: 0 success; 1 the operation failed" in text and "2 bad usage" in text
    for command in ("start", "stop", "status", "deploy", "predict", "link", "unlink", "scale",
                    "version", "logs", "apps", "models", "register", "policy", "feedback"):
        assert f" {command} " in text
    unknown = subprocess.run([sys.executable, "-m", "clipper_admin.cli", "no-such-command"], env=env,
                             capture_output=True, text=True, timeout=60)
    assert unknown.returncode == 2 and "No such command" in unknown.stderr


def test_pyproject_declares_the_console_script() -> None:
    pyproject = (REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8")
    assert 'clipper = "clipper_admin.cli:main"' in pyproject


def test_start_prints_addresses_and_its_progress(cli: Cli) -> None:
    started = json.loads(cli.start.stdout)
    assert started["cluster"] == cli.cluster and started["manager"] == "local"
    assert started["query"].startswith("127.0.0.1:") and started["management"].startswith("127.0.0.1:")
    # Not a terminal: progress comes as log lines on stderr, naming what is awaited.
    assert "Waiting for the query frontend to answer http://" in cli.start.stderr
    assert "The query frontend is ready after" in cli.start.stderr
    assert (cli.home / "clusters" / cli.cluster / "cluster.json").is_file()


def test_deploy_from_a_file_then_predict(cli: Cli) -> None:
    deployed = cli.run("deploy", f"{SUM_MODEL}:predict", "--name", "sum", "--input-type", "doubles",
                       "--app", "adder", "--json")
    result = json.loads(deployed.stdout)
    assert result["model"] == "sum" and result["version"] == "1" and result["app"] == "adder"
    assert "Waiting for model replica sum_1-" in deployed.stderr
    answer = cli.json("predict", "adder", "--input", "[1.0, 2.0]")
    assert answer["output"] == 3.0 and answer["default"] is False
    batch = cli.json("predict", "adder", "--batch", "[[1.0, 2.0], [10.0]]")
    assert [p["output"] for p in batch["batch_predictions"]] == [3.0, 10.0]
    table = cli.run("predict", "adder", "--input", "[4.0, 5.0]").stdout
    assert "9.0" in table and "query id" in table


def _version(status: dict[str, Any], model: str, version: str) -> dict[str, Any]:
    found = next(m for m in status["models"] if m["name"] == model)
    return next(v for v in found["versions"] if v["version"] == version)


def test_status_json_lists_apps_models_and_replicas(cli: Cli) -> None:
    status = cli.json("status")
    assert status["cluster"] == cli.cluster
    assert status["addresses"]["query"] == json.loads(cli.start.stdout)["query"]
    app = next(a for a in status["apps"] if a["name"] == "adder")
    assert app == {"name": "adder", "input_type": "doubles", "policy": "DefaultOutputSelectionPolicy",
                   "latency_slo_micros": 3000000, "default_output": "None", "linked_models": ["sum"]}
    model = next(m for m in status["models"] if m["name"] == "sum")
    assert model["current_version"] == "1" and model["input_type"] == "doubles"
    version = _version(status, "sum", "1")
    assert version["replicas"] == 1 and [r["state"] for r in version["replica_states"]] == ["ready"]
    human = cli.run("status").stdout
    assert "adder" in human and "DefaultOutputSelectionPolicy" in human and "1 ready" in human
    assert cli.json("apps")[0]["name"] == "adder"
    assert cli.json("models")[0]["versions"][0]["version"] == "1"


def _wait_ready(cli: Cli, model: str, version: str, replicas: int) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    while True:
        found = _version(cli.json("status"), model, version)
        states = [r["state"] for r in found["replica_states"]]
        if states == ["ready"] * replicas or time.monotonic() > deadline:
            return found
        time.sleep(0.3)


def test_scale_up_and_down(cli: Cli) -> None:
    scaled = cli.json("scale", "sum", "2")
    assert scaled == {"model": "sum", "version": "1", "replicas": 2}
    assert _wait_ready(cli, "sum", "1", 2)["replicas"] == 2
    assert cli.json("scale", "sum", "1")["replicas"] == 1
    assert _wait_ready(cli, "sum", "1", 1)["replicas"] == 1


def test_new_version_then_roll_back(cli: Cli) -> None:
    cli.run("deploy", f"{SUM_MODEL}:predict_double", "--name", "sum", "--version", "2",
            "--input-type", "doubles")
    assert cli.json("predict", "adder", "--input", "[1.0, 2.0]")["output"] == 6.0
    rolled = cli.json("version", "sum", "1")
    assert rolled == {"model": "sum", "version": "1", "previous_version": "2"}
    assert cli.json("predict", "adder", "--input", "[1.0, 2.0]")["output"] == 3.0
    status = cli.json("status")
    assert next(m for m in status["models"] if m["name"] == "sum")["current_version"] == "1"
    assert _version(status, "sum", "2")["is_current"] is False


def test_deploy_with_pkgs_installs_them_for_the_model(cli: Cli, tmp_path: Path) -> None:
    wheel = tiny_wheel(tmp_path, "cli_tiny_pkg", "from the wheel")
    model_file = tmp_path / "uses_pkg.py"
    # Imported inside the function: the package is the model's, not this interpreter's.
    model_file.write_text(
        "def predict(inputs):\n    import cli_tiny_pkg\n    return [cli_tiny_pkg.VALUE for _ in inputs]\n",
        encoding="utf-8",
    )
    cli.run("deploy", f"{model_file}:predict", "--name", "pkg-model", "--input-type", "strings",
            "--app", "pkg-app", "--pkgs", str(wheel))
    assert cli.json("predict", "pkg-app", "--input", '"x"')["output"] == "from the wheel"


def test_link_and_unlink(cli: Cli) -> None:
    cli.run("deploy", f"{SUM_MODEL}:predict", "--name", "other", "--input-type", "doubles",
            "--app", "spare")
    assert cli.json("unlink", "spare", "other") == {"app": "spare", "model": "other", "linked": False}
    assert next(a for a in cli.json("apps") if a["name"] == "spare")["linked_models"] == []
    cli.run("link", "spare", "other")
    assert next(a for a in cli.json("apps") if a["name"] == "spare")["linked_models"] == ["other"]


def test_an_app_on_a_selection_policy_shows_its_weights_and_learns_from_feedback(cli: Cli) -> None:
    registered = cli.json("register", "chooser", "--input-type", "doubles", "--policy", "exp4",
                          "--threshold", "0.6")
    assert registered == {"name": "chooser", "input_type": "doubles", "policy": "exp4",
                          "latency_slo_micros": 3000000, "default_output": "None", "linked_models": [],
                          "selection_weights": {}, "feedback_rounds": 0, "confidence_threshold": 0.6}
    cli.run("link", "chooser", "sum")
    cli.run("link", "chooser", "other")  # a second model: allowed on exp4
    answer = cli.json("predict", "chooser", "--input", "[1.0, 2.0]")
    assert answer["output"] == 3.0 and answer["confidence"] == 1.0 and answer["members_answered"] == 2
    assert "members answered" in cli.run("predict", "chooser", "--input", "[1.0, 2.0]").stdout
    taught = cli.json("feedback", "chooser", "--input", "[1.0, 2.0]", "--label", "3")
    assert taught == {"app": "chooser", "uid": 0, "accepted": True, "reply": "Feedback received? 1"}
    entry = next(a for a in cli.json("apps") if a["name"] == "chooser")
    assert entry["policy"] == "exp4" and entry["feedback_rounds"] == 1
    assert entry["selection_weights"] == {"sum": 0.5, "other": 0.5}  # both were right
    human = " ".join(cli.run("status").stdout.split())
    assert "exp4 (threshold 0.6, 1 feedback rounds)" in human and "other 0.50, sum 0.50" in human
    split = cli.json("policy", "chooser", "ab", "--weights", '{"sum": 1, "other": 3}')
    assert split["policy"] == "ab" and split["selection_weights"] == {"sum": 0.25, "other": 0.75}
    assert "confidence_threshold" not in split
    assert "weights other 0.75, sum 0.25" in cli.run("policy", "chooser", "ab", "--weights",
                                                    '{"sum": 1, "other": 3}').stdout
    # The original's apps are shown as before: no selection keys.
    assert "selection_weights" not in next(a for a in cli.json("apps") if a["name"] == "adder")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("link", "no-such-app", "sum"), "error: No app with name 'no-such-app' exists. (HTTP 400)"),
        (("predict", "no-such-app", "--input", "[1.0]"),
         "error: Not found: Application no-such-app does not exist (HTTP 404)"),
        (("version", "sum", "7"),
         "error: Cannot set non-existent version '7' for model with name 'sum' (HTTP 400)"),
        (("predict", "adder", "--input", "[1.0"),
         "error: --input is not JSON: Expecting ',' delimiter: line 1 column 5 (char 4)"),
        (("predict", "adder"), "error: give exactly one of --input JSON and --batch JSON"),
        (("feedback", "adder", "--input", "[1.0]", "--label", "three"),
         "error: --label is not JSON: Expecting value: line 1 column 1 (char 0)"),
        (("policy", "adder", "nope"),
         "error: nope is not a valid selection_policy. Accepted policies: DefaultOutputSelectionPolicy, "
         "exp3, exp4, ab (HTTP 400)"),
        (("policy", "adder", "exp3", "--threshold", "0.5"),
         "error: confidence_threshold applies to the exp4 policy only, not to exp3 (HTTP 400)"),
        (("policy", "adder", "ab", "--weights", "[1]"),
         """error: --weights must be a JSON object of model name -> weight, e.g. '{"v1": 9, "v2": 1}'"""),
        (("deploy", "missing.py:predict", "--name", "m", "--input-type", "doubles"),
         "error: missing.py: no such file"),
        (("deploy", f"{SUM_MODEL}:nothing", "--name", "m", "--input-type", "doubles"),
         f"error: {SUM_MODEL} defines no function 'nothing'"),
    ],
)
def test_errors_are_one_line_with_exit_status_1(cli: Cli, args: tuple[str, ...], message: str) -> None:
    done = cli.run(*args, check=False)
    assert done.returncode == 1
    assert _error_lines(done) == [message]
    assert done.stdout == ""


def test_no_such_cluster_is_one_line(cli: Cli) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "clipper_admin.cli", "--cluster", "absent", "status"],
        env=cli.env, capture_output=True, text=True, timeout=COMMAND_TIMEOUT_S,
    )
    assert done.returncode == 1
    assert _error_lines(done) == [
        f"error: No local cluster 'absent' is running (no {cli.home}/clusters/absent/cluster.json); "
        "start one with `clipper start`"
    ]


BROKEN_MODEL = '''
class Weights:
    def __reduce__(self):
        return (_load_weights, ())


def _load_weights():
    print("loading weights from /models/cli-broken.bin", flush=True)
    raise RuntimeError("weights file /models/cli-broken.bin is truncated")


WEIGHTS = Weights()


def predict(inputs):
    return [str(WEIGHTS) for _ in inputs]
'''


def test_a_model_that_fails_to_load_reports_its_log_tail(cli: Cli, tmp_path: Path) -> None:
    model_file = tmp_path / "broken.py"
    model_file.write_text(BROKEN_MODEL, encoding="utf-8")
    done = cli.run("deploy", f"{model_file}:predict", "--name", "broken", "--input-type", "doubles",
                   check=False)
    assert done.returncode == 1
    lines = done.stderr.splitlines()
    errors = [i for i, line in enumerate(lines) if line.startswith("error: ")]
    assert len(errors) == 1, done.stderr
    assert "The model replica broken_1-" in lines[errors[0]] and "exited with status" in lines[errors[0]]
    details = lines[errors[0] + 1:]
    assert details and all(line.startswith("  | ") for line in details)
    assert details[0] == "  | loading weights from /models/cli-broken.bin"  # the model's own output
    assert details[-1].endswith(
        "cannot be loaded: RuntimeError: weights file /models/cli-broken.bin is truncated"
    )


def test_logs_tail_and_follow(cli: Cli) -> None:
    tails = cli.json("logs", "query_frontend", "-n", "3")
    assert list(tails) == ["query_frontend"] and 1 <= len(tails["query_frontend"]) <= 3
    assert "==> management_frontend <==" in cli.run("logs", "-n", "1").stdout
    log_file = cli.home / "clusters" / cli.cluster / "logs" / "sum_1-0.log"
    follower = subprocess.Popen(
        [sys.executable, "-m", "clipper_admin.cli", "--cluster", cli.cluster, "logs", "sum_1-0",
         "--follow", "-n", "0"],
        env=cli.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        time.sleep(1.5)  # the follower has opened the log at its end
        marker = f"marker {uuid.uuid4().hex}"
        with log_file.open("a", encoding="utf-8") as log:
            log.write(marker + "\n")
        assert follower.stdout is not None
        assert follower.stdout.readline().rstrip("\n") == f"[sum_1-0] {marker}"
    finally:
        follower.terminate()
        follower.wait(10)


def test_stop_last(cli: Cli) -> None:
    assert cli.json("stop") == {"cluster": cli.cluster, "stopped": True}
    assert not (cli.home / "clusters" / cli.cluster / "cluster.json").exists()
    assert cli.json("stop") == {"cluster": cli.cluster, "stopped": False}  # again: nothing to do
    after = cli.run("status", check=False)
    assert after.returncode == 1 and _error_lines(after)[0].startswith(
        f"error: No local cluster '{cli.cluster}' is running"
    )
