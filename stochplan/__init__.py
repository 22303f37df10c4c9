"""stochplan: two-stage stochastic production planning.

Importing the package does no work: it loads no solver, prints nothing and does not touch MPI.
The pipeline, one way: data -> scenarios -> models -> solve -> metrics -> reports / store.
"""

#: The package version: the one place it is written (pyproject.toml reads it from here).
__version__ = "0.1.0"
