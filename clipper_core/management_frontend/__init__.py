"""Management frontend: the original's ``/admin/*`` REST API over the Redis state."""

from clipper_core.management_frontend.operations import ManagementService
from clipper_core.management_frontend.server import build_app, serve

__all__ = ["ManagementService", "build_app", "serve"]
