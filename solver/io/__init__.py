"""Files: one HDF5 block-file backend (mpio, or gathered through rank 0, chosen once) under the
results file (:mod:`.results_writer`) and the checkpoints, the XDMF index beside the results, the
probe series recorded during a run, and the reader for notebooks and post-processing,
:mod:`.results_reader`, also known as ``results``
(``from solver.io import results; r = results.open(path)``).
"""

from solver.lazy import exports

WHERE = {
    "BlockFile": "blockfile",
    "CheckpointAttrs": "checkpoint",
    "choose_driver": "blockfile",
    "EndRecord": "end_record",
    "GatheredBlockFile": "blockfile",
    "MpioBlockFile": "blockfile",
    "open_block_file": "blockfile",
    "ProbeSeries": "probe_series",
    "Results": "results_reader",
    "ResultsWriter": "results_writer",
}
MODULES = {"results": "results_reader"}  # the reader's short public name
__all__ = sorted(WHERE) + sorted(MODULES)
__getattr__ = exports(__name__, WHERE, MODULES)
