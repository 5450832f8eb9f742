"""The blockbuster fixture (tests/integration/conftest.py) is on: blocking the loop in our code fails."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from blockbuster import BlockingError

from tests.helpers import REPO_ROOT

# A function whose code claims to live in clipper_core, which is where the detector looks.
_SOURCE = """
import time

{kind} blocking_step():
    time.sleep(0.001)
"""


def _in_clipper_core(kind: str) -> Callable[[], Any]:
    namespace: dict[str, Any] = {}
    path = REPO_ROOT / "clipper_core" / "query_frontend" / "_blocking_example.py"
    exec(compile(_SOURCE.format(kind=kind), str(path), "exec"), namespace)
    return namespace["blocking_step"]  # type: ignore[no-any-return]


async def test_a_blocking_call_on_the_loop_in_clipper_core_fails() -> None:
    with pytest.raises(BlockingError, match=r"time\.sleep"):
        await _in_clipper_core("async def")()


def test_the_same_call_off_the_loop_is_allowed() -> None:
    assert _in_clipper_core("def")() is None
