"""Files: one HDF5 block-file backend (mpio, or gathered through rank 0, chosen once) under the
results file and the checkpoints, the XDMF index beside the results, probes recorded during a
run, and :mod:`.results`, the reader for notebooks and post-processing
(``from solver.io import results; r = results.open(path)``).
"""

from solver.io import results
from solver.io.blockfile import BlockFile, GatheredBlockFile, MpioBlockFile, choose_driver, open_block_file
from solver.io.checkpoint import CheckpointAttrs
from solver.io.probes import Probes
from solver.io.results import Results
from solver.io.results_file import ResultsFile

__all__ = ["BlockFile", "CheckpointAttrs", "GatheredBlockFile", "MpioBlockFile", "Probes", "Results", "ResultsFile",
           "choose_driver", "open_block_file", "results"]
