"""Shared fixtures: a real redis-server on loopback and an environment for child processes."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.helpers import REPO_ROOT, RedisServer, start_redis, stop_process


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """One real redis-server for the session; tests call ``flushall`` or use ``redis_clean``."""
    server = start_redis(tmp_path_factory.mktemp("redis"))
    yield server
    stop_process(server.process)


@pytest.fixture
def redis_clean(redis_server: RedisServer) -> RedisServer:
    """The session's redis-server, emptied before the test."""
    redis_server.flushall()
    return redis_server


@pytest.fixture
def subprocess_env() -> dict[str, str]:
    """Environment for child processes that import this checkout."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH", "")]))
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env

