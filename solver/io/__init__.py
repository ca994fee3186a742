"""Files: one HDF5 block-file backend (mpio, or gathered through rank 0, chosen once) under the
results file and the checkpoints, the XDMF index beside the results, probes recorded during a
run, and :mod:`.results`, the reader for notebooks and post-processing
(``from solver.io import results; r = results.open(path)``).
"""

from solver.lazy import exports

WHERE = {
    "BlockFile": "blockfile",
    "CheckpointAttrs": "checkpoint",
    "choose_driver": "blockfile",
    "GatheredBlockFile": "blockfile",
    "MpioBlockFile": "blockfile",
    "open_block_file": "blockfile",
    "Probes": "probes",
    "results": "results",
    "Results": "results",
    "ResultsFile": "results_file",
}
__all__ = sorted(WHERE)
__getattr__ = exports(__name__, WHERE)
