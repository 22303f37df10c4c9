"""The one place stochplan imports mpi-sppy, quietly.

``import mpisppy`` prints a line to stdout; the library must print nothing (machine-readable
output such as ``--json`` depends on it), so the first import happens with stdout captured and
the line goes to the debug log.
"""

from __future__ import annotations

import contextlib
import io
import logging
from types import ModuleType

log = logging.getLogger(__name__)


def sputils() -> ModuleType:
    """``mpisppy.utils.sputils``, imported without printing."""
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        from mpisppy.utils import sputils as module
    if buffer.getvalue().strip():
        log.debug("mpi-sppy: %s", buffer.getvalue().strip())
    return module
