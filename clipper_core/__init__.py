"""Clipper serving system: query frontend, management frontend, RPC codec, Redis state."""

__version__ = "0.1.0"
