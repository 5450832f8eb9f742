"""Package version and default image registry, as the original exposes them."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Final

__all__ = ["__registry__", "__version__"]

__version__: Final = (Path(__file__).with_name("VERSION.txt")).read_text(encoding="utf-8").strip()
# Every default image name is ``{__registry__}/<image>:{__version__}``.
__registry__: Final = os.environ.get("CLIPPER_REGISTRY", "clipper")
