from solver.app import signals

signals.defer()  # before the imports and MPI start-up, which take a while


def missing_dependency(exc: ModuleNotFoundError) -> None:
    """One line for a required library this Python lacks, exit 1; another module is raised as it is."""
    import sys

    from solver.app.dependencies import missing_library

    line = missing_library(exc)
    if line is None:
        raise exc
    print(line, file=sys.stderr, flush=True)
    sys.exit(1)


try:
    from solver.app.cli import finish, main  # noqa: E402
except ModuleNotFoundError as exc:
    missing_dependency(exc)
except KeyboardInterrupt:  # a second Ctrl-C while the imports run
    import os
    import sys

    print("stopped at once by Ctrl-C (SIGINT) while starting", file=sys.stderr, flush=True)
    os._exit(130)  # not sys.exit: see solver.app.cli.exit_interrupted

try:
    status = main()
except ModuleNotFoundError as exc:  # (most commands import their libraries when they start)
    missing_dependency(exc)
except KeyboardInterrupt:  # a second Ctrl-C before the command took the signals over (its command line, imports)
    import sys

    from solver.app.cli import exit_interrupted

    print("stopped at once by Ctrl-C (SIGINT) while starting", file=sys.stderr, flush=True)
    exit_interrupted()
finish(status)
