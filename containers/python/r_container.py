"""Local runtime of the R model container: replaces this process with ``Rscript``.

The local manager starts every replica as ``python -m <runtime module>``; for the image name
``r-container`` that is this module, which execs ``Rscript -e 'Rclipper::serve_model()'``
with the same environment (``CLIPPER_MODEL_NAME``, ``CLIPPER_MODEL_PATH``, ...), so the
replica's process id, log and exit status are the R container's own. The R side (RPC v3,
heartbeats, reconnects, the error extension) is the Rclipper package in ``containers/R/``;
``make install-r`` installs it and R's packages from Debian.
"""

from __future__ import annotations

import os
import shutil
from typing import Final

from containers.python.rpc import exit_with_error

__all__ = ["RSCRIPT_ENV", "main", "rscript_command"]

RSCRIPT_ENV: Final = "CLIPPER_RSCRIPT"
"""Path of the ``Rscript`` to run (default: the one on ``PATH``)."""


def rscript_command() -> list[str]:
    """The command line of the R model container."""
    rscript = os.environ.get(RSCRIPT_ENV) or shutil.which("Rscript")
    if not rscript:
        exit_with_error(
            "Rscript is not installed: the R model container needs R and the Rclipper package "
            "(run `make install-r`)"
        )
    return [rscript, "--no-save", "--no-restore", "-e", "Rclipper::serve_model()"]


def main() -> None:
    command = rscript_command()
    os.execv(command[0], command)


if __name__ == "__main__":
    main()
