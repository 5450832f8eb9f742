"""Python closure container: serves ``func(inputs)`` pickled by ``deploy_python_closure``.

Model directory (``CLIPPER_MODEL_PATH``): ``func.pkl`` (cloudpickle) and optionally
``modules/``, which is put on ``sys.path`` first so that modules the closure refers to
by name can be imported while unpickling.

Exit status: 1 for a configuration or loading error (one ``ERROR:`` line on stderr),
3 when loading fails with ImportError (see ``containers.python.model_loading``).

Run as ``clipper-closure-container`` or ``python -m containers.python.closure_container``.
"""

from __future__ import annotations

from containers.python.model_loading import (
    IMPORT_ERROR_EXIT_CODE,
    FunctionModelContainer,
    load_predict_func,
    run_model_container,
)

__all__ = ["IMPORT_ERROR_EXIT_CODE", "PythonContainer", "load_predict_func", "main"]


class PythonContainer(FunctionModelContainer):
    """Calls the user's function with each batch; outputs are converted with ``str()``."""


def main() -> None:
    """Console entry point ``clipper-closure-container``."""
    run_model_container(PythonContainer, "Starting Python Closure container")


if __name__ == "__main__":
    main()
