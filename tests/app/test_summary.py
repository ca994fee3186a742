"""The summary a run prints at its end."""

from types import SimpleNamespace

from solver.app.summary import StepSummary, summary


def _result(restarted_from):
    steps = StepSummary(accepted=328, rejected=6, failed_solves=0, dt_min=1e-3, dt_median=0.3, dt_max=2.0, setups=1,
                        updates=2, setup_seconds=0.1)
    return SimpleNamespace(timings={"solve": 1.0, "total": 2.0}, iterations=900, steps=328, stopped=False,
                           restarted_from=restarted_from, first_step=100, n_dofs=441, ranks=2, nonlinear_iterations=0,
                           preconditioner="amg", preconditioner_report=None, time_steps=steps, h5_path="r.h5",
                           xdmf_path="r.xdmf", steps_in_parts=0)


def test_after_a_restart_the_step_sizes_are_said_to_be_of_the_steps_since_it():
    """The counts of accepted and rejected steps are the whole run's; the step sizes, only those
    taken since the restart, were shown as if they were the run's."""
    case = SimpleNamespace(steady=False, time=SimpleNamespace(scheme="bdf2"))
    assert "max 2 s since the restart;" in summary(_result("c.h5"), case)
    assert "max 2 s;" in summary(_result(None), case) and "since the restart" not in summary(_result(None), case)
