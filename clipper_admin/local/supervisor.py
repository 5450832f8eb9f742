"""``python -m clipper_admin.local.supervisor``: starts again what of a local cluster exits.

One supervisor process per cluster, started by ``LocalContainerManager.start_clipper`` (so it
keeps working whichever Python process later uses ``connect()``) and stopped first by
``stop_all``. Every tick it takes the cluster's lock, reads ``cluster.json`` and looks at every
model replica and core process (Redis, the management and every query frontend) recorded there.
One that has exited is started again with the command and environment it was first started
with, after a back-off that
doubles with each failure in a row (a failure counts towards a crash loop when the process
exited within ``STABLE_AFTER_S`` of its start). After ``max_restarts`` such failures in a row a
process is left down and marked ``crash-loop`` in the record, with its last exit, and an error
is logged; ``set_num_replicas`` for that model version starts afresh. The supervisor exits when
the record is gone (the cluster was stopped) or names another supervisor.

Everything it decides is written to ``cluster.json`` (``state``, ``restarts`` and ``last_exit``
of each replica, ``core_restarts``) and logged to ``<log_dir>/supervisor.log``.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from clipper_admin.local.cluster_record import ClusterRecord, ReplicaRecord, ReplicaState
from clipper_admin.local.local_container_manager import SUPERVISOR_ROLE, LocalContainerManager
from clipper_admin.local.processes import ProcessHandle

__all__ = ["STABLE_AFTER_S", "Supervisor", "main"]

logger = logging.getLogger("clipper_admin.local.supervisor")

TICK_S: Final = 0.25
# A process that ran at least this long before it exited was not crash-looping.
STABLE_AFTER_S: Final = 10.0
MAX_BACKOFF_S: Final = 30.0


@dataclass(slots=True)
class _Exited:
    """A process seen exited and waiting for its back-off to end."""

    restart_at: float
    how: str


def describe_exit(handle: ProcessHandle) -> str:
    """``exit status 1 after 0.8 s`` / ``killed by SIGKILL after 12.0 s`` / ``exited after ...``."""
    lived_s = max(0.0, time.time() - handle.create_time)
    code = handle.exit_code()
    if code is None:
        how = "exited"  # not our child (started by the manager's process): no status to read
    elif code < 0:
        try:
            how = f"killed by {signal.Signals(-code).name}"
        except ValueError:
            how = f"killed by signal {-code}"
    else:
        how = f"exit status {code}"
    return f"{how} after {lived_s:.1f} s"


class Supervisor:
    """Restarts exited processes of one cluster with back-off; gives up on crash loops."""

    def __init__(self, manager: LocalContainerManager, backoff_s: float, max_restarts: int) -> None:
        self.manager = manager
        self.backoff_s = backoff_s
        self.max_restarts = max_restarts
        self._exited: dict[str, _Exited] = {}
        self._failures: dict[str, int] = {}

    def run(self) -> None:
        logger.info(
            "Supervising cluster %s (pid %s; back-off %.2f s doubling, crash loop after %d quick "
            "failures)", self.manager.cluster_name, os.getpid(), self.backoff_s, self.max_restarts,
        )
        while self.tick():
            time.sleep(TICK_S)
        logger.info("Cluster %s is no longer recorded as supervised by this process; exiting",
                    self.manager.cluster_name)

    def tick(self) -> bool:
        """One look at every process; False once this supervisor has nothing left to do."""
        paths = self.manager.paths
        with paths.locked():
            record = ClusterRecord.load(paths)
            if record is None:
                return False
            me = record.core.get(SUPERVISOR_ROLE)
            if me is None or me.pid != os.getpid():
                return False
            changed = False
            for role in [r for r in record.core if r != SUPERVISOR_ROLE and r in record.launches]:
                changed |= self._look_at_core(record, role)
            for replica in record.replicas:
                if replica.launch is not None and replica.state != ReplicaState.CRASH_LOOP:
                    changed |= self._look_at_replica(replica)
            known = set(record.core) | {r.replica_name for r in record.replicas}
            for key in [k for k in self._exited if k not in known]:
                del self._exited[key]  # removed on purpose (scaled down, stopped)
            if changed:
                record.save(paths)
        return True

    # -- decisions ------------------------------------------------------------------------------

    def _due(self, key: str, handle: ProcessHandle, what: str) -> tuple[str, str | None]:
        """``("alive"|"waiting"|"restart"|"give-up", how it exited)`` for one process."""
        if handle.is_alive():
            self._exited.pop(key, None)
            return "alive", None
        exited = self._exited.get(key)
        if exited is None:
            how = describe_exit(handle)
            lived_s = time.time() - handle.create_time
            failures = self._failures.get(key, 0) + 1 if lived_s < STABLE_AFTER_S else 1
            self._failures[key] = failures
            if failures > self.max_restarts:
                logger.error(
                    "%s (pid %s) %s: crash loop (%d failures in a row, each within %.0f s of its "
                    "start); not starting it again. Log: %s",
                    what, handle.pid, how, failures, STABLE_AFTER_S, handle.log_path,
                )
                return "give-up", how
            delay_s = min(self.backoff_s * 2 ** (failures - 1), MAX_BACKOFF_S)
            logger.warning(
                "%s (pid %s) %s; starting it again in %.2f s (failure %d in a row). Log: %s",
                what, handle.pid, how, delay_s, failures, handle.log_path,
            )
            self._exited[key] = _Exited(time.monotonic() + delay_s, how)
            return "waiting", how
        if time.monotonic() < exited.restart_at:
            return "waiting", exited.how
        del self._exited[key]
        return "restart", exited.how

    def _look_at_replica(self, replica: ReplicaRecord) -> bool:
        assert replica.launch is not None
        what = f"Model replica {replica.replica_name}"
        verdict, how = self._due(replica.replica_name, replica.process, what)
        if verdict == "alive":
            return False
        replica.last_exit = how
        if verdict == "give-up":
            replica.state = ReplicaState.CRASH_LOOP
        elif verdict == "waiting":
            replica.state = ReplicaState.RESTARTING
        else:
            self.manager.ready_file(replica.replica_name)  # removed: readiness is the new process's
            replica.process = self.manager.respawn(replica.replica_name, replica.launch)
            replica.restarts += 1
            replica.state = ReplicaState.RUNNING
            logger.info("Model replica %s started again (pid %s; restart %d)",
                        replica.replica_name, replica.process.pid, replica.restarts)
        return True

    def _look_at_core(self, record: ClusterRecord, role: str) -> bool:
        what = role.replace("_", " ").capitalize()
        verdict, _ = self._due(role, record.core[role], what)
        if verdict != "restart":
            return False
        record.core[role] = self.manager.respawn(role, record.launches[role])
        record.core_restarts[role] = record.core_restarts.get(role, 0) + 1
        logger.info("%s started again (pid %s; restart %d)", what, record.core[role].pid,
                    record.core_restarts[role])
        return True


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m clipper_admin.local.supervisor", description=__doc__)
    parser.add_argument("--cluster-name", required=True)
    parser.add_argument("--clipper-home", required=True)
    parser.add_argument("--log-dir", required=True)
    parser.add_argument("--backoff-s", type=float, default=0.5)
    parser.add_argument("--max-restarts", type=int, default=5)
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    manager = LocalContainerManager(
        cluster_name=args.cluster_name, clipper_home=args.clipper_home, log_dir=args.log_dir
    )
    Supervisor(manager, args.backoff_s, args.max_restarts).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
