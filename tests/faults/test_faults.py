"""Faults under load against a real local cluster (``make test-faults``; issue 11, "Evidence").

One local cluster (LocalContainerManager: Redis, both frontends, two replicas of a fast model)
serves an app with a 100 ms SLO under a steady open-loop load. For each fault the load runs a
few seconds, the fault is injected, and the outcome is counted: queries sent, answered by the
model, defaults, late (> SLO + 5 ms), errors (no HTTP 200), recovery time (fault -> the last
answer that was not the model's), and state lost (apps, links, models, versions, replicas that
are gone afterwards: must be zero). A process that nothing restarts within a few seconds is
restarted by the test with its own command line, as an operator or init system would, and the
table says so. The table is printed and written to benchmarks/results/faults.json.
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import signal
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any, Final

import aiohttp
import psutil
import pytest

from clipper_admin import ClipperConnection, LocalContainerManager
from clipper_admin.deployers import python as python_deployer
from clipper_admin.local.cluster_record import ClusterRecord
from clipper_admin.local.processes import ProcessHandle
from tests.helpers import REPO_ROOT, free_port

pytestmark = [pytest.mark.faults, pytest.mark.timeout(900)]

SLO_US: Final = 100_000
LATE_S: Final = SLO_US / 1e6 + 0.005
RATE_PER_S: Final = 150
BEFORE_S: Final = 2.0
AFTER_S: Final = 6.0
RESTART_AFTER_S: Final = 3.0
RECOVERY_TIMEOUT_S: Final = 30.0  # give a supervisor this long before the test restarts a process
REPLICAS: Final = 2
RESULTS: Final = REPO_ROOT / "benchmarks" / "results" / "faults.json"


def add_one(xs: Any) -> list[str]:
    return [str(float(x[0]) + 1.0) for x in xs]


@dataclass
class Outcome:
    fault: str
    sent: int = 0
    model_answers: int = 0
    defaults: int = 0
    late: int = 0
    errors: int = 0
    recovery_s: float | None = 0.0  # None: not back to full strength within the timeout
    state_lost: list[str] = field(default_factory=list)
    restarted_by: str = ""


@dataclass
class Answer:
    sent_at: float
    latency_s: float
    status: int  # 0: no HTTP answer (connection refused/reset)
    is_model: bool


@dataclass
class Cluster:
    conn: ClipperConnection
    manager: LocalContainerManager
    app: str
    model: str

    @property
    def url(self) -> str:
        return f"http://{self.conn.get_query_addr()}/{self.app}/predict"

    def record(self) -> ClusterRecord:
        record = ClusterRecord.load(self.manager.paths)
        assert record is not None
        return record


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    home = tmp_path_factory.mktemp("faults")
    manager = LocalContainerManager(
        cluster_name=f"faults-{uuid.uuid4().hex[:6]}", clipper_home=str(home), query_port=free_port(),
        management_port=free_port(), rpc_port=free_port(), redis_port=free_port(),
    )
    conn = ClipperConnection(manager)
    conn.start_clipper()
    try:
        app, model = "faults-app", "add-one"
        conn.register_application(app, "doubles", "-1.0", SLO_US)
        python_deployer.deploy_python_closure(conn, model, 1, "doubles", add_one, num_replicas=REPLICAS)
        conn.link_model_to_app(app, model)
        cluster = Cluster(conn, manager, app, model)
        wait_until(lambda: model_answers(cluster), "the model answers", 60)
        yield cluster
    finally:
        conn.stop_all()


def wait_until(check: Callable[[], bool], what: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def model_answers(cluster: Cluster) -> bool:
    import requests

    try:
        reply = requests.post(cluster.url, json={"input": [1.0]}, timeout=2)
        return reply.status_code == 200 and not reply.json().get("default", True)
    except (requests.RequestException, ValueError):
        return False


def state_of(conn: ClipperConnection) -> set[str]:
    """Everything that must survive a fault, as comparable strings."""
    apps = conn.get_all_apps(verbose=True)
    items = {f"app:{a['name']}:{a['input_type']}:{a['latency_slo_micros']}" for a in apps}
    for app in conn.get_all_apps():
        items |= {f"link:{app}->{m}" for m in conn.get_linked_models(app)}
    items |= {
        f"model:{m['model_name']}:{m['model_version']}:current={m['is_current_version']}"
        for m in conn.get_all_models(verbose=True)
    }
    return items


def replica_count(conn: ClipperConnection, model: str) -> int:
    return sum(1 for r in conn.get_all_model_replicas(verbose=True) if r["model_name"] == model)


async def load(url: str, duration_s: float, rate_per_s: float, start: float) -> list[Answer]:
    """Open loop: one request every 1/rate s whatever the answers do; bounded in count."""
    answers: list[Answer] = []
    timeout = aiohttp.ClientTimeout(total=5)
    connector = aiohttp.TCPConnector(limit=200)
    async with aiohttp.ClientSession(timeout=timeout, connector=connector) as http:

        async def one(i: int) -> None:
            sent = time.monotonic()
            status, is_model = 0, False
            try:
                async with http.post(url, json={"input": [float(i % 97)]}) as response:
                    status = response.status
                    if status == 200:
                        is_model = not (await response.json()).get("default", True)
            except (TimeoutError, aiohttp.ClientError, ValueError):
                status = 0
            answers.append(Answer(sent - start, time.monotonic() - sent, status, is_model))

        tasks = []
        count = int(duration_s * rate_per_s)
        for i in range(count):
            await asyncio.sleep(max(0.0, start + i / rate_per_s - time.monotonic()))
            tasks.append(asyncio.create_task(one(i)))
        await asyncio.gather(*tasks)
    return answers


def restart_like(snapshot: dict[str, Any]) -> subprocess.Popen[bytes]:
    """Start a process again with the command line, directory and environment it had."""
    log = open(snapshot["log"], "ab")
    try:
        return subprocess.Popen(
            snapshot["cmdline"], cwd=snapshot["cwd"], env=snapshot["environ"], stdout=log,
            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
        )
    finally:
        log.close()


def adopt(cluster: Cluster, old_pid: int, new: subprocess.Popen[bytes], log: str) -> None:
    """Put a process the test restarted into the cluster record, so stop_all stops it."""
    handle = ProcessHandle(new.pid, psutil.Process(new.pid).create_time(), log)
    with cluster.manager.paths.locked():
        record = cluster.record()
        for role, old in record.core.items():
            if old.pid == old_pid:
                record.core[role] = handle
        for replica in record.replicas:
            if replica.process.pid == old_pid:
                replica.process = handle
        record.save(cluster.manager.paths)


def snapshot_of(proc: psutil.Process, log: str) -> dict[str, Any]:
    return {"cmdline": proc.cmdline(), "cwd": proc.cwd(), "environ": proc.environ(), "log": log}


@dataclass
class Fault:
    name: str
    inject: Callable[[Cluster], dict[str, Any]]  # returns what recover() needs
    recover: Callable[[Cluster, dict[str, Any]], str]  # returns who restarted what ("" if nothing)
    recovered: Callable[[Cluster], bool]


def core_process(cluster: Cluster, role: str) -> psutil.Process:
    proc = cluster.record().core[role].process()
    assert proc is not None, f"{role} is not running"
    return proc


def kill_core(role: str, sig: signal.Signals) -> Callable[[Cluster], dict[str, Any]]:
    def inject(cluster: Cluster) -> dict[str, Any]:
        proc = core_process(cluster, role)
        snapshot = snapshot_of(proc, cluster.record().core[role].log_path)
        proc.send_signal(sig)
        proc.wait(10)
        return {"snapshot": snapshot, "pid": proc.pid, "role": role}

    return inject


def restart_core_if_needed(cluster: Cluster, injected: dict[str, Any]) -> str:
    """Wait for a supervisor; else restart the process as it was (an operator would)."""
    deadline = time.monotonic() + RESTART_AFTER_S
    while time.monotonic() < deadline:
        handle = cluster.record().core.get(injected["role"])
        if handle is not None and handle.pid != injected["pid"] and handle.is_alive():
            return "supervisor"
        time.sleep(0.1)
    if injected["role"] == "redis":
        # redis-server rewrites its process title, so its command line cannot be read back:
        # start it the way the manager does.
        with cluster.manager.paths.locked():
            record = cluster.record()
            record.core["redis"] = cluster.manager.respawn("redis", record.launches["redis"])
            record.save(cluster.manager.paths)
        return "test"
    adopt(cluster, injected["pid"], restart_like(injected["snapshot"]), injected["snapshot"]["log"])
    return "test"


def kill_replica(
    sig: signal.Signals, resume_after_s: float | None = None
) -> Callable[[Cluster], dict[str, Any]]:
    def inject(cluster: Cluster) -> dict[str, Any]:
        replica = next(r for r in cluster.record().replicas if r.process.is_alive())
        proc = replica.process.process()
        assert proc is not None
        snapshot = snapshot_of(proc, replica.process.log_path)
        proc.send_signal(sig)
        if resume_after_s is not None:
            time.sleep(resume_after_s)
            proc.send_signal(signal.SIGCONT)
        else:
            proc.wait(10)
        return {"snapshot": snapshot, "pid": proc.pid, "stopped": resume_after_s is None}

    return inject


def restart_replica_if_needed(cluster: Cluster, injected: dict[str, Any]) -> str:
    if not injected["stopped"]:
        return ""
    deadline = time.monotonic() + RESTART_AFTER_S
    while time.monotonic() < deadline:
        alive = [r for r in cluster.record().replicas if r.process.is_alive()]
        if len(alive) >= REPLICAS:
            return "supervisor"
        time.sleep(0.1)
    adopt(cluster, injected["pid"], restart_like(injected["snapshot"]), injected["snapshot"]["log"])
    return "test"


def full_strength(cluster: Cluster) -> bool:
    try:
        return replica_count(cluster.conn, cluster.model) >= REPLICAS and model_answers(cluster)
    except Exception:  # the management API may still be coming back
        return False


FAULTS: Final = [
    Fault("replica SIGKILL", kill_replica(signal.SIGKILL), restart_replica_if_needed, full_strength),
    Fault("replica SIGSTOP 3 s", kill_replica(signal.SIGSTOP, 3.0), restart_replica_if_needed, full_strength),
    Fault("query frontend SIGKILL", kill_core("query_frontend", signal.SIGKILL), restart_core_if_needed,
          full_strength),
    Fault("management frontend SIGKILL", kill_core("management_frontend", signal.SIGKILL),
          restart_core_if_needed, full_strength),
    # Last: without persistence, a Redis restart would leave nothing to run the others on.
    Fault("Redis SIGTERM", kill_core("redis", signal.SIGTERM), restart_core_if_needed, full_strength),
    Fault("Redis SIGKILL", kill_core("redis", signal.SIGKILL), restart_core_if_needed, full_strength),
]


def run_fault(cluster: Cluster, fault: Fault) -> Outcome:
    before = state_of(cluster.conn)
    start = time.monotonic()

    async def scenario() -> tuple[list[Answer], float, str]:
        loader = asyncio.create_task(load(cluster.url, BEFORE_S + AFTER_S, RATE_PER_S, start))
        await asyncio.sleep(BEFORE_S)
        fault_at = time.monotonic() - start
        injected = await asyncio.to_thread(fault.inject, cluster)
        restarted_by = await asyncio.to_thread(fault.recover, cluster, injected)
        return await loader, fault_at, restarted_by

    answers, fault_at, restarted_by = asyncio.run(scenario())
    recovered = True
    try:
        wait_until(lambda: fault.recovered(cluster), f"recovery from {fault.name}", RECOVERY_TIMEOUT_S)
    except AssertionError:
        recovered = False
    after = state_of(cluster.conn)
    failed = [a for a in answers if a.sent_at >= fault_at and not a.is_model]
    last_failure = max((a.sent_at + a.latency_s for a in failed), default=fault_at)
    return Outcome(
        fault=fault.name,
        sent=len(answers),
        model_answers=sum(a.is_model for a in answers),
        defaults=sum(a.status == 200 and not a.is_model for a in answers),
        late=sum(a.latency_s > LATE_S for a in answers),
        errors=sum(a.status != 200 for a in answers),
        recovery_s=round(last_failure - fault_at, 3) if recovered else None,
        state_lost=sorted(before - after),
        restarted_by=restarted_by,
    )


def table(outcomes: list[Outcome]) -> str:
    head = ("fault", "sent", "model", "defaults", "late", "errors", "recovery s", "state lost",
            "restarted by")
    rows = [head] + [
        (o.fault, str(o.sent), str(o.model_answers), str(o.defaults), str(o.late), str(o.errors),
         "no" if o.recovery_s is None else f"{o.recovery_s:.2f}", str(len(o.state_lost)),
         o.restarted_by or "-")
        for o in outcomes
    ]
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows)


def test_faults_under_load(cluster: Cluster) -> None:
    outcomes = []
    for fault in FAULTS:
        outcome = run_fault(cluster, fault)
        outcomes.append(outcome)
        if outcome.recovery_s is None:
            break  # the next faults need a cluster at full strength: the table shows where it ended
    text = table(outcomes)
    title = f"Faults under load ({RATE_PER_S} req/s, SLO {SLO_US // 1000} ms, {REPLICAS} replicas)"
    print(f"\n{title}\n{text}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "load_avg_1m": os.getloadavg()[0]},
        "load": {"rate_per_s": RATE_PER_S, "slo_ms": SLO_US / 1000, "replicas": REPLICAS,
                 "seconds_before_fault": BEFORE_S, "seconds_after_fault": AFTER_S},
        "faults": [asdict(o) for o in outcomes],
    }, indent=2) + "\n")
    assert len(outcomes) == len(FAULTS), f"the cluster did not recover from {outcomes[-1].fault}:\n{text}"
    assert all(not o.state_lost for o in outcomes), {o.fault: o.state_lost for o in outcomes}
    replica_faults = [o for o in outcomes if o.fault.startswith("replica")]
    assert all(o.errors == 0 for o in replica_faults), text  # a replica fault never fails a request
    assert all(o.model_answers > 0 for o in outcomes), text
