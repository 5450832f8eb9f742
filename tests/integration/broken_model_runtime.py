"""A model-container runtime that never serves, for start-up failure tests (run as
``python -m tests.integration.broken_model_runtime`` by LocalContainerManager).

The model name picks the failure: ``exits-*`` prints a few lines and exits with status 3 while
"loading"; ``never-ready-*`` prints them and then hangs without creating its readiness file.
"""

from __future__ import annotations

import os
import sys
import time

EXIT_STATUS = 3


def main() -> int:
    name = os.environ["CLIPPER_MODEL_NAME"]
    print(f"loading weights for {name} from /models/{name}.bin", flush=True)
    if name.startswith("exits"):
        print(f"FATAL: /models/{name}.bin is truncated (4096 of 1048576 bytes)", flush=True)
        return EXIT_STATUS
    print("waiting for the GPU to become available", flush=True)
    while True:
        time.sleep(1)


if __name__ == "__main__":
    sys.exit(main())
