"""Typed records of a validated case: the :class:`Case` itself and what the mesh, the physics,
the time stepping, the linear solver, the output and the run control receive. They are built once
from the validated values (:func:`sections`); no stage reads raw case keys (``Case.values`` is
kept only for provenance: the resolved case written into results and checkpoints, and its hash).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from solver.case.expressions import Expression
from solver.case.schema import SCHEMES, TEMPERATURE_UNITS
from solver.case.shown import cut
from solver.case.tables import TemperatureTable

Property = float | Expression | TemperatureTable  # a value, an expression (of T, ...), a table in T


def is_constant(p) -> bool:
    """A property that is one number (or a tuple of numbers)."""
    if isinstance(p, tuple):
        return all(is_constant(c) for c in p)
    return isinstance(p, float)


@dataclass(frozen=True)
class StructuredMeshSpec:
    """A rectangle or box of ``n`` cells per direction, built in parallel."""

    shape: str  # rectangle | box
    cell: str  # triangle, quadrilateral, tetrahedron or hexahedron
    n: tuple[int, ...]
    lengths: tuple[float, ...]
    origin: tuple[float, ...]

    @property
    def dim(self) -> int:
        return len(self.n)


@dataclass(frozen=True)
class MeshFileSpec:
    """A mesh file, read on rank 0 and partitioned in parallel."""

    path: str
    partitioner: str  # auto | metis | rcb


MeshSpec = StructuredMeshSpec | MeshFileSpec


@dataclass(frozen=True)
class ElementSpec:
    """The finite elements: Lagrange ``degree`` 1 (P1/Q1) or 2 (P2/Q2); the nodes of the cells
    are the degrees of freedom."""

    degree: int = 1


@dataclass(frozen=True)
class Material:
    """Conductivity (a property, or the diagonal of an anisotropic tensor of properties), density,
    heat capacity; each a number, an expression or a table in T."""

    k: Property | tuple[Property, ...]
    rho: Property
    c: Property
    melting: "Melting | None" = None

    @property
    def constant(self) -> bool:
        return is_constant(self.k) and is_constant(self.rho) and is_constant(self.c) and self.melting is None


@dataclass(frozen=True)
class Melting:
    """Latent heat L (J/kg) released linearly in T between the solidus and the liquidus."""

    latent_heat: float
    solidus: float
    liquidus: float

    def liquid_fraction(self, T):
        """0 below the solidus, 1 above the liquidus, linear between."""
        return np.clip((np.asarray(T) - self.solidus) / (self.liquidus - self.solidus), 0.0, 1.0)


@dataclass(frozen=True)
class Region:
    """Where a region applies (a mesh file group and/or a box on cell centroids) and what it
    overrides (None: the value of the material or of an earlier region)."""

    name: str
    group: str | None
    box: tuple[tuple[float, float] | None, ...]  # (x range, y range[, z range]); None: unbounded
    k: Property | tuple[Property, ...] | None
    rho: Property | None
    c: Property | None
    melting: Melting | None = None  # (already merged with the material's keys)

    @property
    def constant(self) -> bool:
        return (all(p is None or is_constant(p) for p in (self.k, self.rho, self.c))
                and (self.melting is None or not self.melting.latent_heat))


@dataclass(frozen=True)
class DirichletBC:
    name: str
    value: Expression


@dataclass(frozen=True)
class NeumannBC:
    """Heat flux ``flux`` into the body (W/m^2)."""

    name: str
    flux: Expression


@dataclass(frozen=True)
class RobinBC:
    """Convection ``-k du/dn = h (u - T_inf)``."""

    name: str
    h: Expression
    T_inf: Expression


@dataclass(frozen=True)
class RadiationBC:
    """Radiation to surroundings at T_inf: heat flux out ``epsilon sigma (T^4 - T_inf^4)``, T in kelvin."""

    name: str
    epsilon: Property
    T_inf: Expression


BoundaryCondition = DirichletBC | NeumannBC | RobinBC | RadiationBC


@dataclass(frozen=True)
class Physics:
    """The heat equation of a case: materials, regions (later ones win), boundary conditions in
    case-file order (insulated boundaries are left out: they add nothing), source, initial value."""

    material: Material
    regions: tuple[Region, ...]
    boundaries: tuple[BoundaryCondition, ...]
    source: Expression
    initial: Expression
    lumped_mass: bool
    temperature_unit: str = "C"  # C | K
    named_boundaries: tuple[str, ...] = ()  # every boundary the case names, insulated ones included

    def of_kind(self, kind: type) -> list:
        return [bc for bc in self.boundaries if isinstance(bc, kind)]

    @property
    def kelvin_offset(self) -> float:
        """What to add to a case temperature to get kelvin."""
        return TEMPERATURE_UNITS[self.temperature_unit]

    @property
    def nonlinear(self) -> bool:
        """True when a property is not a plain number or a boundary radiates: the equations are
        then solved by Newton (or Picard) iterations."""
        return self.nonlinear_key is not None

    @property
    def nonlinear_key(self) -> str | None:
        """The first key that makes the case nonlinear (for messages), or None."""
        for where, holder in [("material", self.material)] + [(f"region.{cut(r.name)}", r) for r in self.regions]:
            for name in ("k", "rho", "c"):
                value = getattr(holder, name)
                if value is not None and not is_constant(value):
                    return f"{where}.{name}"
            if holder.melting is not None and (where == "material" or holder.melting.latent_heat):
                return f"{where}.latent_heat"
        radiating = self.of_kind(RadiationBC)
        return f"boundary.{radiating[0].name}.epsilon" if radiating else None


@dataclass(frozen=True)
class NonlinearSpec:
    method: str  # newton | picard
    rtol: float
    atol: float
    stol: float
    max_iterations: int
    line_search: bool
    fallback: str  # picard | none
    linear_tolerance: str = "fixed"  # fixed (solver.rtol) | adaptive (Eisenstat-Walker)


@dataclass(frozen=True)
class AdaptiveSpec:
    """Error-controlled time steps: the local error of each node within ``absolute + relative |T|``."""

    relative: float
    absolute: float
    dt_initial: float
    dt_min: float
    dt_max: float


@dataclass(frozen=True)
class TimeSpec:
    scheme: str
    theta: float | None  # implicitness of the theta schemes (backward Euler 1, Crank-Nicolson 0.5)
    dt: float | str | None  # seconds, "auto" (explicit Euler) or "adaptive" (implicit schemes)
    t_end: float | None
    mass: str  # consistent | lumped
    adaptive: AdaptiveSpec | None = None

    @property
    def steady(self) -> bool:
        return self.scheme == "steady"


@dataclass(frozen=True)
class SolverSpec:
    preconditioner: str
    rtol: float
    atol: float
    max_iterations: int


@dataclass(frozen=True)
class OutputSpec:
    directory: str
    name: str
    every: int
    probes: tuple[tuple[float, ...], ...] | None
    driver: str  # auto | mpio | gathered
    times: tuple[float, ...] = ()  # output.interval or output.times resolved, t_end last; () writes every N steps
    interval: float | None = None  # output.interval, when the times come from it
    write_timeout: float = 60.0  # seconds one write may take (plus its size's share; 0: unbounded)


@dataclass(frozen=True)
class CheckpointSpec:
    every: int
    wall_interval: float
    keep: int


@dataclass(frozen=True)
class RunSpec:
    wall_limit: float | None
    hang_timeout: float
    temperature_range: tuple[float, float]


def _property(value) -> Property | None:
    if value is None or isinstance(value, float):
        return value
    if isinstance(value, str):
        return Expression(value, temperature=True)
    return TemperatureTable(value["table"], value.get("file", "inline"))


NO_MELTING = Melting(0.0, 0.0, 1.0)  # a region that does not melt where the material does


def _melting(m: dict) -> Melting | None:
    return Melting(m["latent_heat"], m["solidus"], m["liquidus"]) if m.get("latent_heat") else None


def _region_melting(r: dict, m: dict) -> Melting | None:
    """A region's melting when it sets any of its keys (the others from the material)."""
    keys = ("latent_heat", "solidus", "liquidus")
    if all(r.get(k) is None for k in keys):
        return None
    return _melting({k: r[k] if r.get(k) is not None else m[k] for k in keys}) or NO_MELTING


