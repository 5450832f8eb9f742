"""The ceiling: a bare aiohttp server that answers every predict with a fixed prediction JSON.

It reads the request body (as any real server must) and answers with the bytes the query frontend
would send for a no-op model, so the only difference measured against it is the serving work.
Run: ``python -m benchmarks.reference_server --port 8080``.
"""

from __future__ import annotations

import argparse
import asyncio
import logging

from aiohttp import web

FIXED_PREDICTION: bytes = b'{"query_id":0,"output":1.0,"default":false}'


async def predict(request: web.Request) -> web.Response:
    """Consume the body, then return the fixed prediction."""
    await request.read()
    return web.Response(body=FIXED_PREDICTION, content_type="application/json")


def build_app() -> web.Application:
    app = web.Application()
    app.router.add_post("/{app}/predict", predict)
    app.router.add_post("/{app}/predict/", predict)
    return app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--no-uvloop", action="store_true", help="use the stdlib event loop")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    loop_factory = None
    if not args.no_uvloop:
        try:
            import uvloop

            loop_factory = uvloop.new_event_loop
        except ImportError:
            loop_factory = None
    # Same event loop as the frontends use when uvloop is installed, so the ratio is fair.
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        runner.run(_serve(args.host, args.port))


async def _serve(host: str, port: int) -> None:
    runner = web.AppRunner(build_app(), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


if __name__ == "__main__":
    main()
