"""``python -m harvester.simulator``: the same as ``harvester simulate``."""

import sys

from .cli import main

sys.exit(main())
