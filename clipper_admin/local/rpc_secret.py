"""The cluster's RPC secret (``secure_rpc=True``): only replicas the cluster starts may register.

``start_clipper`` generates a random secret, keeps it in ``<cluster>/run/rpc.secret`` (mode
0600, so ``connect()`` from another process of the same user finds it) and hands it to the
query frontend; every replica started afterwards gets it too. Both sides read it from
``CLIPPER_RPC_SECRET`` and derive CurveZMQ keys from it. Without the file, nothing is passed
and the RPC port speaks plain RPC v3, as the original.
"""

from __future__ import annotations

import os

from clipper_admin.container_manager import RPC_SECRET_ENV, new_secret
from clipper_admin.local.cluster_record import ClusterPaths

__all__ = ["RPC_SECRET_ENV", "create", "env_for", "remove"]

_FILE_NAME = "rpc.secret"


def create(paths: ClusterPaths) -> dict[str, str]:
    """A new secret, stored for later replicas; returns the environment that carries it."""
    secret = new_secret()
    paths.run_dir.mkdir(parents=True, exist_ok=True)
    path = paths.run_dir / _FILE_NAME
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as file:
        file.write(secret)
    return {RPC_SECRET_ENV: secret}


def remove(paths: ClusterPaths) -> None:
    (paths.run_dir / _FILE_NAME).unlink(missing_ok=True)


def env_for(paths: ClusterPaths) -> dict[str, str]:
    """The environment a replica needs: the secret when the cluster has one, else nothing."""
    path = paths.run_dir / _FILE_NAME
    try:
        return {RPC_SECRET_ENV: path.read_text().strip()}
    except FileNotFoundError:
        return {}
