"""PyTorch container: serves ``func(model, inputs)`` saved by ``deployers.pytorch``.

Model directory: ``func.pkl``, ``pytorch_model.pkl`` (the module object, cloudpickle) and
``pytorch_weights.pkl`` (its ``state_dict``, ``torch.save``), loaded back into the module.
Run ``python -m containers.python.pytorch_container``.
"""

from __future__ import annotations

from typing import Any, Final

import cloudpickle

from containers.python.inputs import ModelInputs
from containers.python.model_loading import FunctionModelContainer, load_model_file, run_model_container

__all__ = ["MODEL_FILE", "WEIGHTS_FILE", "PyTorchContainer", "main"]

MODEL_FILE: Final = "pytorch_model.pkl"
WEIGHTS_FILE: Final = "pytorch_weights.pkl"


def _load_module(path: str) -> Any:
    with open(path, "rb") as file:
        return cloudpickle.load(file)


class PyTorchContainer(FunctionModelContainer):
    def __init__(self, path: str, input_type: str) -> None:
        import torch

        super().__init__(path, input_type)
        self.model = load_model_file(path, MODEL_FILE, _load_module)
        # weights_only: a state_dict needs no arbitrary unpickling.
        state = load_model_file(path, WEIGHTS_FILE, lambda p: torch.load(p, weights_only=True))
        self.model.load_state_dict(state)

    def call(self, inputs: ModelInputs) -> object:
        return self.predict_func(self.model, inputs)


def main() -> None:
    run_model_container(PyTorchContainer, "Starting PyTorchContainer container")


if __name__ == "__main__":
    main()