def _k(value):
    return tuple(_property(v) for v in value) if isinstance(value, list) else _property(value)


def mesh_spec(mesh: dict) -> MeshSpec:
    if mesh["type"] == "file":
        return MeshFileSpec(mesh["file"], mesh["partitioner"])
    n = (mesh["nx"], mesh["ny"]) + ((mesh["nz"],) if mesh["type"] == "box" else ())
    return StructuredMeshSpec(mesh["type"], mesh["cell"], n, tuple(mesh["lengths"]), tuple(mesh["origin"]))


def physics(values: dict) -> Physics:
    m = values["material"]
    regions = tuple(Region(name, r.get("group"), tuple(r.get(axis) and tuple(r[axis]) for axis in "xyz"),
                           _k(r.get("k")), _property(r.get("rho")), _property(r.get("c")), _region_melting(r, m))
                    for name, r in values["region"].items())
    kinds = {"dirichlet": lambda n, b: [DirichletBC(n, Expression(b["value"]))],
             "neumann": lambda n, b: [NeumannBC(n, Expression(b["flux"]))],
             "robin": lambda n, b: [RobinBC(n, Expression(b["h"]), Expression(b["T_inf"]))],
             "radiation": lambda n, b: [RadiationBC(n, _property(b["epsilon"]), Expression(b["T_inf"]))],
             "convection-radiation": lambda n, b: [RobinBC(n, Expression(b["h"]), Expression(b["T_inf"])),
                                                   RadiationBC(n, _property(b["epsilon"]), Expression(b["T_inf"]))]}
    boundaries = tuple(bc for name, b in values["boundary"].items() if b["type"] in kinds
                       for bc in kinds[b["type"]](name, b))
    return Physics(Material(_k(m["k"]), _property(m["rho"]), _property(m["c"]), _melting(m)), regions, boundaries,
                   Expression(values["source"]["f"]), Expression(values["initial"]["temperature"]),
                   values["time"]["mass"] == "lumped" and values["time"]["scheme"] != "steady",
                   values.get("temperature_unit") or "C",
                   tuple(values["boundary"]))


