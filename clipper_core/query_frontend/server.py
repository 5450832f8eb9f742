"""Composition root of the query frontend: builds every object, wires them, starts and stops them.

Start-up order (core spec 5.3-5.4): connect to Redis (retrying), ``CONFIG SET
notify-keyspace-events AKE``, start the model gateway (RPC service, cache, batchers), subscribe
to keyspace events, *then* load the state, then apply the events that arrived meanwhile (they
only trigger idempotent re-reads), and finally open the REST port. Tear-down runs in reverse.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import resource
from collections.abc import AsyncIterator
from typing import Any, Final

from clipper_core.query_frontend.connections import ConnectionLimits, HttpServer
from clipper_core.query_frontend.freshness import StateBarrier
from clipper_core.query_frontend.gateway import ModelGateway
from clipper_core.query_frontend.handlers import QueryHandlers, QueryRoutes
from clipper_core.query_frontend.metrics import FrontendMetrics
from clipper_core.query_frontend.processor import QueryProcessor
from clipper_core.query_frontend.registry import Registry
from clipper_core.query_frontend.rpc_service import RpcService
from clipper_core.query_frontend.selection import PolicyStates
from clipper_core.rpc import CurveKeys
from clipper_core.settings import QuerySettings
from clipper_core.state import Barrier, Db, KeyspaceWatch, Resync, StateChange, StateStore

__all__ = ["QueryFrontend", "serve", "start_gateway"]

logger = logging.getLogger(__name__)

# DB 3 (containers) belongs to the gateway's RPC service; the registry needs the rest.
REGISTRY_DBS: Final = (Db.MODEL, Db.APPLICATION, Db.METADATA, Db.APP_MODEL_LINKS)
SUBSCRIBE_TIMEOUT_S: Final = 30.0
STOP_ATTEMPTS: Final = 50
STOP_ATTEMPT_S: Final = 0.1
# File descriptors left for Redis, the RPC socket, model containers and logs.
FDS_KEPT_FREE: Final = 256


async def _after(
    loaded: asyncio.Event,
    changes: AsyncIterator[StateChange | Resync | Barrier],
    barrier: StateBarrier,
) -> AsyncIterator[StateChange | Resync]:
    """Hold events back until the initial load is installed, so none is lost or reordered;
    release barriers once everything before them has been applied.

    The consumer applies each change before it asks for the next, so when a :class:`Barrier`
    (or the end of a resync's reload) comes through here, everything before it is applied.
    """
    async for change in changes:
        if not loaded.is_set():
            await loaded.wait()
        if isinstance(change, Barrier):
            barrier.reached(change.token)
            continue
        yield change
        if isinstance(change, Resync):
            barrier.release_all()


def _log_task_end(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        logger.error("Keyspace watcher stopped", exc_info=task.exception())


async def start_gateway(store: StateStore, settings: QuerySettings, metrics: FrontendMetrics) -> ModelGateway:
    """The model side: the RPC service and the gateway over it, wired together and started.

    Closing the gateway closes the RPC service. Uses ``rpc_host``, ``rpc_service_port``,
    ``prediction_cache_size``, ``batch_wait_s``, ``batch_response_grace_s``,
    ``max_queue_length`` and ``inactivity_timeout_s`` of ``settings``.
    """
    rpc = RpcService(
        store,
        settings.rpc_host,
        settings.rpc_service_port,
        inactivity_timeout_s=settings.inactivity_timeout_s,
        max_message_bytes=settings.rpc_max_message_bytes,
        spin_max_s=settings.rpc_spin_us / 1e6,
        curve=CurveKeys.from_secret(settings.rpc_secret) if settings.rpc_secret else None,
    )
    gateway = ModelGateway(
        store,
        rpc,
        settings.prediction_cache_size,
        metrics,
        batch_wait_s=settings.batch_wait_s,
        batch_response_grace_s=settings.batch_response_grace_s,
        max_queue_length=settings.max_queue_length,
    )
    rpc.listener = gateway
    rpc.on_send_delay = metrics.record_rpc_queueing
    metrics.rpc_messages = lambda: rpc.message_counts
    gateway.start()
    try:
        await rpc.start()
    except BaseException:
        await gateway.aclose()
        raise
    return gateway


def _connection_limits(settings: QuerySettings) -> ConnectionLimits:
    """The HTTP connection limits; the cap is lowered below the open-files limit if needed."""
    max_connections = settings.max_connections
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and max_connections > soft - FDS_KEPT_FREE > 0:
        logger.warning(
            "--max_connections %d is above the open-files limit (ulimit -n %d); serving at most %d",
            max_connections, soft, soft - FDS_KEPT_FREE,
        )
        max_connections = soft - FDS_KEPT_FREE
    return ConnectionLimits(
        timeout_request_s=float(settings.timeout_request),
        timeout_content_s=float(settings.timeout_content),
        keepalive_timeout_s=settings.keepalive_timeout_s,
        max_connections=max_connections,
    )


class QueryFrontend:
    """A running query frontend; use :meth:`start` and :meth:`aclose` (or ``async with``)."""

    def __init__(self, settings: QuerySettings) -> None:
        self.settings = settings
        self._stack = contextlib.AsyncExitStack()
        self._http: HttpServer | None = None
        self._ports: list[int] = []
        self.store: StateStore | None = None
        self.gateway: ModelGateway | None = None
        self.registry: Registry | None = None
        self.metrics: FrontendMetrics | None = None
        self.processor: QueryProcessor | None = None
        self._watcher: asyncio.Task[None] | None = None

    @classmethod
    async def start(cls, settings: QuerySettings) -> QueryFrontend:
        """Build and start everything; on failure, tear down what was started and re-raise.

        Raises:
            StateError: Redis unreachable or keyspace notifications cannot be enabled.
        """
        frontend = cls(settings)
        try:
            await frontend._start()
        except BaseException:
            await frontend.aclose()
            raise
        return frontend

    async def _start(self) -> None:
        settings = self.settings
        store = self.store = await StateStore.connect(settings.redis)
        self._stack.push_async_callback(store.aclose)
        await store.enable_keyspace_notifications()

        metrics = self.metrics = FrontendMetrics()
        gateway = self.gateway = await start_gateway(store, settings, metrics)
        self._stack.push_async_callback(gateway.aclose)

        policy_states = PolicyStates(store)

        def app_removed(name: str) -> None:
            metrics.remove_app(name)
            policy_states.forget_app(name)

        registry = self.registry = Registry(
            store, gateway, on_app_added=metrics.add_app, on_app_removed=app_removed
        )
        subscribed, loaded = asyncio.Event(), asyncio.Event()
        watch = KeyspaceWatch(store, REGISTRY_DBS)
        barrier = StateBarrier(watch.ping)
        changes = _after(loaded, watch.changes(ready=subscribed), barrier)
        watcher = self._watcher = asyncio.create_task(
            registry.follow(changes), name="query-frontend-keyspace-watcher"
        )
        watcher.add_done_callback(_log_task_end)
        self._stack.push_async_callback(self._stop_task, watcher)
        await asyncio.wait_for(subscribed.wait(), SUBSCRIBE_TIMEOUT_S)
        await registry.reload()
        loaded.set()

        processor = self.processor = QueryProcessor(
            registry, gateway, metrics, barrier, policy_states=policy_states
        )
        routes = QueryRoutes(
            QueryHandlers(
                processor,
                metrics,
                health=self._health,
                max_inputs_per_request=settings.max_inputs_per_request,
            )
        )
        # Our own HTTP/1.1 server (connections.py), not aiohttp's: see that module for why.
        # No access log: one INFO line per query is too costly on the hot path.
        http = self._http = HttpServer(routes, _connection_limits(settings), settings.max_request_bytes)
        self._stack.push_async_callback(http.aclose)
        # reuse_port: several query frontends share the REST port, the kernel spreads
        # connections over them; each also serves its instance port alone (health, metrics).
        self._ports.append(await http.listen(settings.host, settings.port, reuse_port=settings.reuse_port))
        if settings.instance_port is not None:
            self._ports.append(await http.listen(settings.host, settings.instance_port))
        logger.info(
            "Query frontend listening on %s:%d%s%s (RPC on %s:%d)",
            settings.host,
            self.port,
            " (shared, SO_REUSEPORT)" if settings.reuse_port else "",
            "" if settings.instance_port is None else f" and on its own port {self.instance_port}",
            settings.rpc_host,
            settings.rpc_service_port,
        )

    @staticmethod
    async def _stop_task(task: asyncio.Task[None]) -> None:
        # redis-py's pub/sub read can swallow a cancellation that lands at the wrong moment
        # (redis/redis-py#2028-style races), leaving the task listening; so cancel again until
        # it really ends, and never wait for it unbounded.
        for _ in range(STOP_ATTEMPTS):
            task.cancel()
            done, _pending = await asyncio.wait({task}, timeout=STOP_ATTEMPT_S)
            if done:
                return
        logger.warning("The keyspace watcher did not stop after %d cancellations", STOP_ATTEMPTS)

    def _health(self) -> dict[str, Any]:
        """``healthy`` is False once the keyspace watcher has died (config would go stale)."""
        return {
            "healthy": self._watcher is not None and not self._watcher.done(),
            # Lets a manager tell its own process from another one that took the port.
            "pid": os.getpid(),
            "applications": len(self.registry.app_names()) if self.registry else 0,
        }

    @property
    def port(self) -> int:
        """The bound REST port (differs from the setting when that is 0)."""
        if not self._ports:
            raise RuntimeError("the query frontend is not listening")
        return self._ports[0]

    @property
    def instance_port(self) -> int | None:
        """The bound instance port (``--instance_port``), or None without one."""
        if self.settings.instance_port is None:
            return None
        if len(self._ports) < 2:
            raise RuntimeError("the query frontend is not listening")
        return self._ports[1]

    async def aclose(self) -> None:
        """Stop serving HTTP, then the watcher, the gateway and the Redis clients."""
        await self._stack.aclose()

    async def __aenter__(self) -> QueryFrontend:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()


async def serve(settings: QuerySettings, stop: asyncio.Event | None = None) -> None:
    """Run a query frontend until ``stop`` is set (or the task is cancelled)."""
    async with await QueryFrontend.start(settings):
        # Everything allocated at start-up lives for the process: moving it out of the
        # collector's generations keeps full collections (tens of ms here) off the p99.
        gc.freeze()
        await (stop or asyncio.Event()).wait()
        logger.info("Query frontend shutting down")
