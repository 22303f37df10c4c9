"""``python -m stochplan``: the command line."""

from stochplan.cli import main
from stochplan.parallel import leave

try:
    status = main()
except SystemExit as stop:  # argparse: --help, --version and usage errors
    status = stop.code if isinstance(stop.code, int) else (0 if stop.code is None else 2)
leave(status)
