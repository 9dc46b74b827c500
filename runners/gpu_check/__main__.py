"""`python -m runners.gpu_check`: see runners.gpu_check.cli."""

import sys

from runners.gpu_check.cli import main

sys.exit(main())
