"""Messages about bad checkpoints and oversized meshes read well: no "None", no 300-digit number."""

import hashlib
import json
import os
import re
import shutil
from types import SimpleNamespace

import h5py
import numpy as np
import pytest
from conftest import one_error, run_solver

from solver.app.preflight import check_memory
from solver.case.records import StructuredMeshSpec
from solver.errors import CaseError
from solver.io import checkpoint


def test_a_checkpoint_without_temperature_says_so(tmp_path):
    path = tmp_path / "step.h5"
    with h5py.File(path, "w") as f:
        f.attrs["solver_checkpoint"] = checkpoint.FORMAT
    with pytest.raises(CaseError, match="checkpoint has no temperature dataset") as info:
        checkpoint.inspect(path, 10)
    assert "None" not in str(info.value)
    with h5py.File(path, "a") as f:
        f["temperature"] = np.zeros((2, 3))
    with pytest.raises(CaseError, match="holds 2 x 3 temperatures, the mesh has 10 nodes"):
        checkpoint.inspect(path, 10)


def test_the_memory_estimate_of_a_huge_mesh_is_short():
    from mpi4py import MPI

    spec = StructuredMeshSpec("box", "hexahedron", (2**62, 2**62, 2**62), (1.0, 1.0, 1.0), (0.0, 0.0, 0.0))
    with pytest.raises(CaseError) as info:
        check_memory(MPI.COMM_WORLD, "big.toml", spec)
    assert len(str(info.value)) < 250 and "GiB" in str(info.value)


def test_a_temperature_unit_left_out_is_the_same_case_as_celsius_given():
    """A run with temperature_unit = "C" restarted from a case that leaves it out (C by default)
    needed --force: "changed: temperature_unit"."""
    given, left_out = {"temperature_unit": "C", "material": {"k": 1.0}}, {"material": {"k": 1.0}}
    stored = SimpleNamespace(case=checkpoint.case_text(given), case_hash=checkpoint.case_hash(given))
    assert checkpoint.changed_keys(given, left_out) == checkpoint.changed_keys(left_out, given) == ([], [])
    assert checkpoint.check_compatible("c.h5", stored, left_out, force=False) == []
    assert checkpoint.changed_keys(left_out, {**left_out, "temperature_unit": "K"}) == ([], ["temperature_unit"])


def test_a_restart_compares_the_tables_a_checkpoint_stores_apart(tmp_path):
    """A checkpoint stores each table of its case as a dataset that the case names: a restart
    compares their points (a changed table is another case), as it compares those of a checkpoint
    that holds them in the case itself (written before); one changed on the disk is refused."""
    from solver.io.stored_case import StoredCaseError, expand, read_tables, stored_case

    pairs = [[0.0, 1.0], [100.0, 2.0]]
    values = {"material": {"k": [{"table": pairs, "file": "k.csv"}, 3.0], "c": {"table": pairs}},
              "region": {"a": {"k": {"table": pairs, "file": "k.csv"}, "rho": None}}}
    stored = stored_case(values)
    assert len(stored.tables) == 1 and "[[0.0" not in stored.text
    digest = checkpoint.case_hash(values)  # made an item at a time: the hash earlier versions wrote
    assert digest == hashlib.sha256(repr(sorted(checkpoint.flatten(checkpoint._plain(values)).items())).encode()
                                    ).hexdigest()
    changed = {**values, "region": {"a": {"k": {"table": [[0.0, 1.0], [100.0, 2.5]], "file": "k.csv"}}}}
    for attrs in (SimpleNamespace(case=stored.text, tables=stored.tables, case_hash=digest),
                  SimpleNamespace(case=checkpoint.case_text(values), case_hash=digest)):
        assert checkpoint.check_compatible("c.h5", attrs, values, force=False) == []
        with pytest.raises(CaseError, match=re.escape("different case (changed: region.a.k.table)")):
            checkpoint.check_compatible("c.h5", attrs, changed, force=False)
    with h5py.File(tmp_path / "c.h5", "w") as f:
        for path, points in stored.tables.items():
            f[path] = points
        case = checkpoint.tomllib.loads(stored.text)
        assert expand(case, read_tables(f, case)) == checkpoint._plain(values)
        f[next(iter(stored.tables))][1, 1] = 2.5
        with pytest.raises(StoredCaseError, match="does not hold the points it was written with"):
            read_tables(f, case)


