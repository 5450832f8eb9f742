"""Deployers: turn a Python function (and framework model) into a deployed Clipper model.

``python`` (closures), ``pytorch``, ``tensorflow``, ``keras``, ``pyspark``, ``mxnet`` and ``onnx``;
each framework module imports its framework only when it deploys (``pip install .[<extra>]``).
"""

from __future__ import annotations

from clipper_admin.deployers import keras, mxnet, onnx, pyspark, python, pytorch, tensorflow

__all__ = ["keras", "mxnet", "onnx", "pyspark", "python", "pytorch", "tensorflow"]
