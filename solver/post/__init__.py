"""Post-processing commands: ``info``, ``plot``, ``probe`` and ``export`` of a results file
(``info`` and ``plot`` of a study file too). They run on one process with serial h5py and never
import MPI, so that they work on login nodes and in notebooks:

    python -m solver info outputs/plate/plate.h5 [--json]
    python -m solver plot outputs/plate/plate.h5 [--step -1 | --time T] [--slice z=0.5] [--series] [-o fig.png]
    python -m solver probe outputs/plate/plate.h5 --at 0.1,0.05 [--at ...] [--csv]
    python -m solver export outputs/plate/plate.h5 --format vtu|xdmf|csv [--step -1] [-o out]

``plot`` and ``probe`` take ``--field NAME`` (default ``temperature``; ``liquid_fraction`` in a
phase-change run; ``info`` lists a file's fields); ``export`` writes every field, or those named
with ``--field`` (repeatable). Bad requests (a missing file, step, point or field) are refused with
one line and exit status 2.

``info`` and ``plot`` also read the study file of ``python -m solver study``
(outputs/<name>/<name>.study.h5, recognised by its ``solver_study`` attribute; see
:mod:`solver.post.study_info` and :mod:`solver.post.study_plot`):

    python -m solver info outputs/wall/wall.study.h5 [--json]      # samples, key ranges, output statistics
    python -m solver plot outputs/wall/wall.study.h5 --output max_temperature [--cdf | --against KEY] [-o fig.png]
    python -m solver plot outputs/wall/wall.study.h5 [--field mean|std|min|max|above_0] [--step -1] [-o fig.png]

For a study, ``--output NAME`` names a scalar output and ``-o FILE`` the figure. The commands'
arguments: :mod:`solver.post.arguments`; each command is a function of its parsed arguments.
"""

from solver.lazy import exports

WHERE = {"info_command": "info", "plot_command": "plot", "probe_command": "probe", "export_command": "export",
         "study_plot_command": "study_plot"}
__all__ = sorted(WHERE)
__getattr__ = exports(__name__, WHERE)