def test_a_restart_sees_the_order_of_overlapping_regions_and_of_dirichlet_boundaries():
    """Where regions overlap the last listed wins, and where Dirichlet boundaries meet the later
    one holds the shared nodes: swapping two of them before a restart changed the solution (46.9
    for 40.6 at a probe) and was accepted, the case compared as a flat, sorted dict."""
    def case(regions, boundaries):
        return {"material": {"k": 1.0}, "region": {name: {"x": [0.0, 0.5], "k": k} for name, k in regions},
                "boundary": {name: {"type": kind, "value": 1.0} for name, kind in boundaries}}

    first = case([("a", 2.0), ("b", 4.0)], [("left", "dirichlet"), ("bottom", "dirichlet"), ("top", "neumann")])
    stored = SimpleNamespace(case=checkpoint.case_text(first), case_hash=checkpoint.case_hash(first))
    for changed, what in [
            (case([("b", 4.0), ("a", 2.0)], [("left", "dirichlet"), ("bottom", "dirichlet"), ("top", "neumann")]),
             "the order of the [region.*] tables"),
            (case([("a", 2.0), ("b", 4.0)], [("bottom", "dirichlet"), ("left", "dirichlet"), ("top", "neumann")]),
             "the order of the dirichlet [boundary.*] tables")]:
        assert checkpoint.changed_keys(first, changed) == ([], [what])
        with pytest.raises(CaseError, match=re.escape(f"checkpoint of a different case (changed: {what})")):
            checkpoint.check_compatible("c.h5", stored, changed, force=False)
        assert checkpoint.check_compatible("c.h5", stored, changed, force=True) == [what]
    neutral = case([("a", 2.0), ("b", 4.0)], [("top", "neumann"), ("left", "dirichlet"), ("bottom", "dirichlet")])
    assert checkpoint.changed_keys(first, neutral) == ([], [])
    assert checkpoint.check_compatible("c.h5", stored, neutral, force=False) == []
    # the hash, which a study file keeps too, is the one earlier versions wrote (a study stopped by one
    # continues): the order is compared through the stored case
    assert checkpoint.case_hash(first) == checkpoint.case_hash(neutral) == checkpoint.case_hash(changed)


def test_a_restart_before_any_checkpoint_says_there_is_none_yet_and_how_to_go_on(tmp_path):
    """No checkpoints' folder (a run refused, or stopped by a full disk, before its first
    checkpoint; or before its results folder existed): it said "no readable checkpoint in
    .../checkpoints", a folder that did not exist. A folder of unreadable ones still says so."""
    folder, h5 = tmp_path / "plate", tmp_path / "plate" / "plate.h5"
    with pytest.raises(CaseError) as info:
        checkpoint.resolve("latest", folder, h5)
    said = str(info.value)
    assert "no checkpoint in" in said and " yet " in said and "run again without --restart" in said, said
    folder.mkdir()
    h5.write_bytes(b"")
    with pytest.raises(CaseError, match=r"yet .*run again with --overwrite instead of --restart \(it replaces "):
        checkpoint.resolve("latest", folder, h5)
    (folder / "checkpoints").mkdir()
    (folder / "checkpoints" / "step_00000004.h5").write_bytes(b"not HDF5")
    with pytest.raises(CaseError, match="no readable checkpoint in"):
        checkpoint.resolve("latest", folder, h5)


def test_the_controller_check_knows_the_controller_s_fields_and_levels():
    """The file layer checks a checkpoint's step controller by its fields and the earlier solutions
    kept, which the heat layer defines (it does not import it): they must stay equal."""
    from dataclasses import fields

    from solver.heat.state import LEVELS, Controller

    assert checkpoint.CONTROLLER_FIELDS == tuple(f.name for f in fields(Controller))
    assert checkpoint.ADAPTIVE_LEVELS == LEVELS


