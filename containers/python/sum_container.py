"""Test model container: the sum of each input's elements (byte values for bytes, the
length for strings), as text. Run ``python -m containers.python.sum_container``.
"""

from __future__ import annotations

import numpy as np

from containers.python.inputs import ModelInputs
from containers.python.rpc import ModelContainerBase, RPCService, configure_logging

__all__ = ["SumContainer", "main"]


class SumContainer(ModelContainerBase):
    def _sum_numbers(self, inputs: ModelInputs) -> list[str]:
        return [str(np.asarray(x).sum().item()) for x in inputs]

    predict_ints = _sum_numbers
    predict_floats = _sum_numbers
    predict_doubles = _sum_numbers

    def predict_bytes(self, inputs: ModelInputs) -> list[str]:
        return [str(sum(x)) for x in inputs]

    def predict_strings(self, inputs: ModelInputs) -> list[str]:
        return [str(len(x)) for x in inputs]


def main() -> None:
    configure_logging()
    RPCService().start(SumContainer())


if __name__ == "__main__":
    main()
