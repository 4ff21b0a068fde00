"""``python -m skinscan``: the ``skinscan`` command."""

import sys

from .cli import main

if __name__ == "__main__":  # importing it (doctest collection) must not run the command
    sys.exit(main())
