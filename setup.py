"""Clipper for Python: prediction serving with adaptive batching, caching and SLOs."""

from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).parent

CORE_DEPS = [
    "aiohttp>=3.9",
    "redis>=5.0",
    "pyzmq>=25",
    "numpy>=1.24",
    "cloudpickle>=2.0",
    "prometheus-client>=0.17",
    # orjson: 3-10x faster JSON encode/decode than the stdlib on the query path.
    "orjson>=3.9",
    "requests>=2.28",
    "docker>=6.0",
    "kubernetes>=26.0",
    "psutil>=5.9",
]

EXTRAS = {
    # uvloop: a faster event loop for the frontends; used when installed.
    "speed": ["uvloop>=0.17"],
    "test": [
        "pytest>=7.4",
        "pytest-asyncio>=0.23",
        "pytest-timeout>=2.2",
        "hypothesis>=6.80",
        "ruff>=0.4",
        "import-linter>=2.0",
        "uvloop>=0.17",
        # the bench smoke test inside make test draws the report's plots
        "matplotlib>=3.7",
    ],
    "bench": ["matplotlib>=3.7", "uvloop>=0.17"],
    "pytorch": ["torch"],
    "tensorflow": ["tensorflow"],
    "pyspark": ["pyspark"],
    "mxnet": ["mxnet"],
    "onnx": ["onnx", "onnxruntime"],
    "keras": ["keras"],
}

setup(
    name="clipper-python",
    version="0.1.0",
    description="Clipper prediction serving, re-implemented in Python",
    long_description=(HERE / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    python_requires=">=3.11",
    packages=find_packages(include=["clipper_core*", "clipper_admin*", "containers*"]),
    package_data={"clipper_admin": ["*.txt", "*/*.yaml"]},
    include_package_data=True,
    install_requires=CORE_DEPS,
    extras_require=EXTRAS,
    entry_points={
        "console_scripts": [
            "clipper-query-frontend=clipper_core.query_frontend.__main__:main",
            "clipper-management-frontend=clipper_core.management_frontend.__main__:main",
            "clipper-closure-container=containers.python.closure_container:main",
        ]
    },
)
