from solver.app import signals

signals.defer()  # before the imports and MPI start-up, which take a while

from solver.app.cli import main  # noqa: E402

raise SystemExit(main())
