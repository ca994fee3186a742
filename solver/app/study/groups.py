"""How a study splits the world's ranks: groups of R consecutive ranks, each running samples on
its own communicator (``comm.Split``), and their world blocks of a canonical numbering."""

from __future__ import annotations

from dataclasses import dataclass

from solver.errors import CaseError


@dataclass(frozen=True)
class StudyGroups:
    """The world, this rank's group (its communicator and index) and the number of groups."""

    world: object  # MPI communicator of every rank
    group: object  # ... of this rank's group
    index: int
    count: int
    ranks_per_case: int

    @classmethod
    def split(cls, world, ranks_per_case: int) -> "StudyGroups":
        """Collective: groups of ``ranks_per_case`` consecutive ranks (a divisor of the world's)."""
        r = ranks_per_case
        if r < 1 or world.size % r:
            raise CaseError(f"--ranks-per-case {r}: must be a positive divisor of the number of ranks ({world.size})")
        index = world.rank // r
        return cls(world, world.Split(index, world.rank), index, world.size // r, r)
