"""METIS with stop signals on their way: GKlib traps SIGTERM during each call, fails it, and
leaves its handler behind with SIGTERM blocked; the calls are tried again, the handler in place is
restored and gets the signal, and later signals still reach it. Run in a child process signalled
from outside, as a batch system would (a signal a process sends itself lands elsewhere)."""

import signal
import subprocess
import sys
import time

from conftest import ROOT

CHILD = """
import signal, sys, time
import numpy as np, scipy.sparse as sp
from solver.mesh import metis
seen = []
signal.signal(signal.SIGTERM, lambda signum, frame: seen.append(signum))
n = 450  # 200K vertices: each ordering takes most of a second
line = sp.diags([np.ones(n - 1), np.ones(n - 1)], [-1, 1])
graph = (sp.kron(sp.identity(n), line) + sp.kron(line, sp.identity(n))).tocsr()
print("ready", flush=True)
for _ in range(2):
    perm = metis.nested_dissection(graph.indptr, graph.indices)
    assert np.array_equal(np.sort(perm), np.arange(n * n))
    print("ordered", metis.interruptions, len(seen), flush=True)
time.sleep(0.5)
print("end", metis.interruptions, len(seen), flush=True)
"""


def test_sigterms_during_metis_reach_the_handler_and_the_orderings_are_whole():
    child = subprocess.Popen([sys.executable, "-c", CHILD], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "ready"
        time.sleep(0.3)
        child.send_signal(signal.SIGTERM)  # during the first ordering
        first = child.stdout.readline().split()
        child.send_signal(signal.SIGTERM)  # at the start of the second
        out = child.communicate(timeout=60)[0].split("\n")
    finally:
        child.kill()
    assert child.returncode == 0, out
    assert first == ["ordered", "1", "1"], first  # interrupted once, retried, the signal handed on
    interrupted, seen = (int(v) for v in out[-2].split()[1:])
    assert out[-2].startswith("end") and seen == 2 and interrupted in (1, 2), out
