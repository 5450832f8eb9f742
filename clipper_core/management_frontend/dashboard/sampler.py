"""The dashboard's ring buffer: scrapes of the query frontend's ``/metrics`` every few seconds.

One background task per management frontend (only when it knows the query frontends'
addresses) reads each one's ``/metrics`` (Prometheus text) and ``/healthz`` and keeps the last
``horizon_s`` seconds of scrapes; the dashboard's JSON endpoints read the buffer and never
wait on a query frontend.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import aiohttp

from clipper_core.management_frontend.dashboard.scrape import Scrape, merge_scrapes, parse_scrape

__all__ = ["DEFAULT_HORIZON_S", "DEFAULT_INTERVAL_S", "FrontendStatus", "MetricsSampler"]

logger = logging.getLogger(__name__)

DEFAULT_INTERVAL_S: Final = 2.0
DEFAULT_HORIZON_S: Final = 300.0
SCRAPE_TIMEOUT_S: Final = 2.0
# Prometheus scrapers ask for text/plain; the query frontend answers others with its JSON report.
_PROMETHEUS_ACCEPT: Final = "text/plain;version=0.0.4"


@dataclass(slots=True, frozen=True)
class FrontendStatus:
    """What the last attempt found for one query frontend: reachable or not (and why), and its
    ``/healthz`` status."""

    address: str
    reachable: bool = False
    health: str | None = None
    error: str | None = None
    checked_at_s: float | None = None  # epoch seconds


@dataclass(slots=True, frozen=True)
class _Read:
    status: FrontendStatus
    text: str | None


def _address_text(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class MetricsSampler:
    """Scrapes ``http://<host>:<port>/metrics`` of each query frontend every ``interval_s`` into
    a ring of ``horizon_s``. Several frontends (sharing a REST port, each read on its own
    address) are summed into one scrape, as ``sum by (app)`` would in Prometheus; a round in
    which one of them cannot be read is left out, so that no counter seems to go back."""

    def __init__(
        self,
        addresses: Sequence[tuple[str, int]],
        interval_s: float = DEFAULT_INTERVAL_S,
        horizon_s: float = DEFAULT_HORIZON_S,
    ) -> None:
        if not addresses:
            raise ValueError("no query frontend to sample")
        self.interval_s = interval_s
        self.horizon_s = horizon_s
        self.scrapes: deque[Scrape] = deque(maxlen=max(2, int(horizon_s / interval_s) + 1))
        self.statuses = [FrontendStatus(_address_text(host, port)) for host, port in addresses]
        self._session: aiohttp.ClientSession | None = None

    async def _read(self, session: aiohttp.ClientSession, before: FrontendStatus) -> _Read:
        base = f"http://{before.address}"
        try:
            async with session.get(f"{base}/metrics", headers={"Accept": _PROMETHEUS_ACCEPT}) as response:
                response.raise_for_status()
                text = await response.text()
            async with session.get(f"{base}/healthz") as response:
                health = (await response.json(content_type=None)).get("status")
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            if before.reachable or before.error is None:
                logger.warning("Query frontend %s: /metrics unreadable (%s)", base, error)
            return _Read(FrontendStatus(before.address, False, None, error, time.time()), None)
        if not before.reachable:
            logger.info("Query frontend %s: sampling /metrics every %.1f s", base, self.interval_s)
        return _Read(FrontendStatus(before.address, True, str(health), None, time.time()), text)

    async def sample_once(self) -> None:
        """One round: every frontend read at once; a complete round is appended to the ring."""
        session = self._session
        if session is None:
            raise RuntimeError("run() the sampler first")
        reads = await asyncio.gather(*(self._read(session, status) for status in self.statuses))
        at_s, wall_s = time.monotonic(), time.time()
        statuses = [read.status for read in reads]
        scrapes: list[Scrape] = []
        for index, read in enumerate(reads):
            if read.text is None:
                continue
            try:
                scrapes.append(parse_scrape(read.text, at_s, wall_s))
            # ValueError, KeyError: not the exposition format, or a family without its label.
            except (ValueError, KeyError) as exc:
                status = read.status
                error = f"/metrics is not Prometheus text: {type(exc).__name__}: {exc}"
                if self.statuses[index].error != error:
                    logger.warning("Query frontend %s: %s", status.address, error)
                statuses[index] = FrontendStatus(status.address, False, None, error, status.checked_at_s)
        self.statuses = statuses
        if len(scrapes) == len(reads):
            self.scrapes.append(merge_scrapes(scrapes))

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