@pytest.mark.parametrize("version", [np.array([1, 1]), "1", 1.5])
def test_a_format_attribute_that_is_not_one_number_is_not_a_checkpoint(tmp_path, version):
    """solver_checkpoint = [1, 1] was compared as an array: an internal error (exit 1)."""
    path = tmp_path / "step.h5"
    with h5py.File(path, "w") as f:
        f.attrs["solver_checkpoint"] = version
        f["temperature"] = np.zeros(10)
    with pytest.raises(CaseError, match="not a checkpoint of this solver"):
        checkpoint.inspect(path, 10)
    assert checkpoint.run_id_in(path, checkpoint=True) is None


def test_a_restart_in_another_temperature_unit_is_refused_even_when_forced(tmp_path):
    """A checkpoint's field is in its case's unit: --force took 58 C for 58 K and appended
    snapshots in K to results in C (exit 0). Refused, forced or not; an unchanged unit, given or
    left to its default C, restarts."""
    stored_case = {"temperature_unit": "C", "material": {"k": 1.0}}
    stored = SimpleNamespace(case=checkpoint.case_text(stored_case), case_hash=checkpoint.case_hash(stored_case))
    for force in (False, True):
        with pytest.raises(CaseError, match=re.escape('c.h5: checkpoint in temperature_unit = "C", the case in "K"')):
            checkpoint.check_compatible("c.h5", stored, {**stored_case, "temperature_unit": "K"}, force=force)
    assert checkpoint.check_compatible("c.h5", stored, stored_case, force=False) == []
    assert checkpoint.check_compatible("c.h5", stored, {**stored_case, "temperature_unit": None}, force=False) == []


def test_a_forced_restart_in_another_unit_stops_every_rank_and_keeps_the_results(tmp_path):
    (tmp_path / "case.toml").write_text('temperature_unit = "C"\n[mesh]\nnx = 4\nny = 3\n[material]\nk = 1.0\n'
                                        'rho = 1.0\nc = 1.0\n[initial]\ntemperature = 20.0\n[boundary.left]\n'
                                        'type = "dirichlet"\nvalue = 100.0\n[time]\ndt = 0.1\nt_end = 0.2\n')
    run_solver(1, ["case.toml", "--quiet"], cwd=tmp_path)
    results = tmp_path / "outputs" / "case" / "case.h5"
    before = results.read_bytes()
    edits = ["temperature_unit=\"K\"", "initial.temperature=293.15", "boundary.left.value=373.15", "time.t_end=0.4"]
    args = ["case.toml", "--quiet", "--restart", "latest", "--force", *[a for e in edits for a in ("--set", e)]]
    error = one_error(run_solver(3, args, cwd=tmp_path, check=False, timeout=60), 2)
    assert 'checkpoint in temperature_unit = "C", the case in "K"' in error, error
    assert results.read_bytes() == before


@pytest.mark.parametrize("dtype", ["<f4", "<f2", ">f4"])
def test_a_checkpoint_vector_narrower_than_double_is_refused(tmp_path, dtype):
    """A temperature stored in single (or half) precision, the file rewritten with h5py, was read
    and rounded: the restart went on from temperatures off by 1e-6 K (exit 0, no longer the
    uninterrupted run's answer)."""
    path = tmp_path / "step.h5"
    with h5py.File(path, "w") as f:
        f.attrs["solver_checkpoint"] = checkpoint.FORMAT
        f["temperature"] = np.linspace(20.0, 100.0, 10).astype(dtype)
    with pytest.raises(CaseError, match="not a vector of 10 64-bit floating-point values") as info:
        checkpoint.inspect(path, 10)
    assert str(np.dtype(dtype)) in str(info.value)


def test_a_checkpoint_vector_of_doubles_in_either_byte_order_is_read(tmp_path):
    path = tmp_path / "step.h5"
    with h5py.File(path, "w") as f:
        f.attrs["solver_checkpoint"] = checkpoint.FORMAT
        f["temperature"] = np.linspace(20.0, 100.0, 10).astype(">f8")
    with pytest.raises(CaseError, match="attributes are missing or malformed"):  # past the vectors' checks
        checkpoint.inspect(path, 10)


