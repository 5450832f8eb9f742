"""Test helpers: a real redis-server on loopback; the process helpers come from ``tools.processes``."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tools.processes import free_port, stop_process, wait_for_port

__all__ = [
    "PYTHON",
    "REPO_ROOT",
    "RedisServer",
    "free_port",
    "start_redis",
    "stop_process",
    "tiny_wheel",
    "wait_for_port",
    "wait_until",
    "wait_until_async",
]

REPO_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class RedisServer:
    host: str
    port: int
    process: subprocess.Popen[bytes]

    def flushall(self) -> None:
        import redis

        client = redis.Redis(host=self.host, port=self.port)
        try:
            client.flushall()
        finally:
            client.close()


def start_redis(tmp_dir: Path, port: int | None = None, extra_args: Sequence[str] = ()) -> RedisServer:
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail("redis-server is not installed; run `make install`")
    port = port or free_port()
    process = subprocess.Popen(
        [
            binary,
            "--port", str(port),
            "--bind", "127.0.0.1",
            "--save", "",
            "--appendonly", "no",
            "--dir", str(tmp_dir),
            *extra_args,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_for_port(port)
    return RedisServer("127.0.0.1", port, process)


PYTHON = sys.executable


def tiny_wheel(directory: Path, module: str, value: str) -> Path:
    """A pure-Python wheel of ``module`` (``VALUE = value``) built by hand: pip installs it without
    an index or a build step."""
    import base64
    import hashlib
    import zipfile

    dist = module.replace("_", "-")
    info = f"{module}-1.0.dist-info"
    files = {
        f"{module}.py": f"VALUE = {value!r}\n",
        f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n",
        f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: hand\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = []
    for name, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=").decode()
        record.append(f"{name},sha256={digest},{len(text.encode())}")
    record.append(f"{info}/RECORD,,")
    wheel = directory / f"{module}-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text)
        archive.writestr(f"{info}/RECORD", "\n".join(record) + "\n")
    return wheel


def wait_for(condition: Callable[[], Any], timeout_s: float, what: str) -> Any:
    """Poll ``condition`` until it returns something true, and return that (AssertionError naming
    ``what`` after ``timeout_s``)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if value := condition():
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")


async def wait_until(predicate: Callable[[], object], timeout_s: float = 5.0) -> None:
    """Poll ``predicate`` until true (TimeoutError after ``timeout_s``)."""
    async with asyncio.timeout(timeout_s):
        for _ in iter(int, 1):
            if predicate():
                return
            await asyncio.sleep(0.01)


async def wait_until_async(
    fetch: Callable[[], Awaitable[object]], expected: object, timeout_s: float = 5.0
) -> None:
    """Poll ``await fetch()`` until it equals ``expected``."""
    async with asyncio.timeout(timeout_s):
        for _ in iter(int, 1):
            if await fetch() == expected:
                return
            await asyncio.sleep(0.02)


@contextlib.contextmanager
def canned_http_server(status: int, body: bytes) -> Iterator[int]:
    """A loopback HTTP server answering every GET and POST with ``status`` and the JSON ``body``
    (a stranger on a port, a frontend's error reply); yields its port."""
    import http.server
    import threading

    class Canned(http.server.BaseHTTPRequestHandler):
        def _answer(self) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = _answer

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Canned)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()
