"""Local "image builds": a model directory kept in the cluster directory, plus a per-model
virtual environment when ``pkgs_to_install`` is given."""

from __future__ import annotations

import logging
import shutil
import site
import subprocess
import sys
from pathlib import Path
from typing import IO, Final

from clipper_admin.exceptions import ClipperException
from clipper_admin.local.processes import log_tail

__all__ = ["create_model_venv", "store_model_directory"]

logger = logging.getLogger(__name__)

_VENV_TIMEOUT_S: Final = 120.0
_PIP_TIMEOUT_S: Final = 600.0


def store_model_directory(model_data_path: str, destination: Path, root: Path) -> Path:
    """Copy the contents of ``model_data_path`` to ``destination`` (replacing what was there).

    ``destination`` must lie inside ``root`` (the cluster directory): what is replaced there is
    the cluster's own copy, never a directory elsewhere (a symlink is removed, not followed).
    """
    if not destination.resolve().is_relative_to(root.resolve()) or not destination.absolute().is_relative_to(
        root.absolute()
    ):
        raise ClipperException(f"Refusing to store a model in {destination}: it is outside {root}")
    source = Path(model_data_path).expanduser()
    if not source.is_dir():
        raise ClipperException(f"Model data path {model_data_path} is not a directory")
    if destination.resolve().is_relative_to(source.resolve()):
        raise ClipperException(
            f"Model data path {model_data_path} contains the cluster directory; use a directory "
            "holding only the model's files"
        )
    if destination.is_symlink():
        destination.unlink()
    elif destination.exists():
        shutil.rmtree(destination)
    shutil.copytree(source, destination, symlinks=True)
    return destination


def _parent_site_dirs() -> list[str]:
    dirs = list(site.getsitepackages())
    if site.ENABLE_USER_SITE:
        dirs.append(site.getusersitepackages())
    return [d for d in dirs if Path(d).is_dir()]


def create_model_venv(venv_dir: Path, pkgs_to_install: list[str], log_path: Path) -> str:
    """Create ``venv_dir`` seeing this interpreter's packages, pip-install the packages into it,
    and return its python. Output of venv and pip goes to ``log_path``."""
    if venv_dir.exists():
        shutil.rmtree(venv_dir)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    logger.info("Creating virtual environment %s for packages %s", venv_dir, " ".join(pkgs_to_install))
    with open(log_path, "ab") as log:
        _run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(venv_dir)],
             log, log_path, _VENV_TIMEOUT_S, "create the virtual environment")
        python = venv_dir / "bin" / "python"
        purelib = subprocess.run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            check=True, capture_output=True, text=True, timeout=_VENV_TIMEOUT_S,
        ).stdout.strip()
        # --system-site-packages reaches the *base* interpreter's packages only; when this
        # interpreter is itself a venv (or uses a user site), add its package dirs too, after the
        # venv's own, so that clipper and its dependencies import in the replica.
        parent_dirs = _parent_site_dirs()
        # A .pth "import" line runs through exec() inside site.addpackage: names it imports live
        # in that call's locals, which a comprehension cannot see; map() at top level can.
        # addsitedir skips directories already on sys.path and runs their .pth files (editable
        # installs of clipper among them).
        (Path(purelib) / "_clipper_parent_env.pth").write_text(
            f"import site; tuple(map(site.addsitedir, {parent_dirs!r}))\n", encoding="utf-8"
        )
        # pip runs from this interpreter and installs into the venv (--python), so the venv needs
        # no pip of its own.
        _run([sys.executable, "-m", "pip", "--python", str(python), "install",
              "--disable-pip-version-check", "--no-input", *pkgs_to_install],
             log, log_path, _PIP_TIMEOUT_S, f"pip install {' '.join(pkgs_to_install)}")
    return str(python)


def _run(argv: list[str], log: IO[bytes], log_path: Path, timeout_s: float, what: str) -> None:
    try:
        subprocess.run(argv, check=True, stdout=log, stderr=subprocess.STDOUT,
                       stdin=subprocess.DEVNULL, timeout=timeout_s)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
        raise ClipperException(
            f"Could not {what} ({exc}). Last lines of {log_path}:\n{log_tail(log_path)}"
        ) from exc
