"""``python -m skinscan``: the ``skinscan`` command."""

import sys

from .cli import main

sys.exit(main())
