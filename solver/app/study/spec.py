"""The study file: a base case, the case keys it varies and how, and what it records.

    [study]
    case = "wall.toml"            # the base case, relative to this file
    name = "wall_mc"              # results: <output directory>/<name>/<name>.study.h5 (default: the file's stem)
    method = "monte-carlo"        # monte-carlo | latin-hypercube | sobol | grid | list
    samples = 64                  # random methods (sobol: a power of 2)
    seed = 2026                   # the same seed gives the same samples on any number of ranks

    [parameters]                  # case keys that hold a number in the base case
    "region.insulation.k" = { distribution = "lognormal", mu = -3.2, sigma = 0.2 }
    "boundary.right.h" = { distribution = "uniform", low = 10.0, high = 40.0 }

    [outputs]
    fields = true                 # mean, std, min and max of every nodal field at every output time
    thresholds = [18.0]           # and the probability that the temperature exceeds each
    save_runs = false             # a full results file per sample

Distributions (scipy.stats): uniform (low, high), normal (mean, std), lognormal (mu, sigma of
log x), truncated-normal (mean, std, low, high). Grid parameters give ``values = [...]`` or
``low``, ``high``, ``count``; list parameters give ``values`` of one common length.
"""

from __future__ import annotations

import json
import math
import re
import tomllib
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np

from solver.case.load import deep_key, load_case, read_text, valid_name
from solver.case.records import Case
from solver.case.schema import absolute_zero
from solver.case.shown import counted, cut, printable, shown
from solver.errors import CaseError

METHODS = ("monte-carlo", "latin-hypercube", "sobol", "grid", "list")
RANDOM = ("monte-carlo", "latin-hypercube", "sobol")
DISTRIBUTIONS = {"uniform": ("low", "high"), "normal": ("mean", "std"), "lognormal": ("mu", "sigma"),
                 "truncated-normal": ("mean", "std", "low", "high")}
MAX_SAMPLES = 1_000_000
MAX_THRESHOLDS = 16
STUDY_KEYS = {"case", "name", "method", "samples", "seed"}
OUTPUT_KEYS = {"fields", "thresholds", "save_runs"}
# keys whose change would give samples different meshes (their nodes: element.degree adds the edges'
# midpoints) or output times (no field statistics then)
SHAPE_KEYS = ("mesh.", "element.", "time.", "output.")
BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


@dataclass(frozen=True)
class Parameter:
    """One varied case key: a distribution with its parameters, or explicit values."""

    key: str
    distribution: str | None = None  # random methods
    args: dict = field(default_factory=dict)
    values: tuple[float, ...] = ()  # grid and list methods
    integer: bool = False  # the key holds an integer (mesh.nx): values are rounded to the nearest one


@dataclass(frozen=True)
class StudySpec:
    source: str
    text: str
    case_path: Path
    case_text: str
    base: Case
    name: str
    method: str
    samples: int
    seed: int
    parameters: tuple[Parameter, ...]
    fields: bool = True
    thresholds: tuple[float, ...] = ()
    save_runs: bool = False

    @property
    def keys(self) -> list[str]:
        return [p.key for p in self.parameters]

    @cached_property
    def base_hash(self) -> str:
        """The hash of the base case's values, the contents of the tables it reads included (once: a
        table of many rows takes a while)."""
        from solver.io.checkpoint import case_hash

        return case_hash(self.base.values)

    def case_for(self, values) -> Case:
        """The base case with this sample's values (CaseError when one is not allowed there)."""
        overrides = [override(p.key, int(v) if p.integer else float(v)) for p, v in zip(self.parameters, values)]
        return load_case(self.case_text, str(self.case_path), overrides, default_name=self.base.name)


def override(key: str, value) -> str:
    """The ``--set`` item that gives the case ``key`` (its parts between the dots) ``value``: a part
    other than a bare TOML key (a region named ``hot=zone``) in quotes, so that it is taken whole."""
    parts = (part if BARE_KEY.fullmatch(part) else json.dumps(part) for part in key.split("."))
    return f"{'.'.join(parts)}={value!r}"


