"""stochplan: two-stage stochastic production planning.

Importing the package does no work: it loads no solver, prints nothing and does not touch MPI.
The pipeline, one way: data -> scenarios -> models -> solve -> metrics -> reports / store.
"""

__version__ = "0.1.0"
