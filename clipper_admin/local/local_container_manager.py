"""``LocalContainerManager``: a whole Clipper cluster as local processes (the embedded default)."""

from __future__ import annotations

import logging
import os
import shutil
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

import redis
import requests

from clipper_admin._logging import WaitProgress
from clipper_admin._validation import validate_versioned_model_name
from clipper_admin.container_manager import (
    ADMIN_TOKEN_ENV,
    CLIPPER_INTERNAL_MANAGEMENT_PORT,
    CLIPPER_INTERNAL_QUERY_PORT,
    CLIPPER_INTERNAL_REDIS_PORT,
    CLIPPER_INTERNAL_RPC_PORT,
    CONTAINERLESS_MODEL_IMAGE,
    REDIS_PASSWORD_ENV,
    REDIS_PERSISTENCE_ARGS,
    ClusterAdapter,
    ContainerManager,
    new_secret,
)
from clipper_admin.deployers.deployer_utils import check_closure_image_python
from clipper_admin.exceptions import ClipperException
from clipper_admin.local import model_store, rpc_secret
from clipper_admin.local.cluster_record import (
    ClusterPaths,
    ClusterRecord,
    ImageRecord,
    Launch,
    QueryFrontendPorts,
    ReplicaRecord,
    ReplicaState,
    query_frontend_role,
)
from clipper_admin.local.processes import (
    ProcessHandle,
    choose_port,
    free_port,
    log_tail,
    spawn,
    stop_processes,
)
from clipper_admin.local.runtimes import runtime_module_for_image

__all__ = ["SUPERVISOR_ROLE", "LocalContainerManager"]

logger = logging.getLogger(__name__)

_REDIS = "redis"
_MANAGEMENT = "management_frontend"
SUPERVISOR_ROLE: Final = "supervisor"
# Variables a child must not inherit from the caller: each process gets only the secrets it needs.
_SECRET_ENV: Final = (
    REDIS_PASSWORD_ENV, "CLIPPER_REDIS_PASSWORD", ADMIN_TOKEN_ENV, "REDISCLI_AUTH", rpc_secret.RPC_SECRET_ENV,
)
_POLL_INTERVAL_S: Final = 0.1
# The directory holding clipper_core/ and containers/ when running from a source checkout: put
# on the children's PYTHONPATH so `python -m clipper_core...` works from any interpreter or venv.
_SOURCE_ROOT: Final = Path(__file__).resolve().parents[2]


_PORT_RACE_ATTEMPTS: Final = 3


class _PortTaken(ClipperException):
    """A process of the cluster lost its port to another process while starting."""


