"""Local runtime of the R model container: runs ``Rscript -e 'Rclipper::serve_model()'``.

The local manager starts every replica as ``python -m <runtime module>``; for the image name
``r-container`` that is this module. It runs the R container as its child with the same
environment (``CLIPPER_MODEL_NAME``, ``CLIPPER_MODEL_PATH``, ...) and exits with its status.
The R side (RPC v3, heartbeats, reconnects, the error and draining extensions) is the Rclipper
package in ``containers/R/``; ``make install-r`` installs it and R's packages from Debian.

Why a parent and not ``exec``: base R cannot handle SIGTERM (it dies at once, losing the batch
in hand), but it turns SIGINT into an interrupt that ``serve_model`` catches to drain. The local
manager stops a replica with SIGTERM to its process group, so the child starts with SIGTERM
ignored and this process forwards SIGTERM (and SIGINT) to it as one SIGINT. SIGKILL to the
group, the manager's fallback, still ends both.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from types import FrameType
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
    # Ignored dispositions survive exec: the child ignores SIGTERM until R is told otherwise
    # (it never is). Set before the child exists, the handler below right after.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    child = subprocess.Popen(command)
    is_forwarded = False

    def forward(_signo: int, _frame: FrameType | None) -> None:
        nonlocal is_forwarded
        if not is_forwarded:  # one interrupt drains; a second would abort the drain
            is_forwarded = True
            child.send_signal(signal.SIGINT)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    status = child.wait()
    raise SystemExit(status if status >= 0 else 128 - status)


if __name__ == "__main__":
    main()
