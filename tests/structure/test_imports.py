"""The package's import graph: no cycle between its modules, no private name imported from another
module, and every subpackage documented with a docstring and ``__all__``."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "solver"


def modules() -> dict[str, Path]:
    """Dotted name -> file of every module of the package (a package is its __init__)."""
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def imports(name: str, path: Path, known) -> list[tuple[str, list[str], int]]:
    """(imported module, names taken from it, line) for every import of the package in a module,
    at any depth (functions too: a lazy import is still a dependency)."""
    found = []
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(a.name, [], node.lineno) for a in node.names if a.name.split(".")[0] == "solver"]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative import
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            if base.split(".")[0] != "solver":
                continue
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                if sub in known:  # "from solver.io import results": the module solver.io.results
                    found.append((sub, [], node.lineno))
                else:
                    found.append((base, [alias.name], node.lineno))
    return found


def graph():
    known = modules()
    edges = {m: set() for m in known}
    private = []
    for name, path in known.items():
        for target, names, line in imports(name, path, known):
            # importing a.b.c runs the packages a and a.b first (unless the importer is inside them)
            parts = target.split(".")
            for i in range(1, len(parts) + 1):
                dep = ".".join(parts[:i])
                if dep in known and dep != name and not name.startswith(dep + "."):
                    edges[name].add(dep)
            for n in names:
                if n.startswith("_") and not n.endswith("__") and target != name:
                    private.append(f"{path.relative_to(PACKAGE.parent)}:{line}: {n} from {target}")
    return edges, private


def cycles(edges) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def test_no_import_cycle_between_modules():
    edges, _ = graph()
    assert cycles(edges) == []


def test_no_private_name_imported_from_another_module():
    _, private = graph()
    assert private == []


def test_the_checks_catch_what_they_look_for():
    """The detectors themselves: a cycle and a private import are found."""
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []
    tree = {"solver.x": PACKAGE / "x.py"}
    source = "from solver.y import _hidden, shown\n"
    parsed = [(t, n) for t, n, _ in imports_from_text("solver.x", source, tree)]
    assert parsed == [("solver.y", ["_hidden"]), ("solver.y", ["shown"])]


def imports_from_text(name, text, known):
    import tempfile
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "x.py"
        path.write_text(text)
        return imports(name, path, known)


SUBPACKAGES = sorted(p.parent.name for p in PACKAGE.glob("*/__init__.py"))


@pytest.mark.parametrize("subpackage", SUBPACKAGES)
def test_subpackage_has_docstring_and_all(subpackage):
    tree = ast.parse((PACKAGE / subpackage / "__init__.py").read_text())
    doc = ast.get_docstring(tree)
    assert doc and len(doc.split()) >= 15, f"solver.{subpackage}: a one-paragraph docstring"
    names = [n for n in tree.body if isinstance(n, ast.Assign) and any(
        isinstance(t, ast.Name) and t.id == "__all__" for t in n.targets)]
    assert names, f"solver.{subpackage}: __all__"


def test_every_module_has_a_docstring():
    missing = [name for name, path in modules().items()
               if path.name != "__main__.py" and not ast.get_docstring(ast.parse(path.read_text()))]
    assert missing == []


# The package's layers, from the command line down to the bottom: a module may import its own
# subpackage and the layers below its own, never a layer above, nor another of its own height.
LAYERS = {
    "__main__": 10,
    "app": 9,
    "bench": 8,
    "post": 7,
    "heat": 6,
    "la": 5, "io": 5,
    "fem": 4,
    "mesh": 3,
    "case": 2, "parallel": 2,
    "compiled": 1, "errors": 1, "lazy": 1, "solver": 1,  # solver: the package's face (__version__)
}


def layer_of(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def upward_imports(edges) -> list[str]:
    """Imports that run upward or sideways between layers, as 'importer -> imported'."""
    bad = []
    for a, targets in edges.items():
        for b in targets:
            la, lb = layer_of(a), layer_of(b)
            if la != lb and LAYERS[la] <= LAYERS[lb]:
                bad.append(f"{a} -> {b}")
    return sorted(bad)


def test_every_module_is_in_a_layer():
    edges, _ = graph()
    assert sorted({layer_of(m) for m in edges} - set(LAYERS)) == []


# the package face started as the program (python -m solver, heat-solver) keeps the stop signals
# first thing, before any other import: through the light module of the top layer made for it
FIRST_THING = ["solver -> solver.app", "solver -> solver.app.signals"]


def test_no_import_runs_upward_or_sideways_between_layers():
    edges, _ = graph()
    assert upward_imports(edges) == FIRST_THING


def test_the_layer_check_catches_an_upward_import():
    edges = {"solver.la.krylov": {"solver.heat.problem"}, "solver.heat.problem": {"solver.la.krylov"},
             "solver.io.results_writer": {"solver.la.matrix"}, "solver.fem.assembly": {"solver.fem.kernels"}}
    assert upward_imports(edges) == ["solver.io.results_writer -> solver.la.matrix",
                                     "solver.la.krylov -> solver.heat.problem"]


def test_the_readers_of_results_start_no_mpi():
    """info, plot, probe, export and the Python API run on a login node or in a notebook without
    MPI: importing the results reader must not import mpi4py.MPI (which starts MPI)."""
    import subprocess
    import sys

    code = "import sys, solver.io.results_reader, solver.post.info; print('mpi4py.MPI' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=PACKAGE.parent, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "False", out.stderr