CASE = ('[mesh]\nnx = 4\nny = 3\n[material]\nk = 1.0\nrho = 1.0\nc = 1.0\n[initial]\ntemperature = 20.0\n'
        '[boundary.left]\ntype = "dirichlet"\nvalue = 100.0\n[time]\nscheme = "bdf2"\ndt = 0.1\nt_end = 0.2\n')


def rewrite(path, name, dtype):
    """Write the dataset ``name`` of an HDF5 file again in ``dtype``, its attributes kept."""
    with h5py.File(path, "a") as f:
        values, attrs = f[name][()], dict(f[name].attrs)
        del f[name]
        f[name] = values.astype(dtype)
        f[name].attrs.update(attrs)


@pytest.mark.parametrize("ranks,driver", [(1, "auto"), (3, "auto"), (3, "gathered")])
def test_a_restart_from_big_endian_vectors_continues_as_from_the_file_written(tmp_path, ranks, driver):
    """Doubles stored big-endian (a file rewritten on another machine) passed the checks and then
    ended the restart with an internal error (exit 1, KeyError: dtype('>f8')) when a rank's block
    was sent: they are read in the machine's byte order, and the run goes on as from the file."""
    (tmp_path / "case.toml").write_text(CASE)
    run_solver(ranks, ["case.toml", "--quiet", "--set", f"output.driver={driver}"], cwd=tmp_path)
    folder = tmp_path / "outputs" / "case"
    first = folder / "checkpoints" / "step_00000002.h5"
    shutil.copytree(folder, tmp_path / "kept")
    results = []
    for rewritten in (False, True):
        if rewritten:
            shutil.rmtree(folder)
            shutil.copytree(tmp_path / "kept", folder, symlinks=True)
            for name in ("temperature", "previous"):
                rewrite(first, name, ">f8")
        args = ["case.toml", "--quiet", "--restart", str(first), "--set", "time.t_end=0.4"]
        run_solver(ranks, args + ["--set", f"output.driver={driver}"], cwd=tmp_path)
        with h5py.File(folder / "checkpoints" / "step_00000004.h5", "r") as f:
            results.append(f["temperature"][()])
    assert np.array_equal(*results)


def test_a_heat_balance_history_no_run_writes_is_refused_naming_the_checkpoint(tmp_path):
    """Earlier energies of NaN, or more of them than earlier steps, and a balance lag of NaN, were
    taken by the restart: its heat balance failed (exit 3, or exit 2 naming the case file as if
    its scales overflowed). They are refused naming the checkpoint; a run's own file passes."""
    (tmp_path / "case.toml").write_text(CASE)
    run_solver(1, ["case.toml", "--quiet"], cwd=tmp_path)
    path = tmp_path / "outputs" / "case" / "checkpoints" / "step_00000002.h5"
    with h5py.File(path, "r") as f:
        state = json.loads(f.attrs["stepper_state"])
    assert checkpoint.inspect(path, 20).step == 2
    edits = {"earlier_energy": ([float("nan")], "earlier_energy = [nan] is not the energies"),
             "earlier_energy ": ([1.0, 2.0], "earlier_energy = [1.0, 2.0] is not the energies"),
             "balance_lag": (float("inf"), "balance_lag = inf is not a finite number")}
    for key, (value, said) in edits.items():
        with h5py.File(path, "a") as f:
            f.attrs["stepper_state"] = json.dumps({**state, "stepper": {**state["stepper"], key.strip(): value}})
        with pytest.raises(CaseError, match=re.escape(f"{path}: checkpoint attribute stepper_state.stepper.{said}")):
            checkpoint.inspect(path, 20)


