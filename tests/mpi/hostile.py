"""Hostile expressions in every expression key are refused on every rank, nothing executed.

Usage: mpirun -n N python hostile.py CANARY_DIR
"""

import os
import sys

from _guard import run

from solver.case.load import load_case
from solver.errors import CaseError

CASE = """
[mesh]
nx = 4
ny = 4
[material]
k = 1.0
rho = 1.0
c = 1.0
[boundary.left]
type = "robin"
h = 1.0
T_inf = 0.0
[time]
dt = 1.0
t_end = 1.0
"""


def hostile(canary):
    touch = f"__import__('os').system('touch {canary}')"
    return [
        touch, f"open('{canary}', 'w')", f"exec(\"open('{canary}','w')\")", f"eval(\"open('{canary}','w')\")",
        "().__class__.__bases__[0].__subclasses__()", "x.__class__", "sin.__globals__", "globals()",
        "(lambda: 1)()", "[c for c in ()]", "{}", "x[0]", "'a' * 10", "b'bytes'", "f'{x}'",
        "x if x else y.real", "breakpoint()", "help()", "import_(1)", "x @ y", "x := 1", "*x", "**x",
        "sin(x, key=1)", "1 if True else 0", "10 ** 10 ** 10 ** 10 +", "9" * 5000,
        "(" * 1000 + "x" + ")" * 1000, "-" * 200 + "x", "sin(" * 60 + "x" + ")" * 60, "\x00", "",
    ]


def main(comm):
    canary = os.path.join(sys.argv[1], "pwned")
    keys = ["source.f", "initial.temperature", "boundary.left.T_inf", "boundary.left.h"]
    refused = 0
    for key in keys:
        for expr in hostile(canary):
            value = '"' + expr.replace("\\", "\\\\").replace('"', '\\"') + '"'
            try:
                load_case(CASE, "hostile.toml", [f"{key}={value}"])
            except CaseError as exc:
                message = str(exc)
                assert message.startswith(f"hostile.toml: {key}") and "\n" not in message, message
                refused += 1
            else:
                raise AssertionError(f"{key} = {expr!r} was accepted")
    comm.Barrier()
    assert not os.path.exists(canary), "a hostile expression was executed"
    return {"refused": refused, "expected": len(keys) * len(hostile(canary))}


run(main)