def _number(value, where: str, integer: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (integer and not isinstance(value, int)):
        raise CaseError(f"{where}: expected {'an integer' if integer else 'a number'}, got {printable(shown(value))}")
    if isinstance(value, int) and abs(value) >= (2**63 if integer else 1.7e308):
        raise CaseError(f"{where}: expected {'an integer below 2^63' if integer else 'a finite number'}, got "
                        f"{shown(value)}")
    if not math.isfinite(value):
        raise CaseError(f"{where}: expected a finite number, got {value!r}")
    return value


def _lookup(values: dict, key: str):
    node = values
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def _held(value) -> str:
    """What a key of the base case holds, as a message names it: a table by its points and file."""
    if isinstance(value, dict) and isinstance(value.get("table"), list):
        file = f" from {cut(value['file'])}" if isinstance(value.get("file"), str) else ""
        return f"a table of {counted(len(value['table']), '(T, value) point')}{file}"
    return shown(value)


def _parameter(source: str, key: str, raw, method: str, base: Case) -> Parameter:
    where = f"{source}: parameters.{printable(key)}"
    nested = [k for k, v in raw.items() if isinstance(v, dict)] if isinstance(raw, dict) else []
    if nested:  # material.k = {...} unquoted: TOML nests it as parameters.material.k
        dotted = printable(f"{key}.{nested[0]}")
        raise CaseError(f"{where}: a dotted key must be quoted, as TOML nests it otherwise: write "
                        f"\"{dotted}\" = {{ ... }}")
    current = _lookup(base.values, key)
    if current is None or isinstance(current, (bool, dict)) or not isinstance(current, (int, float)):
        what = ("not a key of the base case" if current is None
                else f"not a numeric key (it holds {_held(current)})")
        raise CaseError(f"{where}: {what}; a study varies case keys that hold a number, such as material.k")
    if not isinstance(raw, dict):
        raise CaseError(f"{where}: expected a table such as {{ distribution = \"uniform\", low = 1, high = 2 }}")
    if method in RANDOM:
        dist = raw.get("distribution")
        if dist not in DISTRIBUTIONS:
            raise CaseError(f"{where}.distribution: expected one of {', '.join(DISTRIBUTIONS)} "
                            f"(method {method}), got {printable(repr(dist))}")
        names = DISTRIBUTIONS[dist]
        unknown = sorted(set(raw) - {"distribution", *names})
        if unknown or any(n not in raw for n in names):
            raise CaseError(f"{where}: distribution {dist} takes {', '.join(names)}"
                            + (f" (unknown: {', '.join(map(printable, unknown))})" if unknown else ""))
        args = {n: _number(raw[n], f"{where}.{n}") for n in names}
        if dist == "uniform" and not args["low"] < args["high"]:
            raise CaseError(f"{where}: uniform needs low < high, got low = {args['low']:g}, high = {args['high']:g}")
        for scale in ("std", "sigma"):
            if scale in args and not args[scale] > 0:
                raise CaseError(f"{where}.{scale}: must be > 0, got {args[scale]:g}")
        if dist == "truncated-normal" and not args["low"] < args["high"]:
            raise CaseError(f"{where}: truncated-normal needs low < high, got low = {args['low']:g}, "
                            f"high = {args['high']:g}")
        return Parameter(key, dist, args, integer=isinstance(current, int))
    if "values" in raw:
        if set(raw) != {"values"} or not isinstance(raw["values"], list) or not raw["values"]:
            raise CaseError(f"{where}: expected values = [a non-empty list of numbers] (method {method})")
        values = tuple(float(_number(v, f"{where}.values")) for v in raw["values"])
    elif method == "grid" and set(raw) == {"low", "high", "count"}:
        lo, hi = _number(raw["low"], f"{where}.low"), _number(raw["high"], f"{where}.high")
        count = int(_number(raw["count"], f"{where}.count", integer=True))
        if count < 1 or count > MAX_SAMPLES or not lo <= hi:
            raise CaseError(f"{where}: grid needs low <= high and 1 <= count <= {MAX_SAMPLES}")
        values = tuple((lo + (hi - lo) * np.arange(count) / max(count - 1, 1)).tolist())  # (float for float as a loop)
    else:
        allowed = "values = [...], or low, high and count" if method == "grid" else "values = [...]"
        raise CaseError(f"{where}: method {method} takes {allowed}")
    return Parameter(key, None, {}, values, integer=isinstance(current, int))


def _check_support(source: str, p: Parameter, case_text: str, case_path: Path, base: Case) -> None:
    """Refuse a parameter whose bounded distribution reaches beyond its key's own range (h >= 0,
    k > 0): a share of the samples fails, and the statistics silently cover the others. The ends
    are checked, each with the other keys at their base values; an unbounded law (normal,
    lognormal) may fail some samples, and values listed (grid, list) fail each its own sample, as
    documented."""
    if p.distribution in ("uniform", "truncated-normal"):  # (a sample never falls on an end: just inside)
        low, high = p.args["low"], p.args["high"]
        inside = 1e-6 * (high - low)
        probes, what = (low + inside, high - inside), f"{p.distribution} distribution from {low:g} to " \
            f"{high:g} takes values"
    else:
        return
    own = re.compile(rf"{re.escape(p.key)} must be (>|<|at least|at most|a positive|a finite)")
    for probe in probes:
        probe = round(probe) if p.integer else float(probe)
        try:
            load_case(case_text, str(case_path), [override(p.key, probe)], default_name=base.name)
        except CaseError as exc:
            if own.search(str(exc)):
                reason = str(exc).split(": ", 1)[-1].split(", got ")[0]
                raise CaseError(f"{source}: parameters.{p.key}: its {what} that the case refuses ({reason}); keep "
                                f"it within the key's range") from None


def _check_output_times(source: str, base: Case) -> None:
    """Refuse field statistics over a base case that writes every N steps of adaptive or explicit
    Euler's "auto" steps: each sample takes its own steps, so its output times are its own, and
    fields at different times would be combined (or the samples failed by the order they ran in)."""
    time = base.time
    if base.steady or base.output.times or (time.adaptive is None and time.dt != "auto"):
        return
    adaptive = time.adaptive is not None
    raise CaseError(f"{source}: study.case: time.dt = \"{'adaptive' if adaptive else 'auto'}\" with output.every = "
                    f"{base.output.every}: each sample writes at the times of its own steps, so the samples' fields "
                    f"cannot be combined; "
                    + ("give the base case output.times or output.interval (adaptive steps land on them)" if adaptive
                       else "give the base case a fixed time.dt")
                    + ", or set outputs.fields = false and no thresholds")


def load_study(path: str | Path) -> StudySpec:
    """Read and check a study file; CaseError (one line, naming the file and key) otherwise."""
    path = Path(path)
    try:
        text = read_text(path)
    except CaseError as exc:  # its wording is for case files
        raise CaseError(str(exc).replace("case file", "study file")) from None
    source = str(path)
    deep_key(text, source)
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise CaseError(f"{source}: invalid TOML: {exc}") from None
    except (ValueError, RecursionError):  # an integer of over 4300 digits, nesting too deep
        raise CaseError(f"{source}: invalid TOML: an integer of more than 4300 digits, or nesting too deep") from None
    unknown = sorted(set(raw) - {"study", "parameters", "outputs"})
    if unknown:
        raise CaseError(f"{source}: unknown section {printable(unknown[0])} (allowed: study, parameters, outputs)")
    study, params, outputs = raw.get("study", {}), raw.get("parameters", {}), raw.get("outputs", {})
    for section, table, allowed in (("study", study, STUDY_KEYS), ("outputs", outputs, OUTPUT_KEYS)):
        if not isinstance(table, dict):
            raise CaseError(f"{source}: [{section}] must be a table")
        extra = sorted(set(table) - allowed)
        if extra:
            raise CaseError(f"{source}: unknown key {section}.{printable(extra[0])} "
                            f"(allowed: {', '.join(sorted(allowed))})")
    if "case" not in study or not isinstance(study["case"], str):
        raise CaseError(f"{source}: study.case: the base case file is required (a path, relative to the study file)")
    case_path = (path.parent / study["case"]) if not Path(study["case"]).is_absolute() else Path(study["case"])
    try:
        case_text = read_text(case_path)
    except CaseError as exc:
        raise CaseError(f"{source}: study.case: {exc}") from None
    base = load_case(case_text, str(case_path))
    method = study.get("method", "monte-carlo")
    if method not in METHODS:
        raise CaseError(f"{source}: study.method: expected one of {', '.join(METHODS)}, got {printable(repr(method))}")
    name = study.get("name", path.name.split(".")[0])
    if not valid_name(name):
        raise CaseError(f"{source}: study.name must be 1 to 100 letters, digits, '_', '-' or '.', not starting with "
                        f"'-' or '.', got {printable(repr(name))}")
    seed = int(_number(study.get("seed", 0), f"{source}: study.seed", integer=True))
    if not 0 <= seed < 2**63:
        raise CaseError(f"{source}: study.seed: expected an integer in [0, 2^63), got {seed}")
    if not isinstance(params, dict) or not params:
        raise CaseError(f"{source}: [parameters]: at least one case key to vary is required")
    parameters, grid = [], 1
    for key, value in params.items():  # (a grid's size checked as it grows: its values are held only within it)
        parameters.append(_parameter(source, key, value, method, base))
        grid *= len(parameters[-1].values) if method == "grid" else 1
        if grid > MAX_SAMPLES:
            raise CaseError(f"{source}: the grid has {grid:,} samples or more (from its first {len(parameters)} keys), "
                            f"at most {MAX_SAMPLES:,} are allowed")
    parameters = tuple(parameters)
    for p in parameters:
        _check_support(source, p, case_text, case_path, base)
    if method in RANDOM:
        if "samples" not in study:
            raise CaseError(f"{source}: study.samples: required with method {method}")
        samples = int(_number(study["samples"], f"{source}: study.samples", integer=True))
        if not 1 <= samples <= MAX_SAMPLES:
            raise CaseError(f"{source}: study.samples: expected 1..{MAX_SAMPLES}, got {samples}")
        if method == "sobol" and samples & (samples - 1):
            raise CaseError(f"{source}: study.samples: sobol needs a power of 2 (its balance properties), "
                            f"got {samples}")
    else:
        if "samples" in study:
            raise CaseError(f"{source}: study.samples: not used by method {method} (the values give the samples)")
        lengths = [len(p.values) for p in parameters]
        samples = math.prod(lengths) if method == "grid" else lengths[0]
        if method == "list" and len(set(lengths)) > 1:
            raise CaseError(f"{source}: [parameters]: method list needs values of one length, got {lengths}")
        if samples > MAX_SAMPLES:
            raise CaseError(f"{source}: the grid has {samples} samples, at most {MAX_SAMPLES} are allowed")
    fields = outputs.get("fields", True)
    save_runs = outputs.get("save_runs", False)
    for key, value in (("fields", fields), ("save_runs", save_runs)):
        if not isinstance(value, bool):
            raise CaseError(f"{source}: outputs.{key}: expected true or false, got {printable(shown(value))}")
    thresholds = outputs.get("thresholds", [])
    if not isinstance(thresholds, list) or len(thresholds) > MAX_THRESHOLDS:
        raise CaseError(f"{source}: outputs.thresholds: expected a list of at most {MAX_THRESHOLDS} temperatures")
    thresholds = tuple(float(_number(t, f"{source}: outputs.thresholds")) for t in thresholds)
    unit = base.physics.temperature_unit
    below = [t for t in thresholds if t < absolute_zero(unit)]
    if below:  # (the fraction of samples above it: 1 everywhere, meaning nothing)
        raise CaseError(f"{source}: outputs.thresholds: {below[0]:g} {unit} is below absolute zero "
                        f"({absolute_zero(unit):g} {unit}); give temperatures in the base case's unit, {unit}")
    if fields or thresholds:
        shaping = [p.key for p in parameters if p.key.startswith(SHAPE_KEYS)]
        if shaping:
            raise CaseError(f"{source}: parameters.{shaping[0]}: changes the mesh or the output times, so the "
                            f"samples' fields cannot be combined; set outputs.fields = false and no thresholds")
        _check_output_times(source, base)
    return StudySpec(source, text, case_path, case_text, base, name, method, samples, seed, parameters,
                     fields or bool(thresholds), thresholds, save_runs)

