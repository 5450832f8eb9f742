"""The model gateway as the composition root builds it, and the processor's way of asking it."""

from __future__ import annotations

import asyncio

from clipper_core.query_frontend.gateway import ModelGateway
from clipper_core.query_frontend.metrics import FrontendMetrics
from clipper_core.query_frontend.server import start_gateway
from clipper_core.settings import QuerySettings
from clipper_core.state import ModelId, StateStore


async def start(store: StateStore, **settings: float) -> ModelGateway:
    """``server.start_gateway`` on loopback with a free RPC port and a 1 MiB cache."""
    return await start_gateway(
        store,
        QuerySettings(rpc_host="127.0.0.1", rpc_service_port=0, prediction_cache_size=1 << 20, **settings),
        FrontendMetrics(),
    )


async def predict(gateway: ModelGateway, model: ModelId, payload: bytes, deadline: float) -> bytes:
    """The processor's two calls (a cache hit, else the shared future of the query), waited for
    without a deadline of our own so that the gateway's own outcomes are what the test sees."""
    output = gateway.cached_output(model, payload)
    if output is not None:
        return output
    return await asyncio.shield(gateway.submit(model, payload, deadline))
