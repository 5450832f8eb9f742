"""Liveness of local processes: what the supervisor reads to decide a process has ended and how."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import psutil

from clipper_admin.local.processes import ProcessHandle, spawn, stop_processes
from tests.helpers import wait_for

# The main thread ends with pthread_exit while a second thread goes on and later exits the
# process with status 3: meanwhile the kernel shows the process as a zombie (the state of its
# main thread) though it still runs, and waitpid cannot reap it yet.
_MAIN_THREAD_ENDS_FIRST = """
import ctypes, os, threading, time
def finish():
    time.sleep(1.5)
    os._exit(3)
threading.Thread(target=finish).start()
ctypes.CDLL(None).pthread_exit(None)
"""


def test_a_child_whose_main_thread_ended_is_alive_until_it_can_be_reaped(tmp_path: Path) -> None:
    handle = spawn([sys.executable, "-c", _MAIN_THREAD_ENDS_FIRST], tmp_path / "child.log")
    try:
        wait_for(
            lambda: psutil.Process(handle.pid).status() == psutil.STATUS_ZOMBIE, 10, "the main thread to end"
        )
        # The state a zombie check alone would call dead, with no exit status to report.
        assert handle.is_alive()
        assert handle.exit_code() is None
        wait_for(lambda: not handle.is_alive(), 10, "the second thread to end the process")
        assert handle.exit_code() == 3
    finally:
        stop_processes([handle], graceful=False)


def test_a_process_someone_else_started_is_matched_by_its_create_time(tmp_path: Path) -> None:
    # Started outside spawn(): as the supervisor sees a replica the deploying process started.
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        started = psutil.Process(other.pid).create_time()
        log = str(tmp_path / "other.log")
        assert ProcessHandle(other.pid, started, log).is_alive()
        # btime may step by a second between two readings: still the same process...
        assert ProcessHandle(other.pid, started - 1.0, log).is_alive()
        # ...while a start time further off means the pid now names another process.
        assert not ProcessHandle(other.pid, started - 5.0, log).is_alive()
        assert ProcessHandle(other.pid, started, log).exit_code() is None  # no status to read
        other.kill()
        other.wait()
        assert not ProcessHandle(other.pid, started, log).is_alive()
    finally:
        other.kill()
        other.wait()
