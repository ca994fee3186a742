from solver.app import signals

signals.defer()  # before the imports and MPI start-up, which take a while

from solver.app.cli import finish, main  # noqa: E402

finish(main())
