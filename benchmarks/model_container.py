"""Serve one benchmark model through the project's container runtime.

Run: ``python -m benchmarks.model_container {noop|batch|slow}`` with the runtime's environment
(``CLIPPER_MODEL_NAME``, ``CLIPPER_MODEL_VERSION``, ``CLIPPER_IP``, ``CLIPPER_PORT``,
``CLIPPER_INPUT_TYPE``, ``CLIPPER_MODEL_PATH``, optional ``CLIPPER_READY_FILE``).
"""

from __future__ import annotations

import argparse
import logging

from benchmarks.models import MODELS


def _runtime() -> tuple[type, type]:
    try:
        from containers.python import ModelContainerBase, RPCService
    except ImportError:
        from containers.python.rpc import ModelContainerBase, RPCService
    return ModelContainerBase, RPCService


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("model", choices=sorted(MODELS))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    base, rpc_service = _runtime()
    # The runtime expects a ModelContainerBase; mix it in so the models stay runtime-free.
    model_class = type(f"Bench{MODELS[args.model].__name__}", (MODELS[args.model], base), {})
    rpc_service().start(model_class())


if __name__ == "__main__":
    main()
