"""Fuzz the case-file path under MPI: random TOML documents, random values for every key, wrong
types, huge sizes, unicode, binary garbage, empty files. Every example must either run (exit 0)
or be refused with exit status 2 and one line that names the file; never a traceback, never a hang.

Usage: mpirun -n N python fuzz.py WORKDIR N_EXAMPLES
All ranks draw the same examples (derandomized), so each one takes the same collective path.
"""

import contextlib
import io
import os
import sys
from pathlib import Path

import tomli_w
from _guard import run
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from solver.app.cli import main as solver_main
from solver.case.schema import BOUNDARY_SCHEMA, SCHEMA

BASE = {"mesh": {"nx": 3, "ny": 2}, "material": {"k": 1.0, "rho": 1.0, "c": 1.0},
        "boundary": {"left": {"type": "dirichlet", "value": 1.0}},
        "time": {"scheme": "backward-euler", "dt": 0.5, "t_end": 1.0}}
KEYS = [(s, k) for s, ks in SCHEMA.items() for k in ks] + [("boundary.left", k) for k in BOUNDARY_SCHEMA]

scalars = st.one_of(
    st.integers(min_value=-10**12, max_value=10**12), st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(), st.text(max_size=30), st.sampled_from(["auto", "x*y", "sin(", "__import__('os')", "1e400",
                                                          "steady", "file", "triangle", "𝔘𝔫𝔦𝔠𝔬𝔡𝔢", ""]),
    st.integers(min_value=10**6, max_value=10**15))
values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                       st.dictionaries(st.text(max_size=8), inner, max_size=3)),
                      max_leaves=6)


def documents():
    one_key = st.tuples(st.sampled_from(KEYS), values).map(_with_key)
    random_doc = st.dictionaries(st.sampled_from(list(SCHEMA) + ["boundary", "region", "junk"]),
                                 st.dictionaries(st.text(max_size=10), values, max_size=4), max_size=5)
    return st.one_of(
        one_key.map(_dump), one_key.map(_dump),  # the most productive: a valid case with one key changed
        random_doc.map(_dump),
        st.text(max_size=200).map(lambda t: t.encode("utf-8", "surrogatepass")),
        st.binary(max_size=200), st.just(b""), st.just(b"[mesh]\nnx = 99999999999\nny = 99999999999\n"),
    )


def _with_key(item):
    (section, key), value = item
    doc = {s: dict(v) if isinstance(v, dict) else v for s, v in BASE.items()}
    doc["boundary"] = {"left": dict(BASE["boundary"]["left"])}
    node = doc
    for part in section.split("."):
        node = node.setdefault(part, {})
    node[key] = value
    return doc


def _dump(doc):
    try:
        return tomli_w.dumps(doc).encode()
    except (TypeError, ValueError):
        return repr(doc).encode()


def main(comm):
    work = Path(sys.argv[1])
    n_examples = int(sys.argv[2])
    case = work / f"fuzz_{comm.size}.toml"
    outcomes = {"ran": 0, "refused": 0}

    @settings(max_examples=n_examples, derandomize=True, database=None, deadline=None,
              suppress_health_check=list(HealthCheck))
    @given(documents())
    def check(data):
        if comm.rank == 0:
            case.write_bytes(data)
        comm.Barrier()
        err = io.StringIO()
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            status = solver_main([str(case), "--set", f"output.directory={work / 'out'}", "--overwrite",
                                  "--set", "time.t_end=1.0", "--quiet"] if _plausible(data) else [str(case)])
        text = err.getvalue()
        assert "Traceback" not in text, text
        assert status in (0, 2), (status, text, data)
        if status == 2 and comm.rank == 0:
            lines = [ln for ln in text.splitlines() if ln.startswith("error:")]
            assert len(lines) == 1 and lines[0].startswith(f"error: {case}: "), (text, data)
        outcomes["ran" if status == 0 else "refused"] += 1

    check()
    # the directory case
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        assert solver_main([str(work)]) == 2
    return {**outcomes, "examples": outcomes["ran"] + outcomes["refused"]}


def _plausible(data: bytes) -> bool:
    """Cases that validate are run for at most t_end = 1 s of simulated time (a few steps)."""
    return b"[time]" in data


os.environ.setdefault("OMP_NUM_THREADS", "1")
run(main)
