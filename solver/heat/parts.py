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
from solver.case.schema import default_temperature_range
from solver.case.tables import TemperatureTable
from solver.errors import CaseError, NumericalError
from solver.heat.balance import HeatFlows
from solver.heat.enthalpy import starting_points
from solver.mesh.components import component_labels

HELD_TOLERANCE = 1e-4  # a part's mean temperature may be off by this fraction of the temperature scale
MAX_PARTS = 10_000  # parts without a Dirichlet boundary checked after a solve at most (one number each)
SAMPLES = 1_000_000  # values of an expression of T per evaluation when looking for one that is not zero
SPACED = 20  # one in this many temperatures for such an expression of x, y, z too (at each facet's points)


def _exchanging_facets(problem):
    """(term, facet mask) of each robin and radiation boundary: the facets where h (or epsilon)
    is not zero at t = 0, as a constant, an expression of x, y, z and t, a table of T (not zero
    somewhere), or an expression of T (not zero at some temperature of :func:`_sampled_temperatures`)."""
    terms = [(term, term.condition.h) for term in problem.robin]
    terms += [(term, term.condition.epsilon) for term in problem.radiation]
    for term, coefficient in terms:
        n_facets = len(term.facets.nodes)
        if isinstance(coefficient, TemperatureTable):  # piecewise linear: zero everywhere when at every point
            coefficient = float(np.any(coefficient.values != 0))
        if isinstance(coefficient, (int, float)):
            yield term, np.full(n_facets, coefficient != 0)
        elif coefficient.depends_on_temperature:
            yield term, _not_zero_at_some_temperature(coefficient, term.facets.points, problem.temperature_unit)
        else:
            with np.errstate(all="ignore"):
                values = np.asarray(coefficient(term.facets.points, 0.0), dtype=float)
            yield term, ~(np.broadcast_to(values, term.facets.points.shape[:2]) == 0).all(axis=1)


def _sampled_temperatures(expression, unit: str, every: int = 1) -> np.ndarray:
    """Where an expression of T is looked at for a value that is not zero: the ends of the pieces
    of the enthalpy tables (:mod:`solver.heat.enthalpy`: half a degree over the first 5000 above
    absolute zero, then 2% wider each, to the default upper end of run.temperature_range), one in
    ``every``, with the temperatures it compares T with among them, and the middle of each piece (a
    box ``T > a and T < b`` is 0 at both of its ends)."""
    low, high = default_temperature_range(unit)
    switches = [v for v in expression.switch_temperatures() if low <= v <= high]
    ends = np.union1d(starting_points(low, high, [])[::every], switches)
    return np.concatenate([ends, 0.5 * (ends[1:] + ends[:-1])])


def _not_zero_at_some_temperature(expression, points: np.ndarray, unit: str) -> np.ndarray:
    """Mask of the facets (``points``: their quadrature points, (facets, points, gdim)) where an
    expression of T (and of x, y, z, t: at t = 0) is not zero at some sampled temperature (NaN
    counts as not zero: the range checks name it). One of :data:`SPACED` pieces' ends is taken
    for an expression of x, y, z as well, whose values are at every point. Temperatures go in
    chunks of about :data:`SAMPLES` values, and only to the facets still zero at all of them."""
    on = np.zeros(points.shape[0], dtype=bool)
    if not expression.depends_on_space:  # one value for every facet at each temperature
        points = points[:1, :1]
    T = _sampled_temperatures(expression, unit, SPACED if expression.depends_on_space else 1)
    chunk = max(1, SAMPLES // max(points.shape[0] * points.shape[1], 1))
    for start in range(0, len(T), chunk):
        zero = np.flatnonzero(~on[: points.shape[0]])
        if not len(zero):
            break
        samples = T[start: start + chunk]
        where = np.broadcast_to(points[zero, :, None, :], (len(zero), points.shape[1], len(samples), points.shape[2]))
        on[zero] = ~(expression(where, 0.0, samples) == 0).all(axis=(1, 2))
    if points.shape[0] < len(on):  # (an expression without x, y, z: the first facet speaks for all)
        on[:] = on[0]
    return on


def exchange_names(problem) -> list[str]:
    """The robin and radiation boundaries that exchange heat in a steady solve: all but those whose
    h (or epsilon) is zero on every facet at its time (0), and at every temperature (collective).
    Such a boundary is insulated, and fixes no temperature."""
    terms = list(_exchanging_facets(problem))
    anywhere = np.array([on.any() for _, on in terms], dtype=np.int64)
    if len(anywhere):
        problem.mesh.comm.Allreduce(MPI.IN_PLACE, anywhere, op=MPI.MAX)
    return [term.name for (term, _), on in zip(terms, anywhere) if on]


def unheld_steady_case(problem) -> str:
    """Why a steady case held by no dirichlet boundary and no exchange (:func:`exchange_names`
    gave none) has no unique solution, naming the robin and radiation keys that are zero."""
    keys = [f"boundary.{term.name}.h" for term in problem.robin]
    keys += [f"boundary.{term.name}.epsilon" for term in problem.radiation]
    exchanges = "a robin or radiation one with h or epsilon" if problem.radiation else "a robin one with h"
    zero = ""
    if keys:
        temperatures = " and at every temperature" if problem.radiation else ""
        one = len(keys) == 1
        zero = (f"; {', '.join(keys)} {'is' if one else 'are'} zero on all of {'its' if one else 'their'} facets "
                f"at t = 0{temperatures}, which insulates")
    return (f"time.scheme = \"steady\" needs at least one dirichlet boundary, or {exchanges} > 0 somewhere{zero} "
            f"(with only insulated and neumann boundaries the steady temperature is not unique)")


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
    boundary whose h or epsilon is not zero there at t = 0 (at some temperature, when it depends on
    T), consistent on ghosts: a boundary that exchanges on one part only holds no other part."""
    mesh = problem.mesh
    mask = np.zeros(mesh.n_local)
    for name in problem.dirichlet.names:
        mask[mesh.boundaries[name].nodes.ravel()] = 1.0
    for term, on in _exchanging_facets(problem):
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
