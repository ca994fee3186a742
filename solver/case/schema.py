"""Every key a case file may hold: kind, limits, default and a one-line description.

The key reference of the documentation (docs/reference/case_keys.md) is generated from it; validation
(:mod:`solver.case.load`) reads its rules from here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

REQUIRED = object()

BOUNDARIES = {
    "rectangle": ("left", "right", "bottom", "top"),
    "box": ("left", "right", "bottom", "top", "front", "back"),
    "file": None,  # the mesh file's physical groups, checked once the mesh is read
}
STRUCTURED_CELLS = {
    "rectangle": ("quadrilateral", "triangle"),
    "box": ("hexahedron", "tetrahedron"),
}
STRUCTURED_KEYS = ("cell", "nx", "ny", "nz", "lengths", "origin")
SCHEMES = {"backward-euler": 1.0, "crank-nicolson": 0.5, "theta": None, "bdf2": None,
           "explicit-euler": 0.0, "steady": None}
BC_KEYS = {"dirichlet": ("value",), "neumann": ("flux",), "robin": ("h", "T_inf"),
           "radiation": ("epsilon", "T_inf"), "convection-radiation": ("h", "epsilon", "T_inf"), "insulated": ()}
TEMPERATURE_UNITS = {"C": 273.15, "K": 0.0}  # what to add to reach kelvin
STEFAN_BOLTZMANN = 5.670374419e-8  # W/(m^2 K^4)
SANE_MAX_C = 1.0e6  # the default upper end of run.temperature_range, in C
# how far below absolute zero a temperature may lie as round-off of its computation, in degrees: above the
# last digits of any temperature up to SANE_MAX_C (1e6 * 2.2e-16), far below any physical difference
ZERO_ROUNDOFF = 1e-9


def absolute_zero(unit: str) -> float:
    """Absolute zero in ``unit`` (C or K)."""
    return 0.0 - TEMPERATURE_UNITS[unit]


def below_absolute_zero(value: float, unit: str) -> bool:
    """Whether a temperature in ``unit`` lies below absolute zero by more than round-off
    (ZERO_ROUNDOFF): ``-273.15*(sin(x)**2 + cos(x)**2)`` in C is absolute zero, not below it."""
    return value < absolute_zero(unit) - ZERO_ROUNDOFF


def default_temperature_range(unit: str) -> list[float]:
    """run.temperature_range when not given: absolute zero to SANE_MAX_C, in ``unit``."""
    return [absolute_zero(unit), SANE_MAX_C + TEMPERATURE_UNITS["C"] - TEMPERATURE_UNITS[unit]]


@dataclass(frozen=True)
class Key:
    """One case-file key: its kind, limits, default and documentation."""

    kind: str  # int | float | str | choice | expr | floats | name | conductivity | property | dt | tolerance
    doc: str
    default: Any = REQUIRED
    low: float | None = None  # inclusive lower bound
    high: float | None = None  # inclusive upper bound
    positive: bool = False  # strictly > 0
    choices: tuple = ()
    space_time: bool = True  # False: a property of T only; an expression (initial) of x, y, z only


PROPERTY_FORMS = ("a number, an expression of T, or a table { table = [[T, value], ...] } or "
                  "{ file = \"name.csv\" }")
ROOT_SCHEMA: dict[str, "Key"] = {}  # filled below: keys at the top of a case file, before any section

SCHEMA: dict[str, dict[str, Key]] = {
    "mesh": {
        "type": Key("choice", "rectangle or box (structured), or file (mesh.file); default: file when mesh.file is "
                    "given, else rectangle", None, choices=tuple(BOUNDARIES)),
        "file": Key("str", "mesh file read with meshio: Gmsh .msh 2.2 or 4.1 (ASCII or binary), XDMF, VTU, ...; "
                    "physical groups name boundaries and regions", None),
        "partitioner": Key("choice", "how a mesh file is split among ranks: metis (pymetis), rcb (recursive "
                           "coordinate bisection), auto (metis if installed); mesh.file only (a rectangle or box is "
                           "split in blocks of its grid)", "auto", choices=("auto", "metis", "rcb")),
        "cell": Key("choice", "cell type; rectangle: quadrilateral|triangle, box: hexahedron|tetrahedron "
                    "(default: quadrilateral, hexahedron)",
                    None, choices=STRUCTURED_CELLS["rectangle"] + STRUCTURED_CELLS["box"]),
        "nx": Key("int", "number of cells along x", 16, low=1),
        "ny": Key("int", "number of cells along y", 16, low=1),
        "nz": Key("int", "number of cells along z (box only)", 16, low=1),
        "lengths": Key("floats", "edge lengths [Lx, Ly(, Lz)] in metres (default: 1 each)", None, positive=True),
        "origin": Key("floats", "lower corner [x0, y0(, z0)] in metres (default: 0 each)", None),
    },
    "element": {
        "degree": Key("choice", "Lagrange degree of the finite elements: 1 (P1 on triangles and tetrahedra, Q1 on "
                      "quadrilaterals and hexahedra) or 2 (P2, Q2: 6-, 10-, 9- and 27-node cells; a second-order "
                      "mesh file keeps its curved geometry)", 1, choices=(1, 2)),
    },
    "material": {
        "k": Key("conductivity", "thermal conductivity, W/(m K): a number, an expression of T, x, y, z, t, a "
                 "table in T, or [kx, ky(, kz)] of those for a diagonal anisotropic tensor", positive=True),
        "rho": Key("property", "density, kg/m^3: " + PROPERTY_FORMS, positive=True, space_time=False),
        "c": Key("property", "specific heat capacity, J/(kg K): " + PROPERTY_FORMS, positive=True,
                 space_time=False),
        "latent_heat": Key("float", "latent heat of melting, J/kg, released between solidus and liquidus "
                           "(0: no phase change)", 0.0, low=0.0),
        "solidus": Key("float", "temperature below which the material is solid (with latent_heat)", None),
        "liquidus": Key("float", "temperature above which it is liquid (> solidus; with latent_heat)", None),
    },
    "initial": {
        "temperature": Key("expr", "initial temperature: a number or an expression of x, y, z", 0.0,
                           space_time=False),
    },
    "source": {
        "f": Key("expr", "volumetric heat source, W/m^3: a number or an expression of x, y, z, t", 0.0),
    },
    "time": {
        "scheme": Key("choice", "time integration scheme (steady: solve for the steady state)",
                      "backward-euler", choices=tuple(SCHEMES)),
        "theta": Key("float", "implicitness for scheme = \"theta\" (0.5: Crank-Nicolson, 1: backward Euler)",
                     None, low=0.5, high=1.0),
        "dt": Key("dt", "time step, s (required by the transient schemes); \"auto\" (explicit-euler only) "
                  "picks 90% of the stable limit; "
                  "\"adaptive\" (implicit schemes) chooses each step from the local error (time.tolerance)",
                  None, positive=True),
        "t_end": Key("float", "end time, s (required by the transient schemes; a whole number of steps with a "
                     "fixed dt); not used by steady", None,
                     positive=True),
        "tolerance": Key("tolerance", "adaptive dt: local error allowed per step, a number (relative and absolute "
                         "alike) or { relative = r, absolute = a } (a in the temperature unit); the error of each "
                         "node is weighed by a + r |T|", None),
        "dt_initial": Key("float", "adaptive dt: the first step tried, s (default t_end / 10^4)", None, positive=True),
        "dt_min": Key("float", "adaptive dt: the smallest step, s; a step that fails at it stops the run "
                      "(default t_end / 10^10)", None, positive=True),
        "dt_max": Key("float", "adaptive dt: the largest step, s, at least t_end / 10^9 (default t_end)", None,
                      positive=True),
        "mass": Key("choice", "mass matrix: consistent (the default), or lumped (row sums; always for "
                    "explicit-euler)",
                    None, choices=("consistent", "lumped")),
    },
    "solver": {
        "preconditioner": Key("choice", "preconditioner of the conjugate gradient method: auto (chosen from the "
                              "dimension, DOFs, ranks and solves per matrix, and printed), amg (distributed "
                              "smoothed-aggregation multigrid), bjacobi (block Jacobi, each rank's block by LU), "
                              "ilu (block Jacobi with ILU), bamg (block Jacobi, a pyamg V-cycle per rank), "
                              "jacobi, or none",
                              "auto", choices=("auto", "amg", "bjacobi", "ilu", "bamg", "jacobi", "none")),
        "rtol": Key("float", "relative residual tolerance ||r|| <= rtol ||b||", 1e-10, positive=True, high=0.5),
        "atol": Key("float", "absolute residual tolerance", 0.0, low=0.0),
        "max_iterations": Key("int", "iteration cap of each linear solve", 2000, low=1),
    },
    "nonlinear": {
        "method": Key("choice", "nonlinear iteration when a property depends on T or a boundary radiates: newton "
                      "(consistent Jacobian, quadratic convergence) or picard (properties lagged: linear "
                      "convergence, symmetric systems)", "newton", choices=("newton", "picard")),
        "rtol": Key("float", "converged when the residual norm falls below rtol times its value at the start of "
                    "the step", 1e-9, positive=True, high=0.5),
        "atol": Key("float", "or below this absolute residual norm (W per node, times dt in transient steps): a "
                    "floor for residuals at round-off, at most 1 (round-off is about 1e-4 J per node for cubic "
                    "metres of concrete; a larger floor ends the steps of small bodies before any iteration)", 0.0,
                    low=0.0, high=1.0),
        "stol": Key("float", "or when the update is below stol times the temperature norm (both l2), at most 1e-3 "
                    "(a larger update is no sign of convergence: Picard's error is several times its last update)",
                    1e-12, low=0.0, high=1e-3),
        "max_iterations": Key("int", "iteration cap of each nonlinear solve", 30, low=1),
        "line_search": Key("choice", "backtracking line search on the residual norm: on or off", "on",
                           choices=("on", "off")),
        "fallback": Key("choice", "when Newton fails: picard (retry the solve with Picard iterations) or none",
                        "picard", choices=("picard", "none")),
        "linear_tolerance": Key("choice", "relative tolerance of each linear solve: fixed (solver.rtol every "
                                "time: exact Newton) or adaptive (Eisenstat-Walker: loose while the residual is "
                                "large, tighter as it falls, never tighter than the nonlinear rtol needs)",
                                "fixed", choices=("fixed", "adaptive")),
    },
    "checkpoint": {
        "every": Key("int", "write a checkpoint every N steps (0: only at the end and when stopped)", 0, low=0),
        "wall_interval": Key("float", "also every this many seconds of wall time (0: off)", 0.0, low=0.0),
        "keep": Key("int", "how many checkpoints to keep", 2, low=1),
    },
    "run": {
        "wall_limit": Key("duration", "stop cleanly (checkpoint, exit 75) before this much wall time: "
                          "\"HH:MM:SS\", \"D-HH:MM:SS\" or seconds; default: the SLURM job's end time",
                          None),
        "hang_timeout": Key("float", "abort with every rank's stack when no step completes in this many "
                            "seconds (0: off; else at least 1)", 0.0, low=0.0, high=1e9),
        "temperature_range": Key("floats", "[min, max] of sane temperatures: outside it (or NaN/Inf) the run "
                                 "stops at that step; min >= absolute zero; default: absolute zero to 10^6 C, "
                                 "[-273.15, 1e6] in C, [0, 1000273.15] in K", None),
    },
    "output": {
        "directory": Key("str", "results go to <directory>/<name>/", "outputs"),
        "name": Key("name", "case name used for the results files (default: the case file's stem)", None),
        "every": Key("int", "write the temperature every N steps (the last step is always written)", 1, low=1),
        "interval": Key("float", "write the temperature every this many seconds of simulated time instead (steps "
                        "land on these times; with a fixed dt they must be whole numbers of steps)", None,
                        positive=True),
        "times": Key("floats", "write the temperature at these times instead, s: increasing, in (0, t_end] "
                     "(steps land on them; with a fixed dt they must fall on steps)", None, positive=True),
        "probes": Key("points", "points [[x, y(, z)], ...] whose temperature is recorded at every (accepted) "
                      "step (at most 10,000)", None),
        "driver": Key("choice", "HDF5 writer: auto (mpio when h5py has MPI), mpio, or gathered through rank 0 "
                      "(also taken for a file's path of more than 200 bytes, which MPI-IO cannot open)",
                      "auto", choices=("auto", "mpio", "gathered")),
        "write_timeout": Key("float", "end the run with exit 74 when one write of the results or a checkpoint has "
                             "not finished on every rank after this many seconds, plus 1 s per 20 MB it writes "
                             "(a disk that filled during a collective write, a stalled file system; 0: off; "
                             "else at least 1)", 60.0, low=0.0, high=1e9),
    },
}
BOUNDARY_SCHEMA: dict[str, Key] = {
    "type": Key("choice", "boundary condition kind (unlisted boundaries are insulated)", choices=tuple(BC_KEYS)),
    "value": Key("expr", "dirichlet: temperature, a number or an expression of x, y, z, t", None),
    "flux": Key("expr", "neumann: heat flux into the body, W/m^2, an expression of x, y, z, t", None),
    "h": Key("expr", "robin, convection-radiation: heat transfer coefficient, W/(m^2 K), >= 0, an expression of "
             "x, y, z, t", None, low=0.0),
    "T_inf": Key("expr", "robin, radiation, convection-radiation: ambient temperature, an expression of x, y, z, t",
                 None),
    "epsilon": Key("property", "radiation, convection-radiation: emissivity in [0, 1], a number, an expression of "
                   "T, x, y, z, t or a table in T (flux epsilon sigma (T^4 - T_inf^4) in kelvin)", None,
                   low=0.0, high=1.0),
}
ROOT_SCHEMA.update({
    "temperature_unit": Key("choice", "unit of every temperature in the case (and the results): C or K; "
                            "required with radiation (sigma T^4 needs kelvin); default C", None,
                            choices=tuple(TEMPERATURE_UNITS)),
})
REGION_SCHEMA: dict[str, Key] = {
    "group": Key("str", "physical group of the mesh file whose cells form the region", None),
    "x": Key("floats", "x range [min, max] of the region's box (default: unbounded)", None),
    "y": Key("floats", "y range [min, max]", None),
    "z": Key("floats", "z range [min, max]", None),
    "k": Key("conductivity", "conductivity in the region (default: material.k), in any form of material.k", None,
             positive=True),
    "rho": Key("property", "density in the region (default: material.rho), in any form of material.rho", None,
               positive=True, space_time=False),
    "c": Key("property", "heat capacity in the region (default: material.c), in any form of material.c", None,
             positive=True, space_time=False),
    "latent_heat": Key("float", "latent heat in the region, J/kg (default: material.latent_heat)", None, low=0.0),
    "solidus": Key("float", "solidus in the region (default: material.solidus)", None),
    "liquidus": Key("float", "liquidus in the region (default: material.liquidus)", None),
}
