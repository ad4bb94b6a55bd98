"""``python -m gateway.cli``: the same command line as ``yiyang``."""

import sys

from gateway.cli import main

sys.exit(main())
