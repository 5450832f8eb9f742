"""Integration tests run under blockbuster: a blocking call on the event loop fails the test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from blockbuster import BlockBuster, blockbuster_ctx

# Blocking calls are looked for in frames of these packages (the serving code); the tests
# themselves may block, e.g. a sync helper polling a child process.
SCANNED_PACKAGES = ["clipper_core", "containers"]

# Known, bounded blocking calls inside libraries: (blocking function, file, functions).
ALLOWED = [
    # redis-py reads its own version from the package metadata (a few stats) once per client
    # constructed; StateStore builds its clients once, at start-up.
    *(
        (function, "redis/utils.py", {"get_lib_version"})
        for function in (
            "os.stat", "os.listdir", "os.scandir", "io.BufferedReader.read", "io.TextIOWrapper.read"
        )
    ),
]


@pytest.fixture(autouse=True)
def blockbuster() -> Iterator[BlockBuster]:
    with blockbuster_ctx(SCANNED_PACKAGES) as detector:
        for function, filename, functions in ALLOWED:
            detector.functions[function].can_block_in(filename, functions)
        yield detector
