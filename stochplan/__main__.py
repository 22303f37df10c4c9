"""``python -m stochplan``: the command line (:func:`stochplan.cli.run`)."""

from stochplan.cli import run

run()
