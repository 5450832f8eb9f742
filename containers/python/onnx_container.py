"""ONNX container: serves ``func(session, inputs)`` saved by ``deployers.onnx``.

Model directory: ``func.pkl`` and ``model.onnx``, loaded into an ``onnxruntime``
``InferenceSession`` on the CPU (the original prepared a Caffe2 backend; Caffe2 is gone).
Run ``python -m containers.python.onnx_container``.
"""

from __future__ import annotations

from typing import Any, Final

from containers.python.inputs import ModelInputs
from containers.python.model_loading import FunctionModelContainer, load_model_file, run_model_container

__all__ = ["MODEL_FILE", "OnnxContainer", "main"]

MODEL_FILE: Final = "model.onnx"


def _session(path: str) -> Any:
    import onnxruntime

    return onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])


class OnnxContainer(FunctionModelContainer):
    def __init__(self, path: str, input_type: str) -> None:
        import onnxruntime  # noqa: F401  (a missing package is an ImportError, exit status 3)

        super().__init__(path, input_type)
        self.session = load_model_file(path, MODEL_FILE, _session)

    def call(self, inputs: ModelInputs) -> object:
        return self.predict_func(self.session, inputs)


def main() -> None:
    run_model_container(OnnxContainer, "Starting ONNX container (onnxruntime)")


if __name__ == "__main__":
    main()
