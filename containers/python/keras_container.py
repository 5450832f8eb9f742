"""Keras container: serves ``func(model, inputs)`` saved by ``deployers.keras``.

Model directory: ``func.pkl`` and ``keras_model.keras`` (Keras 3's format) or
``keras_model.h5`` (a legacy HDF5 file the user supplied), loaded with
``keras.models.load_model``. Run ``python -m containers.python.keras_container``.
"""

from __future__ import annotations

import os
from typing import Any, Final

from containers.python.inputs import ModelInputs
from containers.python.model_loading import FunctionModelContainer, load_model_file, run_model_container

__all__ = ["MODEL_FILES", "KerasContainer", "main"]

# In order of preference; the deployer writes exactly one of them.
MODEL_FILES: Final = ("keras_model.keras", "keras_model.h5")


class KerasContainer(FunctionModelContainer):
    def __init__(self, path: str, input_type: str) -> None:
        import keras

        super().__init__(path, input_type)
        name = next((f for f in MODEL_FILES if os.path.exists(os.path.join(path, f))), MODEL_FILES[0])
        self.model: Any = load_model_file(path, name, keras.models.load_model)

    def call(self, inputs: ModelInputs) -> object:
        return self.predict_func(self.model, inputs)


def main() -> None:
    run_model_container(KerasContainer, "Starting Keras container")


if __name__ == "__main__":
    main()
