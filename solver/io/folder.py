"""Names in a run's folder that its writers and its readers share, importable without MPI (the
readers never start it)."""

RUN_LOCK = ".solver.lock"  # a run's lock file: present while the run holds its folder