class LocalContainerManager(ContainerManager):
    """Runs redis-server, both frontends and every model replica as local processes.

    Ports are preferences: a taken port is replaced by a free one (logged). The cluster is
    recorded in ``<clipper_home>/clusters/<cluster_name>/cluster.json`` (``clipper_home`` defaults
    to ``$CLIPPER_HOME`` or ``~/.clipper``) so that ``connect()`` works from any Python process;
    every process logs to ``<log_dir>`` (default: ``logs/`` in that directory). Model replicas
    run ``python -m <runtime module>`` chosen from the image name (see
    ``clipper_admin.local.runtimes``); ``build_model`` keeps the model directory (and a virtual
    environment for ``pkgs_to_install``) in the cluster directory instead of building an image.

    Args:
        cluster_name: identifies the cluster (and its directory).
        query_port, management_port, rpc_port, redis_port: preferred ports.
        redis_ip: use this external Redis (at ``redis_port``) instead of starting one.
        log_dir: where process logs go.
        clipper_home: root directory of cluster records.
        host: address the frontends bind to and replicas connect to (loopback by default).
        startup_timeout_s: how long to wait for the frontends, and for each replica to load.
        stop_timeout_s: grace period between SIGTERM and SIGKILL. A replica drains in it
            (``set_num_replicas`` down, ``stop_models``): it finishes the batch it holds and
            exits once the query frontend has let it go, normally within milliseconds of
            that batch, at most about a second after its last request (see
            ``containers.python.server``); a model batch slower than this grace is killed.
        image_runtimes: extra ``image stem -> python module`` mappings for replicas.
        redis_password: the password of an external Redis (``redis_ip``). A Redis the manager
            starts always gets a generated password (kept in ``cluster.json``, mode 0600).
        admin_token: when given, the management API requires ``Authorization: Bearer <token>``;
            it is kept in ``cluster.json``, so ``connect()`` from another process sends it too.
        supervise: run ``python -m clipper_admin.local.supervisor`` beside the cluster: it starts
            a model replica (or Redis) that exited again, after a back-off of
            ``restart_backoff_s`` doubling per quick failure, and gives up on a replica after
            ``max_restarts`` failures in a row, each within seconds of its start (a crash loop).
        secure_rpc: generate a secret at ``start_clipper``: the RPC port then speaks CurveZMQ
            and admits only replicas this cluster starts (``clipper_admin.local.rpc_secret``).

    ``start_clipper(num_frontend_replicas=N)`` runs N query-frontend processes, as the
    original's Kubernetes manager ran N query-frontend pods: they share the REST port
    (``SO_REUSEPORT``; the kernel spreads new connections over them), each has its own RPC
    port, its own *instance port* (a REST listener only it serves, for its ``/healthz`` and
    ``/metrics``; see ``get_query_frontend_addrs``) and its own replicas of every model:
    ``set_num_replicas(n)`` runs n replicas per query frontend. The supervisor restarts each
    frontend on its own; the others keep serving meanwhile.
    """

    def __init__(
        self,
        cluster_name: str = "default-cluster",
        query_port: int = CLIPPER_INTERNAL_QUERY_PORT,
        management_port: int = CLIPPER_INTERNAL_MANAGEMENT_PORT,
        rpc_port: int = CLIPPER_INTERNAL_RPC_PORT,
        redis_port: int = CLIPPER_INTERNAL_REDIS_PORT,
        redis_ip: str | None = None,
        log_dir: str | None = None,
        clipper_home: str | None = None,
        host: str = "127.0.0.1",
        startup_timeout_s: float = 60.0,
        stop_timeout_s: float = 5.0,
        image_runtimes: Mapping[str, str] | None = None,
        redis_password: str | None = None,
        admin_token: str | None = None,
        supervise: bool = True,
        restart_backoff_s: float = 0.5,
        max_restarts: int = 5,
        secure_rpc: bool = False,
    ) -> None:
        self.cluster_name = cluster_name
        self.secure_rpc = secure_rpc
        self.cluster_identifier = cluster_name
        self.query_port = query_port
        self.management_port = management_port
        self.rpc_port = rpc_port
        self.redis_port = redis_port
        self.redis_ip = redis_ip
        self.external_redis = redis_ip is not None
        self.host = host
        self.startup_timeout_s = startup_timeout_s
        self.stop_timeout_s = stop_timeout_s
        self.image_runtimes = dict(image_runtimes or {})
        self.redis_password = redis_password
        self.admin_token = admin_token
        self.supervise = supervise
        self.restart_backoff_s = restart_backoff_s
        self.max_restarts = max_restarts
        self.paths = ClusterPaths.for_cluster(cluster_name, clipper_home, log_dir)
        self._frontend_ports: list[QueryFrontendPorts] = []  # from the record (start, connect)
        self.logger = ClusterAdapter(logger, {"cluster_name": cluster_name})

    # -- cluster ------------------------------------------------------------------------------

    def start_clipper(
        self,
        query_frontend_image: str,
        mgmt_frontend_image: str,
        frontend_exporter_image: str,
        cache_size: int,
        qf_http_thread_pool_size: int,
        qf_http_timeout_request: int,
        qf_http_timeout_content: int,
        num_frontend_replicas: int = 1,
    ) -> None:
        """Start Redis (unless external), the management frontend and ``num_frontend_replicas``
        query frontends on one shared REST port; wait until each answers."""
        if not isinstance(num_frontend_replicas, int) or num_frontend_replicas < 1:
            raise ClipperException(
                f"num_frontend_replicas must be a positive integer, not {num_frontend_replicas!r}"
            )
        with self.paths.locked():
            existing = ClusterRecord.load(self.paths)
            alive = {} if existing is None else {r: h.is_alive() for r, h in existing.core.items()}
            if alive and all(alive.values()):
                raise ClipperException(
                    f"Cluster {self.cluster_name} cannot be started because it already exists. "
                    "Please use ClipperConnection.connect() to connect to it."
                )
            if any(alive.values()):
                stopped = ", ".join(role for role, is_alive in alive.items() if not is_alive)
                raise ClipperException(
                    f"Cluster {self.cluster_name} is partly running ({stopped} stopped; logs in "
                    f"{self.paths.log_dir}). Call ClipperConnection.stop_all() "
                    "before starting it again."
                )
            if existing is not None:
                self.logger.info("Cleaning up the stale record of a stopped cluster")
                stop_processes([r.process for r in existing.replicas], timeout_s=self.stop_timeout_s)
            self._archive_logs(existing.run_id if existing is not None else None)
            # A new cluster starts with empty state, as the original; the data of the previous
            # run (kept across Redis restarts within it) goes.
            shutil.rmtree(self.paths.redis_dir, ignore_errors=True)
            http_flags = ["--thread_pool_size", str(qf_http_thread_pool_size),
                          "--timeout_request", str(qf_http_timeout_request),
                          "--timeout_content", str(qf_http_timeout_content)]
            for attempt in range(1, _PORT_RACE_ATTEMPTS + 1):
                try:
                    record = self._start_core(cache_size, http_flags, num_frontend_replicas)
                    break
                except _PortTaken as exc:
                    # Someone bound a port between our free-port check and our bind: the next
                    # attempt's check sees it taken and picks another.
                    if attempt == _PORT_RACE_ATTEMPTS:
                        raise
                    self.logger.warning("%s; starting again on other ports", exc.msg.splitlines()[0])
            record.save(self.paths)
        self._adopt(record)
        frontends = (
            "query frontend" if len(record.frontends) == 1
            else f"{len(record.frontends)} query frontends (own ports "
            f"{', '.join(self.get_query_frontend_addrs())})"
        )
        self.logger.info(
            "Local Clipper cluster is up: %s on %s, management %s, RPC %s:%s, Redis %s:%s "
            "(logs in %s)", frontends, self.get_query_addr(), self.get_admin_addr(), self.host,
            ",".join(str(f.rpc_port) for f in record.frontends), self.redis_ip, self.redis_port,
            self.paths.log_dir,
        )

    def _start_core(self, cache_size: int, http_flags: list[str], num_frontends: int) -> ClusterRecord:
        taken: list[int] = []

        def pick(port: int, what: str) -> int:
            chosen = choose_port(port, what, self.host, taken, self.logger)
            taken.append(chosen)
            return chosen

        started: dict[str, ProcessHandle] = {}
        launches: dict[str, Launch] = {}
        try:
            if self.external_redis:
                redis_ip, redis_port = str(self.redis_ip), self.redis_port
                password = self.redis_password
            else:
                redis_ip, redis_port = self.host, pick(self.redis_port, "Redis server")
                password = new_secret()
                launches[_REDIS] = self._redis_launch(redis_port, password)
                started[_REDIS] = self.respawn(_REDIS, launches[_REDIS])
                self._wait_for_redis(started[_REDIS], redis_port, password)
            management_port = pick(self.management_port, "management frontend")
            query_port = pick(self.query_port, "query frontend")
            if num_frontends == 1:
                frontends = [QueryFrontendPorts(pick(self.rpc_port, "query frontend RPC service"))]
            else:
                frontends = []
                for i in range(num_frontends):
                    rpc_port = pick(self.rpc_port + i, f"RPC service of query frontend {i}")
                    instance_port = free_port(self.host, taken)
                    taken.append(instance_port)
                    frontends.append(QueryFrontendPorts(rpc_port, instance_port))
            redis_args = ["--redis_ip", redis_ip, "--redis_port", str(redis_port), "--host", self.host]
            redis_env = {} if password is None else {REDIS_PASSWORD_ENV: password}
            token_env = {} if self.admin_token is None else {ADMIN_TOKEN_ENV: self.admin_token}
            # The dashboard (/dashboard) samples the query frontend's /metrics: each frontend's
            # own address when several share the REST port (it sums their counters).
            metrics_sources = ",".join(f"{self.host}:{f.instance_port or query_port}" for f in frontends)
            launches[_MANAGEMENT] = self._python_launch(
                ["-m", "clipper_core.management_frontend", *redis_args, "--port", str(management_port),
                 "--query_frontend_address", metrics_sources],
                {**redis_env, **token_env},
            )
            if not self.secure_rpc:
                rpc_secret.remove(self.paths)
            rpc_env = rpc_secret.create(self.paths) if self.secure_rpc else {}
            checks = {_MANAGEMENT: f"http://{self.host}:{management_port}/healthz"}
            for i, ports in enumerate(frontends):
                role = query_frontend_role(i)
                shared = [] if ports.instance_port is None else [
                    "--reuse_port", "true", "--instance_port", str(ports.instance_port)]
                launches[role] = self._python_launch(
                    ["-m", "clipper_core.query_frontend", *redis_args, "--port", str(query_port),
                     *shared, "--rpc_host", self.host, "--rpc_service_port", str(ports.rpc_port),
                     "--prediction_cache_size", str(cache_size), *http_flags],
                    {**redis_env, **rpc_env},
                )
                # Each frontend's health on the port only it serves (the shared one answers
                # from whichever process the kernel picks).
                checks[role] = f"http://{self.host}:{ports.instance_port or query_port}/healthz"
            for role in checks:
                started[role] = self.respawn(role, launches[role])
            self._wait_until_answering({role: (started[role], url) for role, url in checks.items()})
            if len(frontends) > 1:
                self._check_shared_port(
                    f"http://{self.host}:{query_port}/healthz",
                    {started[query_frontend_role(i)].pid for i in range(len(frontends))},
                )
            if self.supervise:
                launches[SUPERVISOR_ROLE] = self._supervisor_launch()
                started[SUPERVISOR_ROLE] = self.respawn(SUPERVISOR_ROLE, launches[SUPERVISOR_ROLE])
        except BaseException:
            stop_processes(started.values(), graceful=False)
            raise
        return ClusterRecord(
            self.cluster_name, self.host, redis_ip, redis_port, query_port, management_port,
            frontends[0].rpc_port, core=started, redis_password=password,
            admin_token=self.admin_token, launches=launches,
            query_frontends=frontends if len(frontends) > 1 else [],
        )

    def _redis_launch(self, port: int, password: str) -> Launch:
        """redis-server with AOF in ``<cluster>/redis/``, bound to the cluster's host, and its
        password in a config file (mode 0600) rather than on the command line."""
        binary = shutil.which("redis-server")
        if binary is None:
            raise ClipperException(
                "redis-server was not found on PATH. LocalContainerManager needs it: run "
                "`make install`, or `sudo apt-get install redis-server` (Debian/Ubuntu), or "
                "`brew install redis` (macOS); or pass redis_ip= for an existing Redis."
            )
        self.paths.redis_dir.mkdir(parents=True, exist_ok=True)
        config = self.paths.redis_dir / "redis.conf"
        config.unlink(missing_ok=True)
        fd = os.open(config, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as config_file:
            config_file.write(f'requirepass "{password}"\n')
        return Launch(
            (binary, str(config), "--port", str(port), "--bind", self.host, *REDIS_PERSISTENCE_ARGS,
             "--dir", str(self.paths.redis_dir)),
        )

    def _wait_for_redis(self, handle: ProcessHandle, port: int, password: str | None) -> None:
        deadline = time.monotonic() + self.startup_timeout_s
        progress = WaitProgress(
            self.logger, "Redis", self.startup_timeout_s, f"to listen on {self.host}:{port}"
        )
        while _redis_pid(self.host, port, password) != handle.pid:
            progress.tick()
            self._check_still_running("Redis server", handle)
            if time.monotonic() > deadline:
                raise ClipperException(
                    f"Redis did not listen on {self.host}:{port} within {self.startup_timeout_s} s. "
                    f"Last lines of {handle.log_path}:\n{log_tail(handle.log_path)}"
                )
            time.sleep(_POLL_INTERVAL_S)
        progress.done()

    def _python_launch(
        self, args: list[str], env: Mapping[str, str] | None = None, python: str | None = None
    ) -> Launch:
        return Launch((python or sys.executable, *args), dict(env or {}))

    def _supervisor_launch(self) -> Launch:
        home = self.paths.cluster_dir.parent.parent
        return self._python_launch(
            ["-m", "clipper_admin.local.supervisor", "--cluster-name", self.cluster_name,
             "--clipper-home", str(home), "--log-dir", str(self.paths.log_dir),
             "--backoff-s", str(self.restart_backoff_s), "--max-restarts", str(self.max_restarts)]
        )

    def respawn(self, log_name: str, launch: Launch) -> ProcessHandle:
        """Start ``launch`` (again), logging to ``<log_dir>/<log_name>.log`` (appended)."""
        return spawn(
            launch.argv,
            self.paths.inside(self.paths.log_dir, f"{log_name}.log"),
            env=self._child_env(launch.env),
            cwd=self.paths.cluster_dir,
        )

    def _child_env(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in _SECRET_ENV}
        if (_SOURCE_ROOT / "clipper_core").is_dir() and (_SOURCE_ROOT / "containers").is_dir():
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(_SOURCE_ROOT), env.get("PYTHONPATH")]))
        env["PYTHONUNBUFFERED"] = "1"
        env.update(extra or {})
        return env

    def _check_still_running(self, what: str, handle: ProcessHandle) -> None:
        if not handle.is_alive():
            code = handle.exit_code()
            status = "" if code is None else f" with status {code}"
            tail = log_tail(handle.log_path)
            error = _PortTaken if "address already in use" in tail.lower() else ClipperException
            raise error(
                f"The {what} exited{status} while starting. Last lines of {handle.log_path}:\n{tail}"
            )

    def _wait_until_answering(self, checks: dict[str, tuple[ProcessHandle, str]]) -> None:
        """Wait until each health URL answers *from the process we started* (its pid in the
        answer): a process of someone else that took the port in the meantime does not count."""
        pending = dict(checks)
        strangers: dict[str, int] = {}
        deadline = time.monotonic() + self.startup_timeout_s
        progress = {
            role: WaitProgress(
                self.logger, f"the {role.replace('_', ' ')}", self.startup_timeout_s, f"to answer {url}"
            )
            for role, (_, url) in checks.items()
        }
        while pending:
            for role, (handle, url) in list(pending.items()):
                progress[role].tick()
                if not handle.is_alive() and role in strangers:
                    raise _PortTaken(
                        f"The {role.replace('_', ' ')} could not serve {url}: another process "
                        f"(pid {strangers[role]}) took the port. Last lines of {handle.log_path}:\n"
                        f"{log_tail(handle.log_path)}"
                    )
                self._check_still_running(role.replace("_", " "), handle)
                answered_by = _health_pid(url)
                if answered_by == handle.pid:
                    del pending[role]
                    progress[role].done()
                elif answered_by is not None:
                    strangers[role] = answered_by
            if pending and time.monotonic() > deadline:
                role, (handle, url) = next(iter(pending.items()))
                raise ClipperException(
                    f"The {role.replace('_', ' ')} did not answer {url} within "
                    f"{self.startup_timeout_s} s. Last lines of {handle.log_path}:\n"
                    f"{log_tail(handle.log_path)}"
                )
            if pending:
                time.sleep(_POLL_INTERVAL_S)

    def _check_shared_port(self, url: str, our_pids: set[int]) -> None:
        """The shared REST port answers from one of our query frontends (each bound it with
        SO_REUSEPORT; a stranger that bound it first without would have failed them)."""
        answered_by = _health_pid(url)
        if answered_by not in our_pids:
            raise _PortTaken(
                f"The shared query port {url} is answered by "
                f"{'nothing' if answered_by is None else f'another process (pid {answered_by})'}, "
                f"not by the query frontends started (pids {sorted(our_pids)})"
            )

    def connect(self) -> None:
        """Find the cluster's record and use its addresses."""
        record = ClusterRecord.load(self.paths)
        if record is None:
            raise ClipperException(
                f"No local Clipper cluster named {self.cluster_name} found (no "
                f"{self.paths.record_file}). Start one with ClipperConnection.start_clipper()."
            )
        dead = [role for role, handle in record.core.items() if not handle.is_alive()]
        if dead:
            self.logger.warning("Cluster processes %s are not running; see %s", dead, self.paths.log_dir)
        self._adopt(record)

    def _adopt(self, record: ClusterRecord) -> None:
        self.admin_token = record.admin_token
        self.redis_password = record.redis_password
        self.host = record.host
        self.redis_ip, self.redis_port = record.redis_ip, record.redis_port
        self.query_port, self.management_port = record.query_port, record.management_port
        self.rpc_port = record.rpc_port
        self._frontend_ports = list(record.frontends)

    def _load_record(self) -> ClusterRecord:
        record = ClusterRecord.load(self.paths)
        if record is None:
            raise ClipperException(
                f"Cluster {self.cluster_name} is not running (no {self.paths.record_file})"
            )
        return record

    def get_admin_addr(self) -> str:
        return f"{self.host}:{self.management_port}"

    def get_query_addr(self) -> str:
        return f"{self.host}:{self.query_port}"

    def get_query_frontend_addrs(self) -> list[str]:
        """``host:port`` that each query frontend alone serves (its instance port; with one
        frontend, the REST port): read each one's ``/metrics`` and ``/healthz`` there."""
        ports = self._frontend_ports or [QueryFrontendPorts(self.rpc_port)]
        return [f"{self.host}:{p.instance_port or self.query_port}" for p in ports]

    def get_metric_addr(self) -> str:
        # The query frontend serves /metrics itself (Prometheus text or the JSON report). With
        # several, this is one of them per connection: scrape get_query_frontend_addrs() each.
        return f"{self.host}:{self.query_port}"

    # -- models -------------------------------------------------------------------------------

    def build_model(
        self,
        name: str,
        version: str,
        model_data_path: str,
        base_image: str,
        container_registry: str | None = None,
        pkgs_to_install: list[str] | None = None,
    ) -> str:
        """Keep a copy of the model directory (and a venv for ``pkgs_to_install``); return a tag
        ``[<registry>/]<cluster>-<name>:<version>`` that ``deploy_model`` resolves to it."""
        validate_versioned_model_name(name, version)
        check_closure_image_python(base_image)
        runtime_module_for_image(base_image, self.image_runtimes)  # fail now on unknown images
        image = f"{self.cluster_name}-{name}:{version}"
        if container_registry is not None:
            image = f"{container_registry}/{image}"
        version_dir = self.paths.inside(self.paths.models_dir, f"{name}_{version}")
        self.logger.info("Storing model %s:%s from %s in %s", name, version, model_data_path, version_dir)
        model_dir = model_store.store_model_directory(
            model_data_path, version_dir / "model", self.paths.cluster_dir
        )
        python = None
        if pkgs_to_install:
            python = model_store.create_model_venv(
                version_dir / "venv", list(pkgs_to_install),
                self.paths.log_dir / f"build-{name}_{version}.log",
            )
        with self.paths.locked():
            images = ImageRecord.load_all(self.paths)
            images[image] = ImageRecord(base_image, str(model_dir), python)
            ImageRecord.save_all(self.paths, images)
        return image

    def deploy_model(
        self, name: str, version: str, input_type: str, image: str, num_replicas: int = 1
    ) -> None:
        self.set_num_replicas(name, version, input_type, image, num_replicas)

    def get_num_replicas(self, name: str, version: str) -> int:
        """Replica processes of ``name:version`` running now (not those exited or crash-looping);
        with several query frontends, per frontend: the fewest any of them has."""
        validate_versioned_model_name(name, str(version))
        record = self._load_record()
        running = [0] * len(record.frontends)
        for r in record.replicas:
            if (r.name, r.version) == (name, str(version)) and r.process.is_alive():
                running[r.frontend] += 1
        return min(running)

    def _is_supervised(self, record: ClusterRecord) -> bool:
        supervisor = record.core.get(SUPERVISOR_ROLE)
        return supervisor is not None and supervisor.is_alive()

    def _current_replicas(
        self, record: ClusterRecord, name: str, version: str, frontend: int
    ) -> list[ReplicaRecord]:
        """The replicas of ``name:version`` serving query frontend ``frontend`` that count,
        running ones first, then exited ones the supervisor will start again. Exited ones
        nobody restarts (no supervisor, or a crash loop) are forgotten here: asking for
        replicas again starts afresh."""
        supervised = self._is_supervised(record)
        current, forgotten = [], []
        for replica in record.replicas:
            if (replica.name, replica.version, replica.frontend) != (name, version, frontend):
                continue
            alive = replica.process.is_alive()
            if alive or (supervised and replica.state != ReplicaState.CRASH_LOOP):
                current.append(replica)
            else:
                forgotten.append(replica)
        if forgotten:
            self.logger.info(
                "Forgetting exited replicas %s of %s:%s (%s)", [r.replica_name for r in forgotten],
                name, version, "; ".join(f"{r.state}, {r.last_exit or 'exited'}" for r in forgotten),
            )
            record.replicas = [r for r in record.replicas if r not in forgotten]
        return sorted(current, key=lambda r: not r.process.is_alive())

    def set_num_replicas(
        self, name: str, version: str, input_type: str, image: str, num_replicas: int
    ) -> None:
        version = str(version)
        validate_versioned_model_name(name, version)  # before any file is written
        if image == CONTAINERLESS_MODEL_IMAGE:
            return  # containerless models are served by something outside the cluster
        with self.paths.locked():
            record = self._load_record()
            added: list[ReplicaRecord] = []
            removed: list[ReplicaRecord] = []
            several = len(record.frontends) > 1
            for frontend in range(len(record.frontends)):
                current = self._current_replicas(record, name, version, frontend)
                where = f" of query frontend {frontend}" if several else ""
                if len(current) < num_replicas:
                    self.logger.info(
                        "Found %s replicas for %s:%s%s. Adding %s", len(current), name, version,
                        where, num_replicas - len(current),
                    )
                    added += [self._start_replica(record, name, version, input_type, image, frontend)
                              for _ in range(num_replicas - len(current))]
                elif len(current) > num_replicas:
                    self.logger.info(
                        "Found %s replicas for %s:%s%s. Removing %s", len(current), name, version,
                        where, len(current) - num_replicas,
                    )
                    removed += current[num_replicas:]
            if removed:
                stop_processes([r.process for r in removed], timeout_s=self.stop_timeout_s)
                record.replicas = [r for r in record.replicas if r not in removed]
            if added:
                record.replicas.extend(added)
            if added or removed:
                record.save(self.paths)
            if added:
                self._wait_until_ready(record, added)

    def _start_replica(
        self, record: ClusterRecord, name: str, version: str, input_type: str, image: str,
        frontend: int = 0,
    ) -> ReplicaRecord:
        built = ImageRecord.load_all(self.paths).get(image)
        runtime_image = built.base_image if built is not None else image
        module = runtime_module_for_image(runtime_image, self.image_runtimes)
        if built is not None:
            model_path = built.model_path
        else:
            empty = self.paths.models_dir / "_no_model_files"
            empty.mkdir(parents=True, exist_ok=True)
            model_path = str(empty)
        replica_name = f"{name}_{version}-{record.next_replica_index}"
        record.next_replica_index += 1
        ready_file = self.ready_file(replica_name)
        env = {
            "CLIPPER_MODEL_NAME": name,
            "CLIPPER_MODEL_VERSION": version,
            "CLIPPER_IP": record.host,
            "CLIPPER_PORT": str(record.frontends[frontend].rpc_port),
            "CLIPPER_INPUT_TYPE": input_type,
            "CLIPPER_MODEL_PATH": model_path,
            "CLIPPER_READY_FILE": str(ready_file),
            **rpc_secret.env_for(self.paths),
        }
        launch = self._python_launch(["-m", module], env, python=built.python if built else None)
        handle = self.respawn(replica_name, launch)
        self.logger.debug("Started replica %s (pid %s) running %s", replica_name, handle.pid, module)
        return ReplicaRecord(
            name, version, replica_name, image, input_type, handle, launch, frontend=frontend
        )

    def ready_file(self, replica_name: str) -> Path:
        """The replica's readiness file, removed: the runtime creates it once the model loaded."""
        ready_file = self.paths.inside(self.paths.run_dir, f"{replica_name}.ready")
        ready_file.parent.mkdir(parents=True, exist_ok=True)
        ready_file.unlink(missing_ok=True)
        return ready_file

    def replica_supervision(self) -> list[dict[str, Any]]:
        """What the supervisor knows of every model replica process: ``model_name``,
        ``model_version``, ``replica_name``, ``pid``, ``state`` (``running``, ``restarting`` or
        ``crash-loop``), ``restarts``, ``last_exit`` (how it last exited, or None) and
        ``frontend`` (the index of the query frontend it serves)."""
        record = self._load_record()
        return [
            {"model_name": r.name, "model_version": r.version, "replica_name": r.replica_name,
             "pid": r.process.pid, "state": r.state, "restarts": r.restarts, "last_exit": r.last_exit,
             "frontend": r.frontend}
            for r in record.replicas
        ]  # fmt: skip

    def _wait_until_ready(self, record: ClusterRecord, replicas: list[ReplicaRecord]) -> None:
        """Wait for each new replica's readiness file; on failure stop them and raise."""
        deadline = time.monotonic() + self.startup_timeout_s
        pending = list(replicas)
        progress = {
            r.replica_name: WaitProgress(
                self.logger, f"model replica {r.replica_name}", self.startup_timeout_s,
                f"to load its model (log {r.process.log_path})",
            )
            for r in replicas
        }
        try:
            while pending:
                for replica in list(pending):
                    progress[replica.replica_name].tick()
                    if (self.paths.run_dir / f"{replica.replica_name}.ready").exists():
                        pending.remove(replica)
                        progress[replica.replica_name].done()
                    else:
                        self._check_still_running(f"model replica {replica.replica_name}", replica.process)
                if pending and time.monotonic() > deadline:
                    replica = pending[0]
                    raise ClipperException(
                        f"Model replica {replica.replica_name} did not become ready within "
                        f"{self.startup_timeout_s} s. Last lines of {replica.process.log_path}:\n"
                        f"{log_tail(replica.process.log_path)}"
                    )
                if pending:
                    time.sleep(_POLL_INTERVAL_S)
        except ClipperException:
            stop_processes([r.process for r in replicas], graceful=False)
            record.replicas = [r for r in record.replicas if r not in replicas]
            record.save(self.paths)
            raise

    def _stop_replicas_where(self, keep: Any) -> None:
        with self.paths.locked():
            record = ClusterRecord.load(self.paths)
            if record is None:
                return
            doomed = [r for r in record.replicas if not keep(r)]
            stop_processes([r.process for r in doomed], timeout_s=self.stop_timeout_s)
            record.replicas = [r for r in record.replicas if keep(r)]
            record.save(self.paths)

    def stop_models(self, models: dict[str, list[str]]) -> None:
        wanted = {(name, str(v)) for name, versions in models.items() for v in versions}
        self._stop_replicas_where(lambda r: (r.name, r.version) not in wanted)

    def stop_all_model_containers(self) -> None:
        self._stop_replicas_where(lambda r: False)

    def stop_all(self, graceful: bool = True) -> None:
        """Stop every replica, the frontends and Redis; remove the cluster record."""
        with self.paths.locked():
            record = ClusterRecord.load(self.paths)
            if record is None:
                self.logger.info("No running cluster %s to stop", self.cluster_name)
                return
            # The supervisor first, so that it starts nothing again; then replicas.
            supervisor = [h for role, h in record.core.items() if role == SUPERVISOR_ROLE]
            stop_processes(supervisor, timeout_s=self.stop_timeout_s)
            stop_processes(
                [r.process for r in record.replicas], graceful=graceful, timeout_s=self.stop_timeout_s
            )
            # Frontends before Redis, so they do not log a burst of reconnect errors.
            frontends = [h for role, h in record.core.items() if role not in (_REDIS, SUPERVISOR_ROLE)]
            stop_processes(frontends, graceful=graceful, timeout_s=self.stop_timeout_s)
            stop_processes(
                [h for role, h in record.core.items() if role == _REDIS],
                graceful=graceful, timeout_s=self.stop_timeout_s,
            )
            self.paths.record_file.unlink(missing_ok=True)
            shutil.rmtree(self.paths.run_dir, ignore_errors=True)
            shutil.rmtree(self.paths.redis_dir, ignore_errors=True)

    # -- logs ---------------------------------------------------------------------------------

    def _archive_logs(self, previous_run_id: str | None) -> None:
        """Move an earlier run's logs out of the way, so logs/ holds only the new run's."""
        old_logs = sorted(self.paths.log_dir.glob("*.log"))
        if not old_logs:
            return
        newest = max(f.stat().st_mtime for f in old_logs)
        archive = self.paths.previous_logs_dir / (
            previous_run_id or time.strftime("%Y%m%d-%H%M%S", time.localtime(newest))
        )
        archive.mkdir(parents=True, exist_ok=True)
        for log_file in old_logs:
            log_file.replace(archive / log_file.name)
        self.logger.info("Moved the previous run's logs to %s", archive)

    def get_logs(self, logging_dir: str) -> list[str]:
        """Copy the current run's process logs into ``logging_dir``; return the copies' paths.

        Copies are named ``<cluster>_<run id>_<process>.log``: the logs of two runs (or two
        clusters) copied into one directory never overwrite each other.
        """
        record = self._load_record()
        target = Path(os.path.abspath(os.path.expanduser(logging_dir)))
        if not target.exists():
            target.mkdir(parents=True)
            self.logger.info("Created logging directory: %s", target)
        copied = []
        for log_file in sorted(self.paths.log_dir.glob("*.log")):
            destination = target / f"{self.cluster_name}_{record.run_id}_{log_file.name}"
            shutil.copyfile(log_file, destination)
            copied.append(str(destination))
        return copied


def _health_pid(url: str) -> int | None:
    """The pid in a frontend's health answer, or None when nothing healthy answers yet."""
    try:
        reply = requests.get(url, timeout=2.0)
        if reply.status_code != requests.codes.ok:
            return None
        return int(reply.json()["pid"])
    except (requests.RequestException, ValueError, KeyError, TypeError):
        return None


def _redis_pid(host: str, port: int, password: str | None = None) -> int | None:
    """The process id of the Redis answering at host:port (None: nothing, or not Redis)."""
    client = redis.Redis(host, port, password=password, socket_timeout=1.0, socket_connect_timeout=0.2)
    try:
        return int(client.info("server")["process_id"])
    except (redis.RedisError, KeyError, ValueError, TypeError):
        return None
    finally:
        client.close()
