"""`python -m runners.bench`: see runners.bench.cli."""

import sys

from runners.bench.cli import main

sys.exit(main())
