"""A local benchmark cluster started directly as processes: redis-server, both frontends, models.

The bench does not go through ``clipper_admin`` on purpose: it registers apps, models and links
through the management REST API and starts each model replica itself, so what it measures is the
serving path only.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import requests

from clipper_core.state import DEFAULT_BATCH_SIZE

# Process and port helpers shared with the test suite; re-exported for the scenarios.
from tools.processes import free_port, stop_process, wait_for_port

logger = logging.getLogger(__name__)

REPO_ROOT: Path = Path(__file__).resolve().parent.parent
LOOPBACK = "127.0.0.1"
MODEL_VERSION = "1"






def child_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH", "")]))
    env["PYTHONUNBUFFERED"] = "1"
    return env


def rss_bytes(pid: int, *, with_children: bool = True) -> int:
    """Resident set size of a process (and its children, for wrappers that fork)."""
    process = psutil.Process(pid)
    total = process.memory_info().rss
    if with_children:
        for child in process.children(recursive=True):
            try:
                total += child.memory_info().rss
            except psutil.NoSuchProcess:
                pass
    return total




@dataclass
class Replica:
    model_name: str
    process: subprocess.Popen[bytes]


@dataclass
class Cluster:
    """Owns every process it starts; ``close()`` stops them all (no orphans)."""

    work_dir: Path
    redis_port: int = field(default_factory=free_port)
    management_port: int = field(default_factory=free_port)
    query_port: int = field(default_factory=free_port)
    rpc_port: int = field(default_factory=free_port)
    cache_size_bytes: int = 33554432
    # Query frontends: with more than one they share query_port (--reuse_port), each with its
    # own RPC port and instance port, as LocalContainerManager(num_frontend_replicas=N) runs them.
    frontends: int = 1
    # Extra environment for every process of the cluster (e.g. CLIPPER_RPC_SPIN_US, read by the
    # query frontends as their flag and by the model containers).
    env: dict[str, str] = field(default_factory=dict)
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    replicas: list[Replica] = field(default_factory=list)
    rpc_ports: list[int] = field(default_factory=list)
    instance_ports: list[int] = field(default_factory=list)

    # ---- lifecycle -------------------------------------------------------------------------
    def start(self) -> Cluster:
        self.work_dir.mkdir(parents=True, exist_ok=True)
        redis_binary = shutil.which("redis-server")
        if redis_binary is None:
            raise RuntimeError("redis-server is not installed; run `make install`")
        self.processes["redis"] = self._spawn("redis", [
            redis_binary, "--port", str(self.redis_port), "--bind", LOOPBACK, "--save", "",
            "--appendonly", "no", "--dir", str(self.work_dir),
        ])
        self._wait(self.redis_port, "redis")
        self.processes["management"] = self._spawn("management", [
            sys.executable, "-m", "clipper_core.management_frontend", "--redis_ip", LOOPBACK,
            "--redis_port", str(self.redis_port), "--port", str(self.management_port),
            "--host", LOOPBACK,
        ])
        self.rpc_ports = [self.rpc_port] + [free_port() for _ in range(self.frontends - 1)]
        self.instance_ports = [free_port() for _ in range(self.frontends)] if self.frontends > 1 else []
        for index, name in enumerate(self.query_names()):
            shared = [] if self.frontends == 1 else [
                "--reuse_port", "true", "--instance_port", str(self.instance_ports[index])]
            self.processes[name] = self._spawn(name, [
                sys.executable, "-m", "clipper_core.query_frontend", "--redis_ip", LOOPBACK,
                "--redis_port", str(self.redis_port), "--port", str(self.query_port), *shared,
                "--rpc_service_port", str(self.rpc_ports[index]),
                "--prediction_cache_size", str(self.cache_size_bytes), "--host", LOOPBACK,
                "--rpc_host", LOOPBACK,
            ])
        self._wait(self.management_port, "management")
        for index, name in enumerate(self.query_names()):
            self._wait(self.query_port, name)
            self._wait(self.rpc_ports[index], name)
            if self.instance_ports:
                self._wait(self.instance_ports[index], name)
        return self

    def query_names(self) -> list[str]:
        """Process names of the query frontends: ``query``, ``query-1``, ..."""
        return ["query"] + [f"query-{i}" for i in range(1, self.frontends)]

    def instance_url(self, app: str, frontend: int) -> str:
        """``/<app>/predict`` on the port only query frontend ``frontend`` serves."""
        port = self.instance_ports[frontend] if self.instance_ports else self.query_port
        return f"http://{LOOPBACK}:{port}/{app}/predict"

    def _wait(self, port: int, name: str) -> None:
        try:
            wait_for_port(port, 20, process=self.processes[name])
        except (RuntimeError, TimeoutError) as error:
            raise RuntimeError(f"{error}\n--- tail of {name}.log ---\n{self.log_tail(name)}") from None

    def log_tail(self, name: str, lines: int = 15) -> str:
        path = self.work_dir / f"{name}.log"
        if not path.exists():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    def close(self) -> None:
        for replica in self.replicas:
            stop_process(replica.process)
        self.replicas.clear()
        for name in (*self.query_names(), "management", "redis"):
            process = self.processes.pop(name, None)
            if process is not None:
                stop_process(process)

    def __enter__(self) -> Cluster:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _spawn(
        self, name: str, command: list[str], env: dict[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        # The child inherits the log file; our handle is closed once it is spawned.
        log = open(self.work_dir / f"{name}.log", "ab")
        full_env = {**(env or child_env()), **self.env}
        try:
            return subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, env=full_env, cwd=REPO_ROOT
            )
        finally:
            log.close()

    # ---- URLs and pids ---------------------------------------------------------------------
    def predict_url(self, app: str) -> str:
        return f"http://{LOOPBACK}:{self.query_port}/{app}/predict"

    @property
    def query_pid(self) -> int:
        return self.processes["query"].pid

    def pids(self) -> dict[str, int]:
        return {name: process.pid for name, process in self.processes.items()}

    # ---- registration (management REST API) --------------------------------------------------
    def _admin(self, path: str, body: dict[str, object]) -> str:
        response = requests.post(
            f"http://{LOOPBACK}:{self.management_port}/admin/{path}", json=body, timeout=10
        )
        if response.status_code != 200:
            raise RuntimeError(f"/admin/{path} {body} -> {response.status_code} {response.text}")
        return response.text

    def add_app(self, name: str, slo_micros: int, default_output: str = "-1.0") -> None:
        self._admin("add_app", {
            "name": name, "input_type": "doubles", "default_output": default_output,
            "latency_slo_micros": slo_micros,
        })

    def add_model(self, name: str, batch_size: int = DEFAULT_BATCH_SIZE) -> None:
        self._admin("add_model", {
            "model_name": name, "model_version": MODEL_VERSION, "labels": ["bench"],
            "input_type": "doubles", "container_name": "bench/local-process",
            "model_data_path": str(self.work_dir), "batch_size": batch_size,
        })

    def link(self, app: str, model: str) -> None:
        self._admin("add_model_links", {"app_name": app, "model_names": [model]})

    def deploy(self, app: str, model: str, kind: str, *, slo_micros: int, batch_size: int) -> Replica:
        """Register app + model + link, start one replica, and wait until it answers for real."""
        self.add_app(app, slo_micros)
        self.add_model(model, batch_size)
        self.link(app, model)
        replica = self.start_replica(model, kind)
        for frontend in range(1, self.frontends):
            self.start_replica(model, kind, frontend)
        for frontend in range(self.frontends):
            self.wait_until_served(app, url=self.instance_url(app, frontend))
        return replica

    # ---- model replicas ------------------------------------------------------------------------
    def replica_env(self, model: str, model_path: Path | None = None, frontend: int = 0) -> dict[str, str]:
        env = child_env()
        env.update({
            "CLIPPER_MODEL_NAME": model,
            "CLIPPER_MODEL_VERSION": MODEL_VERSION,
            "CLIPPER_IP": LOOPBACK,
            "CLIPPER_PORT": str(self.rpc_ports[frontend] if self.rpc_ports else self.rpc_port),
            "CLIPPER_INPUT_TYPE": "doubles",
            "CLIPPER_MODEL_PATH": str(model_path or self.work_dir),
            "CLIPPER_READY_FILE": str(self.work_dir / f"{model}{f'-{frontend}' if frontend else ''}.ready"),
        })
        return env

    def start_replica(self, model: str, kind: str, frontend: int = 0) -> Replica:
        """A replica of ``model`` serving query frontend ``frontend``."""
        command = [sys.executable, "-m", "benchmarks.model_container", kind]
        log = f"model-{model}" + (f"-{frontend}" if frontend else "")
        process = self._spawn(log, command, env=self.replica_env(model, frontend=frontend))
        replica = Replica(model, process)
        self.replicas.append(replica)
        return replica

    def start_closure_replica(self, model: str, model_path: Path) -> Replica:
        command = [sys.executable, "-m", "containers.python.closure_container"]
        process = self._spawn(f"model-{model}", command, env=self.replica_env(model, model_path))
        replica = Replica(model, process)
        self.replicas.append(replica)
        return replica

    def stop_replica(self, replica: Replica) -> None:
        stop_process(replica.process)
        if replica in self.replicas:
            self.replicas.remove(replica)

    def wait_until_served(self, app: str, timeout_s: float = 30.0, url: str | None = None) -> None:
        """Probe (``url``, default the REST port) until the app answers with a real output."""
        deadline = time.monotonic() + timeout_s
        counter = 0
        last = ""
        while time.monotonic() < deadline:
            counter += 1
            for replica in self.replicas:
                if replica.process.poll() is not None:
                    name = f"model-{replica.model_name}"
                    raise RuntimeError(f"replica of {replica.model_name} exited:\n{self.log_tail(name)}")
            try:
                response = requests.post(
                    url or self.predict_url(app), json={"input": [float(counter) + 0.25]}, timeout=5
                )
                last = response.text
                if response.status_code == 200 and response.json().get("default") is False:
                    return
            except requests.RequestException as error:
                last = str(error)
            time.sleep(0.1)
        raise TimeoutError(
            f"app {app} not served after {timeout_s}s; last answer {last!r}\n"
            f"--- tail of query.log ---\n{self.log_tail('query')}"
        )

    # ---- metrics -------------------------------------------------------------------------------
    def metrics_json(self) -> dict[str, object]:
        response = requests.get(
            f"http://{LOOPBACK}:{self.query_port}/metrics",
            headers={"Accept": "application/json"}, timeout=5,
        )
        response.raise_for_status()
        return response.json() if response.text.strip() else {}

    def metrics_prometheus(self) -> str:
        response = requests.get(
            f"http://{LOOPBACK}:{self.query_port}/metrics",
            headers={"Accept": "text/plain;version=0.0.4"}, timeout=5,
        )
        response.raise_for_status()
        return response.text
