"""Python closure container: serves ``func(inputs)`` pickled by ``deploy_python_closure``.

Model directory (``CLIPPER_MODEL_PATH``): ``func.pkl`` (cloudpickle) and optionally
``modules/``, which is put on ``sys.path`` first so that modules the closure refers to
by name can be imported while unpickling.

Exit status: 1 for a configuration or loading error (one ``ERROR:`` line on stderr),
3 when loading fails with ImportError (as the original, whose entry script turns that
into a hint about ``pkgs_to_install``).

Run as ``clipper-closure-container`` or ``python -m containers.python.closure_container``.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable
from typing import Final

import cloudpickle

from containers.python.inputs import BadModelOutput, ModelInputs
from containers.python.rpc import (
    AnyInputModelContainer,
    RPCService,
    configure_logging,
    exit_with_error,
)

__all__ = ["IMPORT_ERROR_EXIT_CODE", "PythonContainer", "load_predict_func", "main"]

logger = logging.getLogger(__name__)

IMPORT_ERROR_EXIT_CODE: Final = 3
PREDICT_FUNC_FILE: Final = "func.pkl"
MODULES_DIR: Final = "modules"


def load_predict_func(model_path: str) -> Callable[[ModelInputs], object]:
    """Unpickle ``<model_path>/func.pkl``."""
    with open(os.path.join(model_path, PREDICT_FUNC_FILE), "rb") as file:
        func = cloudpickle.load(file)
    if not callable(func):
        raise TypeError(f"{PREDICT_FUNC_FILE} holds a {type(func).__name__}, not a function")
    return func  # type: ignore[no-any-return]


class PythonContainer(AnyInputModelContainer):
    """Calls the user's function with each batch; outputs are converted with ``str()``."""

    def __init__(self, path: str, input_type: str) -> None:
        self.input_type = input_type
        modules_dir = os.path.join(path, MODULES_DIR)
        if modules_dir not in sys.path:
            sys.path.append(modules_dir)
        self.predict_func = load_predict_func(path)

    def predict(self, inputs: ModelInputs) -> list[str]:
        preds = self.predict_func(inputs)
        # A str or bytes result is iterable but is one output, not one per input.
        if isinstance(preds, str | bytes) or not hasattr(preds, "__iter__"):
            raise BadModelOutput(
                f"the function returned {type(preds).__name__}, expected one output per input"
            )
        return [str(p) for p in preds]


def main() -> None:
    """Console entry point ``clipper-closure-container``."""
    configure_logging()
    service = RPCService(require_model_path=True)
    model_path = service.get_model_path()
    try:
        model = PythonContainer(model_path, service.get_input_type())
    except ImportError:
        logger.exception("ImportError while loading the model from %s", model_path)
        logger.error(
            "A package the function needs is missing in this container; "
            "list it in pkgs_to_install when deploying the model."
        )
        raise SystemExit(IMPORT_ERROR_EXIT_CODE) from None
    except OSError as exc:
        exit_with_error(f"cannot load the model from {model_path}: {exc}")
    except Exception as exc:
        logger.exception("loading the model from %s failed", model_path)
        exit_with_error(f"cannot load the model from {model_path}: {type(exc).__name__}: {exc}")
    logger.info("Starting Python Closure container")
    service.start(model)


if __name__ == "__main__":
    main()
