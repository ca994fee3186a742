"""Steady problems need every connected part of the mesh held at a temperature: by a Dirichlet
boundary, or by an exchange with its surroundings (robin, radiation) firm enough to fix it.

* Before the solve (:func:`check_floating_parts`, mesh files): a part that touches no such
  boundary at all, or only ones whose h or epsilon is zero there, is an input error (exit 2).
* After the solve (:func:`check_parts_held`): a part without a Dirichlet boundary is fixed only
  by the heat it exchanges, and the solver's tolerance is relative to the whole system. Its own
  balance tells how well: its net heat in N (zero at the steady state) over its conductance to
  the surroundings H (the change of its heat loss per kelvin, from a shift of the whole field)
  is the error of its mean temperature. An h or epsilon many orders of magnitude below the rest
  (or zero at the temperature reached) leaves it undetermined in double precision: exit 3, where
  the run would otherwise report the initial guess, or anything near it, as the answer.

Parts are the components of :func:`solver.mesh.components.component_labels` (a few halo rounds);
their sums are one ``Allreduce`` of two numbers per part without a Dirichlet boundary.
"""

from __future__ import annotations

import numpy as np
from mpi4py import MPI

from solver.case.records import MeshFileSpec
from solver.case.tables import TemperatureTable
from solver.errors import CaseError, NumericalError
from solver.heat.balance import HeatFlows
from solver.mesh.components import component_labels

HELD_TOLERANCE = 1e-4  # a part's mean temperature may be off by this fraction of the temperature scale
MAX_PARTS = 10_000  # parts without a Dirichlet boundary checked after a solve at most (one number each)


def _exchanging_facets(problem):
    """(term, T-dependent, facet mask) of each robin and radiation boundary: the facets where h
    (or epsilon) is not zero at t = 0, as a constant or an expression of x, y, z and t (all of
    them when it depends on T; a table of T whose values are all one number is that number)."""
    terms = [(term, term.condition.h) for term in problem.robin]
    terms += [(term, term.condition.epsilon) for term in problem.radiation]
    for term, coefficient in terms:
        n_facets = len(term.facets.nodes)
        if isinstance(coefficient, TemperatureTable) and coefficient.low == coefficient.high:
            coefficient = coefficient.low  # (all zero: it insulates at every temperature)
        if isinstance(coefficient, (int, float)):
            yield term, False, np.full(n_facets, coefficient != 0)
        elif getattr(coefficient, "depends_on_temperature", True):
            yield term, True, np.ones(n_facets, dtype=bool)
        else:
            with np.errstate(all="ignore"):
                values = np.asarray(coefficient(term.facets.points, 0.0), dtype=float)
            yield term, False, ~(np.broadcast_to(values, term.facets.points.shape[:2]) == 0).all(axis=1)


def exchange_names(problem) -> list[str]:
    """The robin and radiation boundaries that exchange heat in a steady solve: all but those whose
    h (or epsilon) is zero on every facet at its time (0) (collective). Such a boundary is
    insulated, and fixes no temperature."""
    names, others = [], []
    for term, on_temperature, on in _exchanging_facets(problem):
        (names if on_temperature else others).append((term.name, on.any()))
    anywhere = np.array([on for _, on in others], dtype=np.int64)
    if len(anywhere):
        problem.mesh.comm.Allreduce(MPI.IN_PLACE, anywhere, op=MPI.MAX)
    return [name for name, _ in names] + [name for (name, _), on in zip(others, anywhere) if on]


def check_floating_parts(case, problem) -> None:
    """A steady case on a mesh file: every connected part of the mesh must touch a dirichlet, robin
    or radiation boundary, or its temperature is not determined (a singular system); refuse the
    first part that does not, naming its cells and a point in it (collective); a robin or
    radiation boundary counts on its facets where h or epsilon is not zero. Structured meshes are
    connected; a case with no such boundary at all is the steady solver's to refuse."""
    mesh = problem.mesh
    if not isinstance(case.mesh, MeshFileSpec):
        return
    labels, fixed = component_labels(mesh, _held_nodes(problem))
    root = labels[: mesh.n_owned] == mesh.node_ids[: mesh.n_owned]  # one node per part: its label's own
    floating = labels[: mesh.n_owned][root & ~fixed[: mesh.n_owned]]
    counts = np.array([np.count_nonzero(root), len(floating)], dtype=np.int64)
    mesh.comm.Allreduce(MPI.IN_PLACE, counts)
    if counts[1] == 0 or counts[1] == counts[0]:
        return
    first = np.array([floating.min() if len(floating) else np.iinfo(np.int64).max], dtype=np.int64)
    mesh.comm.Allreduce(MPI.IN_PLACE, first, op=MPI.MIN)
    n_cells, where = describe_part(mesh, labels, first[0])
    raise CaseError(f"{case.source}: {case.mesh_key}: {counts[1]} of the mesh's {counts[0]} disconnected parts touch "
                    f"no dirichlet boundary, nor a robin or radiation one with h or epsilon > 0 on it, such as the "
                    f"part of {n_cells} cells through ({where}): time.scheme = \"steady\" cannot determine their "
                    f"temperature (a singular system); give each part such a boundary or remove it")


