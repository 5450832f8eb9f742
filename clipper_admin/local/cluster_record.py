"""On-disk record of a local cluster, so that ``connect()`` from any Python process finds it.

Layout of a cluster directory (``$CLIPPER_HOME`` or ``~/.clipper``, then ``clusters/<name>/``)::

    cluster.json   ports, addresses and pids of Redis, the management frontend, each query
                   frontend (``query_frontend``, ``query_frontend-1``, ... with
                   num_frontend_replicas) and every model replica, and the run id of this start
    images.json    locally "built" model images: tag -> model directory, base image, python
    .lock          flock(2) guard for read-modify-write of the two JSON files
    logs/          one log file per process of the current run; earlier runs' logs are moved to
                   logs/previous-runs/<run id>/ when the cluster starts again
    run/           readiness files of replicas
    redis/         the managed Redis: its config (the password; mode 0600) and its append-only
                   file, so a restarted Redis loses no record; removed by stop_all()
    models/        one directory per built model version (model files + optional venv)

``cluster.json`` holds the cluster's Redis password and admin token, so it is written mode 0600.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import secrets
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from clipper_admin.exceptions import ClipperException
from clipper_admin.local.processes import ProcessHandle

__all__ = [
    "ClusterPaths",
    "ClusterRecord",
    "ImageRecord",
    "Launch",
    "QueryFrontendPorts",
    "ReplicaRecord",
    "ReplicaState",
    "default_clipper_home",
    "query_frontend_role",
]

CLIPPER_HOME_ENV: Final = "CLIPPER_HOME"


def default_clipper_home() -> Path:
    return Path(os.environ.get(CLIPPER_HOME_ENV) or Path.home() / ".clipper").expanduser()


@dataclass(frozen=True, slots=True)
class ClusterPaths:
    """Every file and directory of one cluster."""

    cluster_dir: Path
    log_dir: Path

    @classmethod
    def for_cluster(
        cls, cluster_name: str, clipper_home: str | Path | None, log_dir: str | Path | None
    ) -> ClusterPaths:
        if cluster_name in ("", ".", "..") or any(ch in cluster_name for ch in "/\\\0"):
            raise ClipperException(
                f"Invalid cluster name {cluster_name!r}: it names a directory, so it must not be "
                "empty, '.' or '..', nor contain '/', '\\' or NUL"
            )
        home = Path(clipper_home).expanduser() if clipper_home else default_clipper_home()
        cluster_dir = (home / "clusters" / cluster_name).absolute()
        logs = Path(log_dir).expanduser().absolute() if log_dir else cluster_dir / "logs"
        return cls(cluster_dir, logs)

    def inside(self, base: Path, *parts: str) -> Path:
        """``base/parts...``, refused unless it resolves inside ``base`` (the cluster directory,
        or the log directory): no name can write or delete anywhere else.

        Raises:
            ClipperException: a part is absolute, contains ``..``, or a symlink leads outside.
        """
        target = base.joinpath(*parts)
        if not target.resolve().is_relative_to(base.resolve()) or target.resolve() == base.resolve():
            raise ClipperException(
                f"Refusing to use {target}: {'/'.join(parts)!r} does not stay inside {base}"
            )
        return target

    @property
    def record_file(self) -> Path:
        return self.cluster_dir / "cluster.json"

    @property
    def images_file(self) -> Path:
        return self.cluster_dir / "images.json"

    @property
    def previous_logs_dir(self) -> Path:
        """Logs of earlier runs of the cluster, one sub-directory per run."""
        return self.log_dir / "previous-runs"

    @property
    def run_dir(self) -> Path:
        return self.cluster_dir / "run"

    @property
    def models_dir(self) -> Path:
        return self.cluster_dir / "models"

    @property
    def redis_dir(self) -> Path:
        return self.cluster_dir / "redis"

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the cluster's exclusive file lock (blocks other processes' updates)."""
        self.cluster_dir.mkdir(parents=True, exist_ok=True)
        with open(self.cluster_dir / ".lock", "a+") as lock_file:
            fcntl.flock(lock_file, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock_file, fcntl.LOCK_UN)


