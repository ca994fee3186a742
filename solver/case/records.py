"""Typed records of a validated case: what the mesh, the physics, the time stepping, the linear
solver, the output and the run control receive. They are built once from the validated values
(:func:`sections`); nothing below :mod:`solver.case` and :mod:`solver.app` reads raw case keys.
"""

from __future__ import annotations

from dataclasses import dataclass

from solver.case.expressions import Expression
from solver.case.schema import SCHEMES


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
class Material:
    """Conductivity (a number, or the diagonal of an anisotropic tensor), density, heat capacity."""

    k: float | tuple[float, ...]
    rho: float
    c: float


@dataclass(frozen=True)
class Region:
    """Where a region applies (a mesh file group and/or a box on cell centroids) and what it
    overrides (None: the value of the material or of an earlier region)."""

    name: str
    group: str | None
    box: tuple[tuple[float, float] | None, ...]  # (x range, y range[, z range]); None: unbounded
    k: float | tuple[float, ...] | None
    rho: float | None
    c: float | None


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


BoundaryCondition = DirichletBC | NeumannBC | RobinBC


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

    def of_kind(self, kind: type) -> list:
        return [bc for bc in self.boundaries if isinstance(bc, kind)]


@dataclass(frozen=True)
class TimeSpec:
    scheme: str
    theta: float | None  # implicitness of the theta schemes (backward Euler 1, Crank-Nicolson 0.5)
    dt: float | str | None  # seconds, or "auto" (explicit Euler)
    t_end: float | None
    mass: str  # consistent | lumped

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


def _k(value):
    return tuple(value) if isinstance(value, list) else value


def mesh_spec(mesh: dict) -> MeshSpec:
    if mesh["type"] == "file":
        return MeshFileSpec(mesh["file"], mesh["partitioner"])
    n = (mesh["nx"], mesh["ny"]) + ((mesh["nz"],) if mesh["type"] == "box" else ())
    return StructuredMeshSpec(mesh["type"], mesh["cell"], n, tuple(mesh["lengths"]), tuple(mesh["origin"]))


def physics(values: dict) -> Physics:
    m = values["material"]
    regions = tuple(Region(name, r.get("group"), tuple(r.get(axis) and tuple(r[axis]) for axis in "xyz"),
                           _k(r.get("k")), r.get("rho"), r.get("c"))
                    for name, r in values["region"].items())
    kinds = {"dirichlet": lambda n, b: DirichletBC(n, Expression(b["value"])),
             "neumann": lambda n, b: NeumannBC(n, Expression(b["flux"])),
             "robin": lambda n, b: RobinBC(n, Expression(b["h"]), Expression(b["T_inf"]))}
    boundaries = tuple(kinds[b["type"]](name, b) for name, b in values["boundary"].items() if b["type"] in kinds)
    return Physics(Material(_k(m["k"]), m["rho"], m["c"]), regions, boundaries, Expression(values["source"]["f"]),
                   Expression(values["initial"]["temperature"]), values["time"]["mass"] == "lumped")


def time_spec(time: dict) -> TimeSpec:
    theta = time["theta"] if time["scheme"] == "theta" else SCHEMES[time["scheme"]]
    return TimeSpec(time["scheme"], theta, time["dt"], time["t_end"], time["mass"])


def output_spec(output: dict) -> OutputSpec:
    probes = output["probes"]
    return OutputSpec(output["directory"], output["name"], output["every"],
                      None if probes is None else tuple(tuple(p) for p in probes), output["driver"])


def run_spec(run: dict) -> RunSpec:
    return RunSpec(run["wall_limit"], run["hang_timeout"], tuple(run["temperature_range"]))


def sections(values: dict) -> dict:
    """Every section of validated case values as its record (the fields of a Case)."""
    return {"mesh": mesh_spec(values["mesh"]), "physics": physics(values), "time": time_spec(values["time"]),
            "solver": SolverSpec(**values["solver"]), "output": output_spec(values["output"]),
            "checkpoint": CheckpointSpec(**values["checkpoint"]), "run": run_spec(values["run"])}
