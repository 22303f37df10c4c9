"""``python -m stochplan``: the command line."""

import sys

from stochplan.cli import main

sys.exit(main())
