"""`python -m runners.sweep`: see runners.sweep.cli."""

import sys

from runners.sweep.cli import main

sys.exit(main())
