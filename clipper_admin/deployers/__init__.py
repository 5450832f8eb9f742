"""Deployers: turn a Python function (and framework model) into a deployed Clipper model."""

from __future__ import annotations

from clipper_admin.deployers import python

__all__ = ["python"]
