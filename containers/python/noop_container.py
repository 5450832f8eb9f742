"""No-op model container: answers ``"1.0"`` for every input; needs no model files.

The benchmark model for the serving path. Run ``python -m containers.python.noop_container``.
"""

from __future__ import annotations

from containers.python.inputs import ModelInputs
from containers.python.rpc import ModelContainerBase, RPCService, configure_logging

__all__ = ["NoopContainer", "main"]


class NoopContainer(ModelContainerBase):
    def _predict(self, inputs: ModelInputs) -> list[str]:
        return ["1.0"] * len(inputs)

    predict_ints = _predict
    predict_floats = _predict
    predict_doubles = _predict
    predict_bytes = _predict
    predict_strings = _predict


def main() -> None:
    configure_logging()
    RPCService().start(NoopContainer())


if __name__ == "__main__":
    main()
