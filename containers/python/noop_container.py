"""No-op model container: answers ``"1.0"`` for every input; needs no model files.

The benchmark model for the serving path. Run ``python -m containers.python.noop_container``.
"""

from __future__ import annotations

from containers.python.inputs import ModelInputs
from containers.python.rpc import AnyInputModelContainer, RPCService, configure_logging

__all__ = ["NoopContainer", "main"]


class NoopContainer(AnyInputModelContainer):
    def predict(self, inputs: ModelInputs) -> list[str]:
        return ["1.0"] * len(inputs)


def main() -> None:
    configure_logging()
    RPCService().start(NoopContainer())


if __name__ == "__main__":
    main()
