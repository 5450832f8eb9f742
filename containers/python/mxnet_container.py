"""MXNet container: serves ``func(module, inputs)`` saved by ``deployers.mxnet``.

Model directory: ``func.pkl``, the checkpoint ``mxnet_model-symbol.json`` /
``mxnet_model-0000.params`` (prefix ``mxnet_model``, epoch 0) and
``mxnet_model_metadata.json`` (``{"data_shapes": ...}``); the symbol is bound to those shapes in
an ``mx.mod.Module`` for inference. MXNet is retired upstream and its last release (1.9.1) needs
numpy < 1.24, so this runtime runs in an environment of its own (its image, or a virtual
environment; see the README). Run ``python -m containers.python.mxnet_container``.
"""

from __future__ import annotations

import json
import os
from typing import Any, Final

from containers.python.inputs import ModelInputs
from containers.python.model_loading import FunctionModelContainer, load_model_file, run_model_container

__all__ = ["CHECKPOINT_EPOCH", "CHECKPOINT_PREFIX", "METADATA_FILE", "MXNetContainer", "main"]

CHECKPOINT_PREFIX: Final = "mxnet_model"
CHECKPOINT_EPOCH: Final = 0
METADATA_FILE: Final = "mxnet_model_metadata.json"


def _read_json(path: str) -> Any:
    with open(path, encoding="utf-8") as file:
        return json.load(file)


class MXNetContainer(FunctionModelContainer):
    def __init__(self, path: str, input_type: str) -> None:
        import mxnet as mx

        super().__init__(path, input_type)
        metadata = load_model_file(path, METADATA_FILE, _read_json)
        # JSON turned the (name, shape) tuples into lists.
        data_shapes = [(name, tuple(shape)) for name, shape in metadata["data_shapes"]]
        prefix = os.path.join(path, CHECKPOINT_PREFIX)
        symbol_file = f"{CHECKPOINT_PREFIX}-symbol.json"
        params_file = f"{CHECKPOINT_PREFIX}-{CHECKPOINT_EPOCH:04d}.params"
        load_model_file(path, params_file, os.path.getsize)  # named error when it is missing
        symbol, arg_params, aux_params = load_model_file(
            path, symbol_file, lambda _: mx.model.load_checkpoint(prefix, CHECKPOINT_EPOCH)
        )
        label_names = [name for name in symbol.list_arguments() if name.endswith("label")]
        self.model = mx.mod.Module(symbol=symbol, label_names=label_names or None)
        self.model.bind(data_shapes=data_shapes, for_training=False)
        self.model.set_params(arg_params, aux_params, allow_missing=True)

    def call(self, inputs: ModelInputs) -> object:
        return self.predict_func(self.model, inputs)


def main() -> None:
    run_model_container(MXNetContainer, "Starting MXNet container")


if __name__ == "__main__":
    main()
