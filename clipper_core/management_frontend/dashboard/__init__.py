"""The read-only dashboard served by the management frontend under ``/dashboard``."""

from clipper_core.management_frontend.dashboard.routes import DASHBOARD_PATH, add_dashboard
from clipper_core.management_frontend.dashboard.sampler import MetricsSampler

__all__ = ["DASHBOARD_PATH", "MetricsSampler", "add_dashboard"]
