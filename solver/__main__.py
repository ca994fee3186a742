from solver import early_signals

early_signals.defer()  # before the imports and MPI start-up, which take a while

from solver.cli import main  # noqa: E402

raise SystemExit(main())