def time_spec(time: dict) -> TimeSpec:
    theta = time["theta"] if time["scheme"] == "theta" else SCHEMES[time["scheme"]]
    if time["scheme"] == "steady":  # (a transient case run steady with --set: its dt and t_end are not used)
        return TimeSpec("steady", theta, None, None, time["mass"], None)
    adaptive = adaptive_spec(time) if time["dt"] == "adaptive" else None
    return TimeSpec(time["scheme"], theta, time["dt"], time["t_end"], time["mass"], adaptive)


def adaptive_spec(time: dict) -> AdaptiveSpec:
    """The adaptive-step settings with their defaults: tolerance 1e-3 (relative and absolute),
    dt_max t_end, dt_min t_end 1e-10, dt_initial t_end 1e-4 (both at most dt_max)."""
    t_end = time["t_end"]
    tol = time["tolerance"] or {"relative": 1e-3, "absolute": 1e-3}
    dt_max = time["dt_max"] or t_end
    dt_min = time["dt_min"] or min(t_end * 1e-10, dt_max)
    dt_initial = time["dt_initial"] or min(t_end * 1e-4, dt_max)
    return AdaptiveSpec(tol["relative"], tol["absolute"], dt_initial, dt_min, dt_max)


def output_spec(output: dict, t_end: float | None) -> OutputSpec:
    """The output settings; ``t_end`` None (a steady run) leaves out the output times."""
    probes = output["probes"]
    return OutputSpec(output["directory"], output["name"], output["every"],
                      None if probes is None else tuple(tuple(p) for p in probes), output["driver"],
                      tuple(output_times(output, t_end)) if t_end else (), output["interval"] if t_end else None,
                      output["write_timeout"])