def new_run_id() -> str:
    """``20261202-081500-3fa2``: sortable, and unique enough per cluster directory."""
    return f"{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(2)}"


@dataclass(frozen=True, slots=True)
class Launch:
    """How a process was started (``argv`` and the environment it got beyond the manager's own),
    so that the supervisor can start it again exactly so."""

    argv: tuple[str, ...]
    env: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"argv": list(self.argv), "env": dict(self.env)}

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> Launch | None:
        if not data:
            return None
        env = {str(k): str(v) for k, v in data.get("env", {}).items()}
        return cls(tuple(str(a) for a in data["argv"]), env)


QUERY_FRONTEND_ROLE: Final = "query_frontend"


def query_frontend_role(index: int) -> str:
    """The role (log name, key in ``core``) of query frontend ``index``: ``query_frontend``,
    ``query_frontend-1``, ... (the first keeps the name a one-frontend cluster has always had)."""
    return QUERY_FRONTEND_ROLE if index == 0 else f"{QUERY_FRONTEND_ROLE}-{index}"


@dataclass(frozen=True, slots=True)
class QueryFrontendPorts:
    """The ports of one query frontend beyond the REST port all of them share."""

    rpc_port: int
    # Its own REST listener (``--instance_port``); None when it is the only query frontend.
    instance_port: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {"rpc_port": self.rpc_port, "instance_port": self.instance_port}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> QueryFrontendPorts:
        instance = data.get("instance_port")
        return cls(int(data["rpc_port"]), None if instance is None else int(instance))


class ReplicaState:
    """What the supervisor last decided about a replica (``ReplicaRecord.state``)."""

    RUNNING: Final = "running"
    RESTARTING: Final = "restarting"  # exited; started again after its back-off
    CRASH_LOOP: Final = "crash-loop"  # exited too often right after starting; not restarted


@dataclass(slots=True)
class ReplicaRecord:
    """One model replica process, and what supervision did to it."""

    name: str
    version: str
    replica_name: str
    image: str
    input_type: str
    process: ProcessHandle
    launch: Launch | None = None
    state: str = ReplicaState.RUNNING
    restarts: int = 0
    last_exit: str | None = None  # e.g. "exit status 1 after 0.8 s", "killed by SIGKILL after 12 s"
    frontend: int = 0  # the query frontend (index) whose RPC port it serves

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "replica_name": self.replica_name,
            "image": self.image,
            "input_type": self.input_type,
            "process": self.process.to_json(),
            "launch": None if self.launch is None else self.launch.to_json(),
            "state": self.state,
            "restarts": self.restarts,
            "last_exit": self.last_exit,
            "frontend": self.frontend,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ReplicaRecord:
        return cls(
            str(data["name"]), str(data["version"]), str(data["replica_name"]),
            str(data["image"]), str(data["input_type"]), ProcessHandle.from_json(data["process"]),
            Launch.from_json(data.get("launch")), str(data.get("state", ReplicaState.RUNNING)),
            int(data.get("restarts", 0)), data.get("last_exit"), int(data.get("frontend", 0)),
        )