def _held_nodes(problem) -> np.ndarray:
    """Local mask of the nodes on a dirichlet boundary or on a facet of a robin or radiation
    boundary whose h or epsilon is not zero there at t = 0 (all of its facets when it depends on
    T), consistent on ghosts: a boundary that exchanges on one part only holds no other part."""
    mesh = problem.mesh
    mask = np.zeros(mesh.n_local)
    for name in problem.dirichlet.names:
        mask[mesh.boundaries[name].nodes.ravel()] = 1.0
    for term, _, on in _exchanging_facets(problem):
        mask[term.facets.nodes[on].ravel()] = 1.0
    mask[mesh.n_owned:] = 0.0  # owners hold every facet through their nodes: they tell the ghosts
    mesh.halo.update(mask)
    return mask > 0.5


def describe_part(mesh, labels: np.ndarray, label: int) -> tuple[int, str]:
    """(cells, a point) of the part of ``label``: its number of cells and its node of that id
    (collective)."""
    n_cells = np.array([np.count_nonzero(labels[mesh.cells[: mesh.n_owned_cells, 0]] == label)], dtype=np.int64)
    mesh.comm.Allreduce(MPI.IN_PLACE, n_cells)
    at = np.flatnonzero(mesh.node_ids[: mesh.n_owned] == label)
    point = mesh.coords[at[0]].copy() if len(at) else np.full(mesh.dim, np.inf)
    mesh.comm.Allreduce(MPI.IN_PLACE, point, op=MPI.MIN)
    return int(n_cells[0]), ", ".join(f"{x:.6g}" for x in point)


def check_parts_held(sim) -> np.ndarray:
    """After a steady solve: refuse (exit 3) a part of the mesh without a Dirichlet boundary whose
    temperature its exchange with the surroundings does not determine (collective). Returns the
    local mask of the nodes in parts with a Dirichlet boundary (consistent on ghosts)."""
    p, mesh, u = sim.problem, sim.mesh, sim.u
    comm, n = mesh.comm, mesh.n_owned
    if isinstance(sim.case.mesh, MeshFileSpec):
        labels, fixed = component_labels(mesh, mesh.owned_dirichlet_mask(p.dirichlet.names))
    else:  # a structured mesh is one part, held by its dirichlet sides if it has any
        labels = np.zeros(mesh.n_local, dtype=np.int64)  # the smallest canonical id, 0
        fixed = np.full(mesh.n_local, bool(p.dirichlet.names))
    free = ~fixed[:n]
    mine = labels[:n][free & (labels[:n] == mesh.node_ids[:n])]  # the free parts' labels this rank owns
    sizes = np.array(comm.allgather(len(mine)), dtype=np.int64)
    if sizes.sum() == 0 or sizes.sum() > MAX_PARTS:
        return fixed
    roots = np.empty(int(sizes.sum()), dtype=np.int64)
    comm.Allgatherv(np.ascontiguousarray(mine, dtype=np.int64), [roots, sizes])
    roots.sort()
    part = np.searchsorted(roots, labels[:n][free])
    scale = np.array([float(np.max(np.abs(u[:n]), initial=0.0))])
    comm.Allreduce(MPI.IN_PLACE, scale, op=MPI.MAX)
    scale = scale[0] + 1.0  # a degree: temperatures near zero in C
    shift = 1e-3 * scale
    flows = HeatFlows(p)
    with np.errstate(all="ignore"):
        net = flows.node_inflow(u, 0.0)
        loss_per_kelvin = (net - flows.node_inflow(u + shift, 0.0)) / shift
    sums = np.zeros((2, len(roots)))
    sums[0] = np.bincount(part, weights=net[free], minlength=len(roots))
    sums[1] = np.bincount(part, weights=loss_per_kelvin[free], minlength=len(roots))
    comm.Allreduce(MPI.IN_PLACE, sums)
    N, H = sums
    with np.errstate(all="ignore"):
        loose = ~(H > 0) | ~(np.abs(N) <= HELD_TOLERANCE * scale * H)
    if not loose.any():
        return fixed
    i = int(np.flatnonzero(loose)[0])
    n_cells, where = describe_part(mesh, labels, int(roots[i]))
    which = f"the part of {n_cells} cells through ({where})" if len(roots) > 1 or n_cells < mesh.n_global_cells \
        else "the body"
    if not H[i] > 0:
        why = ("is held by no boundary at the solution: the robin and radiation boundaries it touches exchange "
               "no heat there (h or epsilon zero at that temperature), so its temperature is undetermined")
    else:
        why = (f"is held too weakly to determine its temperature in double precision: its own heat balance is "
               f"off by {abs(N[i]):.3g} W, {abs(N[i]) / H[i]:.3g} degrees of its mean temperature (h or epsilon "
               f"many orders of magnitude below the conduction inside it)")
    raise NumericalError(f"{sim.case.source}: time.scheme = \"steady\": {which} {why}; give it a dirichlet "
                         f"boundary or a firmer exchange, or solve it transient")


def touch_fixed_parts(mesh, names: list[str], fixed: np.ndarray) -> list[bool]:
    """Whether each named boundary touches a part with a Dirichlet boundary (``fixed``: the mask
    of :func:`check_parts_held`; collective)."""
    touch = np.array([bool(np.any(fixed[mesh.boundaries[name].nodes.ravel()])) for name in names], dtype=np.int8)
    if len(touch):
        mesh.comm.Allreduce(MPI.IN_PLACE, touch, op=MPI.MAX)
    return [bool(v) for v in touch]
