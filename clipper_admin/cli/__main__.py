"""``python -m clipper_admin.cli``: the ``clipper`` command."""

import sys

from clipper_admin.cli.app import main

if __name__ == "__main__":
    sys.exit(main())
