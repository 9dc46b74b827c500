"""`python -m runners.lra`: see runners.lra.cli."""

import sys

from runners.lra.cli import main

sys.exit(main())
