"""``python -m clipper_admin.cli``: the ``clipper`` command."""

import sys

from clipper_admin.cli.app import main

sys.exit(main())
