"""``clipper deploy PATH.py:FUNC``: the function, loaded from its file so that it travels by value."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from clipper_admin.cli.output import CliError

__all__ = ["load_function"]


def load_function(target: str) -> Callable[..., Any]:
    """``PATH.py:FUNC`` -> the function, defined by running the file under a module name that
    is not importable, so cloudpickle serialises it (and what it uses from the file) by value."""
    path_text, sep, func_name = target.rpartition(":")
    if not sep or not path_text or not func_name.isidentifier():
        raise CliError(f"the model must be given as PATH.py:FUNCTION, got {target!r}")
    path = Path(path_text)
    if not path.is_file():
        raise CliError(f"{path}: no such file")
    namespace: dict[str, Any] = {"__name__": f"__clipper_deploy_{path.stem}__", "__file__": str(path)}
    try:
        exec(compile(path.read_text(encoding="utf-8"), str(path), "exec"), namespace)
    except Exception as exc:
        raise CliError(f"running {path} failed: {type(exc).__name__}: {exc}") from exc
    func = namespace.get(func_name)
    if not callable(func):
        raise CliError(f"{path} defines no function {func_name!r}")
    return func  # type: ignore[no-any-return]
