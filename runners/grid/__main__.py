"""`python -m runners.grid`: see runners.grid.cli."""

import sys

from runners.grid.cli import main

sys.exit(main())
