"""Every module of ours imports alone, in a process where nothing of ours was imported before.

An import that works only because another module happened to be imported first (a circular
import resolved by order, a name a package ``__init__`` forgot) fails here. As aiohttp's
``tests/test_circular_imports.py``, but one interpreter per module would cost a minute of CPU
(numpy, aiohttp, redis, docker, kubernetes load each time): a parent imports the third-party
packages our sources name, checks it holds nothing of ours, and forks one child per module.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from tests.helpers import REPO_ROOT

OUR_PACKAGES = ("clipper_core", "clipper_admin", "containers", "tools")

_CHILDREN = r'''
import importlib, os, sys, traceback
ours, third_party = sys.argv[1].split(","), sys.argv[2].split(",")
for name in third_party:
    try:
        importlib.import_module(name)
    except Exception:
        pass  # an optional framework (torch, tensorflow, ...) our code imports lazily
loaded = sorted(m for m in sys.modules if m.split(".")[0] in ours)
if loaded:
    sys.exit(f"the parent already holds modules of ours: {loaded}")
failed = 0
for module in sys.stdin.read().split():
    pid = os.fork()
    if pid == 0:
        try:
            importlib.import_module(module)
        except BaseException:
            sys.stderr.write(f"--- importing {module} alone fails:\n{traceback.format_exc()}")
            sys.stderr.flush()
            os._exit(1)
        os._exit(0)
    _, status = os.waitpid(pid, 0)
    failed += status != 0
sys.exit(1 if failed else 0)
'''


def _modules() -> list[str]:
    names = []
    for package in OUR_PACKAGES:
        for path in sorted((REPO_ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(REPO_ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            names.append(".".join(parts))
    return names


def _third_party(modules: list[str]) -> list[str]:
    """Top-level names our sources import that are neither ours nor the standard library's."""
    found: set[str] = set()
    for module in modules:
        path = REPO_ROOT / Path(*module.split("."))
        source = path / "__init__.py" if path.is_dir() else path.with_suffix(".py")
        for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                found.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found.add(node.module.split(".")[0])
    return sorted(found - set(OUR_PACKAGES) - sys.stdlib_module_names - {"__future__"})


def test_every_module_imports_alone() -> None:
    modules = _modules()
    assert len(modules) > 60 and "clipper_core.query_frontend.server" in modules
    result = subprocess.run(
        [sys.executable, "-c", _CHILDREN, ",".join(OUR_PACKAGES), ",".join(_third_party(modules))],
        input="\n".join(modules),
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