def test_a_step_controller_s_state_in_a_checkpoint_of_fixed_steps_is_refused(tmp_path):
    """stepper_state.adaptive added to a checkpoint of fixed steps passed over the check that t is
    on its steps (t = 27 at step 6 of dt = 5 s, with the snapshots' count to match, restarted
    with exit 0 from the wrong time). The controller's state must go with the stored case's
    time.dt = "adaptive", and only with it."""
    (tmp_path / "case.toml").write_text(CASE)
    run_solver(1, ["case.toml", "--quiet"], cwd=tmp_path)
    path = tmp_path / "outputs" / "case" / "checkpoints" / "step_00000002.h5"
    with h5py.File(path, "a") as f:
        state = json.loads(f.attrs["stepper_state"])
        f.attrs["stepper_state"] = json.dumps({**state, "adaptive": {"dt": 0.1}})
    with pytest.raises(CaseError, match=re.escape("stepper_state holds an adaptive step controller's state, and the "
                                                  "case it stores has time.dt = '0.1'")):
        checkpoint.inspect(path, 20)
    with h5py.File(path, "a") as f:
        case = f.attrs["case"].replace("dt = 0.1", 'dt = "adaptive"')
        assert case != f.attrs["case"]
        f.attrs["case"] = case
        f.attrs["stepper_state"] = json.dumps(state)
    with pytest.raises(CaseError, match=re.escape("stepper_state lacks an adaptive step controller's state, and the "
                                                  "case it stores has time.dt = 'adaptive'")):
        checkpoint.inspect(path, 20)


def test_an_adaptive_checkpoint_whose_time_is_at_none_of_the_results_steps_is_refused(tmp_path):
    """An adaptive run's checkpoint with t moved between two of its steps (no snapshot between)
    restarted from the wrong time (exit 0): its t must be one of the results' step times."""
    (tmp_path / "case.toml").write_text(CASE)
    adaptive = ["--set", "time.dt=adaptive", "--set", "time.tolerance=1e-3", "--set", "output.every=100",
                "--set", "checkpoint.every=2", "--set", "checkpoint.keep=100"]
    run_solver(1, ["case.toml", "--quiet", *adaptive], cwd=tmp_path)
    folder = tmp_path / "outputs" / "case"
    with h5py.File(folder / "case.h5", "r") as f:
        times = f["steps/time"][()]
    path = folder / "checkpoints" / "step_00000002.h5"
    with h5py.File(path, "a") as f:
        assert f.attrs["t"] == times[1]
        f.attrs["t"] = (times[1] + times[2]) / 2
    before = (folder / "case.h5").read_bytes()
    restart = ["case.toml", "--quiet", *adaptive, "--restart", str(path)]
    error = one_error(run_solver(1, restart, cwd=tmp_path, check=False), 2)
    assert f"{path}: checkpoint attribute t = " in error and "is at none of the steps of case.h5" in error, error
    assert (folder / "case.h5").read_bytes() == before


@pytest.mark.parametrize("link", ["soft", "external"])
def test_a_checkpoint_vector_that_is_a_link_is_refused(tmp_path, link):
    """/temperature made a soft link to /previous restarted from the earlier solution (exit 0, a
    wrong answer); an external link opened another file and ended in an internal error (exit 1)."""
    path = tmp_path / "step.h5"
    with h5py.File(path, "w") as f:
        f.attrs["solver_checkpoint"] = checkpoint.FORMAT
        f["previous"] = np.full(10, 20.0)
        f["temperature"] = h5py.SoftLink("/previous") if link == "soft" else h5py.ExternalLink("/etc/passwd", "/x")
    with pytest.raises(CaseError, match="damaged checkpoint: /temperature is a link to "):
        checkpoint.inspect(path, 10)


def test_a_checkpoint_vector_without_the_sums_written_beside_others_is_refused(tmp_path):
    """A vector deleted and written again with h5py (the temperature of another run) loses the
    sums written with it, and was read unchecked while the other vectors kept theirs (exit 0)."""
    path = tmp_path / "step.h5"
    with h5py.File(path, "w") as f:
        f.attrs["solver_checkpoint"] = checkpoint.FORMAT
        f["temperature"] = np.full(10, 30.0)
        f["previous"] = np.full(10, 20.0)
        f["previous"].attrs.update({"sum": 200.0, "abs_sum": 200.0})
    with pytest.raises(CaseError, match="damaged checkpoint: /temperature lacks the sums") as info:
        checkpoint.inspect(path, 10)
    assert "/previous has them" in str(info.value)
    with h5py.File(path, "a") as f:  # none with sums (an earlier version's): read as before
        del f["previous"].attrs["sum"], f["previous"].attrs["abs_sum"]
    with pytest.raises(CaseError, match="attributes are missing or malformed"):
        checkpoint.inspect(path, 10)


