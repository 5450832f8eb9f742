"""Kept at the top level as the layout promises; the package metadata is in pyproject.toml."""

from setuptools import setup

setup()