@dataclass(slots=True)
class ClusterRecord:
    """What ``cluster.json`` holds."""

    cluster_name: str
    host: str
    redis_ip: str
    redis_port: int
    query_port: int
    management_port: int
    rpc_port: int
    core: dict[str, ProcessHandle] = field(default_factory=dict)
    replicas: list[ReplicaRecord] = field(default_factory=list)
    next_replica_index: int = 0
    redis_password: str | None = None
    admin_token: str | None = None
    # How each core process (by role) was started, for the supervisor; restarts per role.
    launches: dict[str, Launch] = field(default_factory=dict)
    core_restarts: dict[str, int] = field(default_factory=dict)
    # Names this start of the cluster: copied logs carry it, so runs never overwrite each other.
    run_id: str = field(default_factory=new_run_id)
    # One entry per query frontend (index = role suffix); empty in records of older versions.
    query_frontends: list[QueryFrontendPorts] = field(default_factory=list)

    @property
    def frontends(self) -> list[QueryFrontendPorts]:
        """Every query frontend's ports (one frontend on ``rpc_port`` in an older record)."""
        return self.query_frontends or [QueryFrontendPorts(self.rpc_port)]

    def to_json(self) -> dict[str, Any]:
        return {
            "cluster_name": self.cluster_name,
            "run_id": self.run_id,
            "host": self.host,
            "redis_ip": self.redis_ip,
            "redis_port": self.redis_port,
            "query_port": self.query_port,
            "management_port": self.management_port,
            "rpc_port": self.rpc_port,
            "core": {role: handle.to_json() for role, handle in self.core.items()},
            "replicas": [replica.to_json() for replica in self.replicas],
            "next_replica_index": self.next_replica_index,
            "redis_password": self.redis_password,
            "admin_token": self.admin_token,
            "launches": {role: launch.to_json() for role, launch in self.launches.items()},
            "core_restarts": dict(self.core_restarts),
            "query_frontends": [ports.to_json() for ports in self.query_frontends],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ClusterRecord:
        return cls(
            cluster_name=str(data["cluster_name"]),
            host=str(data["host"]),
            redis_ip=str(data["redis_ip"]),
            redis_port=int(data["redis_port"]),
            query_port=int(data["query_port"]),
            management_port=int(data["management_port"]),
            rpc_port=int(data["rpc_port"]),
            core={role: ProcessHandle.from_json(h) for role, h in data.get("core", {}).items()},
            replicas=[ReplicaRecord.from_json(r) for r in data.get("replicas", [])],
            next_replica_index=int(data.get("next_replica_index", 0)),
            run_id=str(data.get("run_id") or new_run_id()),
            redis_password=data.get("redis_password"),
            admin_token=data.get("admin_token"),
            launches={
                role: launch
                for role, raw in data.get("launches", {}).items()
                if (launch := Launch.from_json(raw)) is not None
            },
            core_restarts={str(k): int(v) for k, v in data.get("core_restarts", {}).items()},
            query_frontends=[QueryFrontendPorts.from_json(f) for f in data.get("query_frontends", [])],
        )

    @classmethod
    def load(cls, paths: ClusterPaths) -> ClusterRecord | None:
        data = _read_json(paths.record_file)
        return None if data is None else cls.from_json(data)

    def save(self, paths: ClusterPaths) -> None:
        _write_json(paths.record_file, self.to_json())


@dataclass(frozen=True, slots=True)
class ImageRecord:
    """A locally built model "image": the model directory and the interpreter that serves it."""

    base_image: str
    model_path: str
    python: str | None  # a venv's interpreter when pkgs_to_install was given

    @staticmethod
    def load_all(paths: ClusterPaths) -> dict[str, ImageRecord]:
        data = _read_json(paths.images_file) or {}
        return {
            tag: ImageRecord(v["base_image"], v["model_path"], v.get("python")) for tag, v in data.items()
        }

    @staticmethod
    def save_all(paths: ClusterPaths, images: dict[str, ImageRecord]) -> None:
        _write_json(
            paths.images_file,
            {tag: {"base_image": i.base_image, "model_path": i.model_path, "python": i.python}
             for tag, i in images.items()},
        )


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None


def _write_json(path: Path, data: Any) -> None:
    """Write atomically (temp file + rename) so a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # mkstemp creates the file mode 0600: the record holds the cluster's secrets.
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as tmp:
            json.dump(data, tmp, indent=2)
        os.replace(tmp_name, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp_name)
        raise
