from solver.app import signals

signals.defer()  # before the imports and MPI start-up, which take a while

try:
    from solver.app.cli import finish, main  # noqa: E402
except KeyboardInterrupt:  # a second Ctrl-C while the imports run
    import os
    import sys

    print("stopped at once by Ctrl-C (SIGINT) while starting", file=sys.stderr, flush=True)
    os._exit(130)  # not sys.exit: see solver.app.cli.exit_interrupted

try:
    status = main()
except KeyboardInterrupt:  # a second Ctrl-C before the command took the signals over (its command line, imports)
    import sys

    from solver.app.cli import exit_interrupted

    print("stopped at once by Ctrl-C (SIGINT) while starting", file=sys.stderr, flush=True)
    exit_interrupted()
finish(status)
