"""What every function-serving container shares: loading ``func.pkl``, the ``modules/`` folder,
one named error for a missing or unreadable model file, and the ``main`` that turns loading
errors into the documented exit statuses.

Exit status of a container's ``main``: 1 for a configuration or loading error (one ``ERROR:``
line on stderr naming the file), 3 when loading fails with ImportError (as the original, whose
entry script turns that into a hint about ``pkgs_to_install``).
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable
from typing import Final, TypeVar

import cloudpickle

from containers.python.inputs import BadModelOutput, ModelInputs
from containers.python.rpc import (
    AnyInputModelContainer,
    ModelContainerBase,
    RPCService,
    configure_logging,
    exit_with_error,
)

__all__ = [
    "IMPORT_ERROR_EXIT_CODE",
    "MODULES_DIR",
    "PREDICT_FUNC_FILE",
    "FunctionModelContainer",
    "ModelFileError",
    "load_model_file",
    "load_predict_func",
    "run_model_container",
]

logger = logging.getLogger(__name__)

IMPORT_ERROR_EXIT_CODE: Final = 3
PREDICT_FUNC_FILE: Final = "func.pkl"
MODULES_DIR: Final = "modules"

T = TypeVar("T")


class ModelFileError(Exception):
    """A model file is missing or cannot be loaded; the message names the file."""


def load_model_file(model_path: str, name: str, load: Callable[[str], T]) -> T:
    """``load(<model_path>/<name>)``, with a missing or unreadable file reported as
    ModelFileError naming it (ImportError passes through: it means a missing package)."""
    path = os.path.join(model_path, name)
    if not os.path.exists(path):
        raise ModelFileError(f"model file {path} is missing")
    try:
        return load(path)
    except ImportError:
        raise
    except Exception as exc:
        raise ModelFileError(f"model file {path} cannot be loaded: {type(exc).__name__}: {exc}") from exc


def _unpickle(path: str) -> object:
    with open(path, "rb") as file:
        return cloudpickle.load(file)


def load_predict_func(model_path: str) -> Callable[..., object]:
    """Unpickle ``<model_path>/func.pkl``."""
    func = load_model_file(model_path, PREDICT_FUNC_FILE, _unpickle)
    if not callable(func):
        raise ModelFileError(
            f"model file {os.path.join(model_path, PREDICT_FUNC_FILE)} holds a "
            f"{type(func).__name__}, not a function"
        )
    return func


class FunctionModelContainer(AnyInputModelContainer):
    """Loads the user's function (after putting ``<path>/modules`` on ``sys.path``); ``predict``
    calls :meth:`call` and converts each output with ``str()``. Framework containers load their
    model in ``__init__`` and override :meth:`call` to pass it to the function."""

    def __init__(self, path: str, input_type: str) -> None:
        self.input_type = input_type
        modules_dir = os.path.join(path, MODULES_DIR)
        if modules_dir not in sys.path:
            sys.path.append(modules_dir)
        self.predict_func = load_predict_func(path)

    def call(self, inputs: ModelInputs) -> object:
        return self.predict_func(inputs)

    def predict(self, inputs: ModelInputs) -> list[str]:
        preds = self.call(inputs)
        # A str or bytes result is iterable but is one output, not one per input.
        if isinstance(preds, str | bytes) or not hasattr(preds, "__iter__"):
            raise BadModelOutput(
                f"the function returned {type(preds).__name__}, expected one output per input"
            )
        return [str(p) for p in preds]


def run_model_container(
    build: Callable[[str, str], ModelContainerBase], starting_message: str
) -> None:
    """A container's ``main``: read the settings, ``build(model_path, input_type)``, serve."""
    configure_logging()
    service = RPCService(require_model_path=True)
    model_path = service.get_model_path()
    try:
        model = build(model_path, service.get_input_type())
    except ImportError:
        logger.exception("ImportError while loading the model from %s", model_path)
        logger.error(
            "A package the model needs is missing in this container; "
            "list it in pkgs_to_install when deploying the model."
        )
        raise SystemExit(IMPORT_ERROR_EXIT_CODE) from None
    except ModelFileError as exc:
        exit_with_error(f"cannot load the model from {model_path}: {exc}")
    except OSError as exc:
        exit_with_error(f"cannot load the model from {model_path}: {exc}")
    except Exception as exc:
        logger.exception("loading the model from %s failed", model_path)
        exit_with_error(f"cannot load the model from {model_path}: {type(exc).__name__}: {exc}")
    logger.info("%s", starting_message)
    service.start(model)
