"""Model families, one module or folder each, and the list of the built-in ones.

Each family follows :class:`stochplan.family.Family` and ends with mpi-sppy's module contract,
so ``python -m mpisppy.generic_cylinders --module-name stochplan.models.NAME`` runs it too.
Adding a built-in family means adding its folder here and one line to :data:`BUILTIN`;
families of other packages come in through the ``stochplan.families`` entry-point group.

``aggregate``: workforce, production, inventory, backorders and overflow (seed 003).
``prebuild``: S&OP pre-build of Q3 inventory for an uncertain Q4 peak (seed 002).
``lotsizing``: lot sizing with setups under uncertain customer orders, a MIP (seed 001).
``multisite``: many production sites under Poisson demand, solved site by site (seed 000).
``assignment``: orders offered to producers who may refuse them, with reassignment (seed 004).
``farmer``: the textbook farmer problem, a plain mpi-sppy module (not a family) that the
generic analysis is checked against.
"""

#: Built-in families: name -> the module holding its ``FAMILY``.
BUILTIN: dict[str, str] = {"aggregate": "stochplan.models.aggregate",
                           "prebuild": "stochplan.models.prebuild",
                           "lotsizing": "stochplan.models.lotsizing",
                           "multisite": "stochplan.models.multisite",
                           "assignment": "stochplan.models.assignment"}

#: The instance a run uses when none is named (the seed-003 instance of the first family).
DEFAULT_INSTANCE = "electronics"
