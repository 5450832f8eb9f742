"""The ``clipper`` command: drive a cluster (local, Docker or Kubernetes) from a shell.

``clipper --help`` lists the commands; ``main`` is the console script's entry point.
"""

from clipper_admin.cli.app import EXIT_ERROR, EXIT_OK, EXIT_USAGE, app, main

__all__ = ["EXIT_ERROR", "EXIT_OK", "EXIT_USAGE", "app", "main"]