def test_the_tables_a_stored_case_names_are_counted_before_any_is_read(tmp_path):
    """A stored case names its tables with their points: a file that names more than a case may
    hold (each table, or all together), or a count of 400 digits, is refused in a short line before
    anything is read."""
    from solver.io.stored_case import StoredCaseError, read_tables

    many = {"region": {f"r{i}": {"k": {"dataset": f"/case_tables/{i:064x}", "points": 100_000}} for i in range(11)}}
    huge = {"material": {"k": {"dataset": "/case_tables/" + "0" * 64, "points": 10**400}}}
    with h5py.File(tmp_path / "c.h5", "w") as f:
        with pytest.raises(StoredCaseError, match=r"names 11 tables of 1,100,000 points in all, more than the 1,000,"):
            read_tables(f, many)
        with pytest.raises(StoredCaseError, match="of 10000000000000000000 points, not a dataset") as err:
            read_tables(f, huge)
    assert len(str(err.value)) < 200


@pytest.mark.parametrize("ranks", [1, 3])
def test_results_moved_back_by_hand_are_pointed_to_their_checkpoints_in_the_backup(tmp_path, ranks):
    """Run A, then B with --overwrite (A's results to .bak, its checkpoints to checkpoints.bak);
    A's results moved back by hand: --restart latest, and a restart from B's checkpoint by its
    path, name A's newest checkpoint in checkpoints.bak (exit 2, one line), which continues A."""
    case = ["--set", "mesh.nx=4", "--set", "mesh.ny=2", "--set", "time.dt=10.0", "--set", "output.every=2",
            "--set", "checkpoint.every=3", "--set", f"output.directory={tmp_path}", "--quiet"]
    run_solver(ranks, [*case, "--set", "time.t_end=60.0"], cwd=tmp_path)
    run_solver(ranks, [*case, "--set", "time.t_end=30.0", "--overwrite"], cwd=tmp_path)
    results = tmp_path / "default"
    for name in ("default.h5", "default.xdmf"):
        os.replace(results / f"{name}.bak", results / name)
    kept = results / "checkpoints.bak" / "step_00000006.h5"
    for restart in ("latest", str(results / "checkpoints" / "step_00000003.h5")):
        proc = run_solver(ranks, [*case, "--set", "time.t_end=90.0", "--restart", restart], cwd=tmp_path, check=False)
        assert f"continue it with --restart {kept}" in one_error(proc, 2) and "Traceback" not in proc.stderr
    run_solver(ranks, [*case, "--set", "time.t_end=90.0", "--restart", str(kept)], cwd=tmp_path)
    with h5py.File(results / "default.h5", "r") as f:
        assert f.attrs["status"] == "complete" and f["time"][-1] == 90.0


def test_results_or_a_study_file_given_as_a_checkpoint_are_named_so(tmp_path):
    """A run's results or a study file given to --restart: it said only "not a checkpoint of this
    solver"; it names what the file is and what continues it."""
    results, study, other = tmp_path / "plate" / "plate.h5", tmp_path / "s.study.h5", tmp_path / "other.h5"
    results.parent.mkdir()
    with h5py.File(results, "w") as f:
        f.attrs["run_id"] = "abc"
        f["time"], f.create_group("fields")["temperature"] = np.zeros(1), np.zeros(3)
    with h5py.File(study, "w") as f:
        f.attrs.update({"solver_study": 1, "study_source": "studies/s.toml"})
    with h5py.File(other, "w") as f:
        f["x"] = 1.0
    for path, said in ((results, f"a run's results, not a checkpoint: their run continues from a checkpoint in "
                                 f"{results.parent / 'checkpoints'}"),
                       (study, "a study file, not a checkpoint: a study continues with python -m solver study "
                               "studies/s.toml --restart latest"),
                       (other, "not a checkpoint of this solver (no solver_checkpoint")):
        with pytest.raises(CaseError, match=re.escape(f"{path}: {said}")):
            checkpoint.inspect(path, 3)
