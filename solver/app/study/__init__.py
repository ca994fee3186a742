"""Ensembles: parameter studies and Monte Carlo on one allocation. ``MPI.COMM_WORLD`` is split
into groups of R ranks; each group runs ordinary SPMD samples on its own communicator, taking
them from a shared counter; field statistics are accumulated online and combined at the end
into one study file (:mod:`solver.app.study.driver`)."""

# modules, imported by name
__all__ = ["driver", "groups", "queue", "sample", "sampling", "spec", "statistics", "studyfile"]
