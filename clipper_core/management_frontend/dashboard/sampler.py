"""The dashboard's ring buffer: scrapes of the query frontend's ``/metrics`` every few seconds.

One background task per management frontend (only when it knows the query frontend's address)
reads ``/metrics`` (Prometheus text) and ``/healthz`` and keeps the last ``horizon_s`` seconds
of scrapes; the dashboard's JSON endpoints read the buffer and never wait on the query frontend.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from dataclasses import dataclass
from typing import Final

import aiohttp

from clipper_core.management_frontend.dashboard.scrape import Scrape, parse_scrape

__all__ = ["DEFAULT_HORIZON_S", "DEFAULT_INTERVAL_S", "FrontendStatus", "MetricsSampler"]

logger = logging.getLogger(__name__)

DEFAULT_INTERVAL_S: Final = 2.0
DEFAULT_HORIZON_S: Final = 300.0
SCRAPE_TIMEOUT_S: Final = 2.0
# Prometheus scrapers ask for text/plain; the query frontend answers others with its JSON report.
_PROMETHEUS_ACCEPT: Final = "text/plain;version=0.0.4"


@dataclass(slots=True, frozen=True)
class FrontendStatus:
    """What the last attempt found: reachable or not (and why), and the ``/healthz`` status."""

    address: str
    reachable: bool = False
    health: str | None = None
    error: str | None = None
    checked_at_s: float | None = None  # epoch seconds


class MetricsSampler:
    """Scrapes ``http://<host>:<port>/metrics`` every ``interval_s`` into a ring of ``horizon_s``."""

    def __init__(
        self,
        host: str,
        port: int,
        interval_s: float = DEFAULT_INTERVAL_S,
        horizon_s: float = DEFAULT_HORIZON_S,
    ) -> None:
        address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        self._base = f"http://{address}"
        self.interval_s = interval_s
        self.horizon_s = horizon_s
        self.scrapes: deque[Scrape] = deque(maxlen=max(2, int(horizon_s / interval_s) + 1))
        self.status = FrontendStatus(address)
        self._session: aiohttp.ClientSession | None = None

    async def sample_once(self) -> None:
        """One scrape (appended to the ring) and one health check; failures only set the status."""
        session = self._session
        if session is None:
            raise RuntimeError("run() the sampler first")
        was_reachable = self.status.reachable
        try:
            async with session.get(
                f"{self._base}/metrics", headers={"Accept": _PROMETHEUS_ACCEPT}
            ) as response:
                response.raise_for_status()
                text = await response.text()
            scrape = parse_scrape(text, time.monotonic(), time.time())
            async with session.get(f"{self._base}/healthz") as response:
                health = (await response.json(content_type=None)).get("status")
        # ValueError, KeyError: not the exposition format, or a family without its label.
        except (aiohttp.ClientError, TimeoutError, ValueError, KeyError) as exc:
            error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            if was_reachable or self.status.error is None:
                logger.warning("Query frontend %s: /metrics unreadable (%s)", self._base, error)
            self.status = FrontendStatus(self.status.address, False, None, error, time.time())
            return
        if not was_reachable:
            logger.info("Query frontend %s: sampling /metrics every %.1f s", self._base, self.interval_s)
        self.scrapes.append(scrape)
        self.status = FrontendStatus(self.status.address, True, str(health), None, time.time())

    async def run(self) -> None:
        """Sample until cancelled."""
        timeout = aiohttp.ClientTimeout(total=SCRAPE_TIMEOUT_S)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            self._session = session
            try:
                while True:
                    started = time.monotonic()
                    await self.sample_once()
                    await asyncio.sleep(max(0.0, self.interval_s - (time.monotonic() - started)))
            finally:
                self._session = None

