"""Commands that look at results or at the solver itself: ``info``, ``plot``, ``probe`` and
``export`` of a results file (serial, no MPI needed), ``verify`` (manufactured-solution orders)
and ``bench`` (performance figures as ratios measured in one run).
"""

from solver.lazy import exports

WHERE = {
    "COMMANDS": "commands",
}
__all__ = sorted(WHERE)
__getattr__ = exports(__name__, WHERE)