MAX_STEPS = 10**9  # time steps a run may take: beyond, t_end / dt cannot tell whole steps (1e-9 relative)
MAX_OUTPUT_TIMES = 1_000_000  # snapshots a run may write (output.every, output.interval)


def whole_steps(t: float, dt: float) -> bool:
    """Whether t is a whole number of steps of dt (to 1e-9 relative), at most MAX_STEPS of them."""
    steps = t / dt
    if not math.isfinite(steps) or abs(steps) > MAX_STEPS:
        return False
    return abs(steps - round(steps)) <= 1e-9 * max(1.0, steps)


def shared_step(times, dt: float, start: float = 0.0) -> tuple[float, float] | None:
    """The first two of the increasing ``times`` after ``start`` that fall on one fixed step of
    ``dt`` counted from ``start`` (one snapshot for both: the second never written); None: none."""
    later = np.asarray([t for t in times if t > start], dtype=float)
    same = np.flatnonzero(np.diff(np.rint((later - start) / dt)) == 0)
    return (float(later[same[0]]), float(later[same[0] + 1])) if len(same) else None


def output_times(output: dict, t_end: float) -> list[float]:
    """The times output.interval or output.times asks for, t_end last (empty with neither)."""
    if output["times"] is not None:
        times = [float(t) for t in output["times"]]
    elif output["interval"] is not None:
        n = math.floor(t_end / output["interval"] * (1 + 1e-12))
        times = [k * output["interval"] for k in range(1, n + 1)]
    else:
        return []
    if not times or abs(times[-1] - t_end) > 1e-12 * t_end:
        times.append(t_end)
    else:
        times[-1] = t_end
    return times


def nonlinear_spec(n: dict) -> NonlinearSpec:
    return NonlinearSpec(n["method"], n["rtol"], n["atol"], n["stol"], n["max_iterations"], n["line_search"] == "on",
                         n["fallback"], n["linear_tolerance"])


def run_spec(run: dict) -> RunSpec:
    return RunSpec(run["wall_limit"], run["hang_timeout"], tuple(run["temperature_range"]))


def sections(values: dict) -> dict:
    """Every section of validated case values as its record (the fields of a Case)."""
    time = time_spec(values["time"])  # (steady: no t_end, whatever the case file holds)
    return {"mesh": mesh_spec(values["mesh"]), "element": ElementSpec(values["element"]["degree"]),
            "physics": physics(values), "time": time,
            "solver": SolverSpec(**values["solver"]), "nonlinear": nonlinear_spec(values["nonlinear"]),
            "output": output_spec(values["output"], time.t_end),
            "checkpoint": CheckpointSpec(**values["checkpoint"]), "run": run_spec(values["run"])}


@dataclass(frozen=True)
class Case:
    """A validated case: where it came from, and its sections as typed records, built once when
    it is loaded (:func:`solver.case.load.load_case`). ``values`` (the validated values with
    defaults filled in) serve provenance only: the resolved case text written into results and
    checkpoints, and the hash a restart compares."""

    source: str  # the file name used in messages
    name: str
    text: str  # the case file as given (before overrides)
    values: dict  # validated values with defaults filled in (provenance and the case hash only)
    overrides: list
    mesh: MeshSpec
    element: ElementSpec
    physics: Physics
    time: TimeSpec
    solver: SolverSpec
    nonlinear: NonlinearSpec
    output: OutputSpec
    checkpoint: CheckpointSpec
    run: RunSpec

    @property
    def dim(self) -> int | None:
        """2 or 3; None for a mesh file (known once it is read)."""
        return self.mesh.dim if isinstance(self.mesh, StructuredMeshSpec) else None

    @property
    def steady(self) -> bool:
        return self.time.steady

    @property
    def mesh_key(self) -> str:
        """The case keys that define the mesh's geometry (for messages about its cells)."""
        if isinstance(self.mesh, MeshFileSpec):
            return f"mesh.file = {self.mesh.path}"
        return "mesh.lengths / mesh.origin"
