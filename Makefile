# make run   -- bootstrap if needed, then run the default case on $(NP) ranks (with --overwrite:
#               the results of an earlier run of the case are kept as .bak, one generation)
# make test  -- bootstrap if needed, then run the whole test suite
# make bench -- bootstrap if needed, then python -m solver bench $(ARGS) (e.g. ARGS=--quick)
# make docs  -- bootstrap if needed, then build the documentation site into docs/_build/html
# make help -- this text
# make bootstrap / make clean / make lock (re-pin constraints.txt from pyproject.toml)
#
# Variables: NP (ranks, default 2), CASE (case file, default: the built-in plate),
# ARGS (extra solver arguments, e.g. ARGS="--set mesh.nx=200"), PYTHON, VENV, MPIEXEC.

PYTHON  ?= python3
VENV    ?= .venv
NP      ?= 2
CASE    ?=
ARGS    ?=
MPIEXEC ?= mpirun
PY      := $(VENV)/bin/python
STAMP   := $(VENV)/.bootstrap-done

# Open MPI refuses to run as root unless told, and refuses more ranks than cores unless
# oversubscription is allowed (tests run 4 ranks on 2 cores). Other MPIs ignore these.
ifeq ($(shell id -u),0)
export OMPI_ALLOW_RUN_AS_ROOT := 1
export OMPI_ALLOW_RUN_AS_ROOT_CONFIRM := 1
endif
export OMPI_MCA_rmaps_base_oversubscribe := 1

.PHONY: all help bootstrap run test bench docs clean lock
all: test

help:
	@sed -n '1,/^$$/s/^# \{0,1\}//p' $(firstword $(MAKEFILE_LIST))

bootstrap: $(STAMP)

$(STAMP): pyproject.toml .ci/bootstrap.sh constraints.txt
	PYTHON=$(PYTHON) VENV=$(VENV) bash .ci/bootstrap.sh

# constraints.txt: every version the bootstrap installs, compiled from pyproject.toml (extra
# "test") and .ci/build-tools.in by pip-tools (installed in a throw-away venv); commit the result
lock:
	$(PYTHON) -m venv .lock-venv && .lock-venv/bin/pip install -q pip-tools
	.lock-venv/bin/pip-compile -q --allow-unsafe --strip-extras --no-emit-index-url --no-emit-find-links \
		--extra test --extra docs -o constraints.txt pyproject.toml .ci/build-tools.in
	rm -rf .lock-venv

run: $(STAMP)
	$(MPIEXEC) -n $(NP) $(PY) -m solver $(if $(CASE),"$(CASE)") --overwrite $(ARGS)

# (bytecode caches on, even where the environment turns them off: the suite starts a thousand
# Python processes, each of which would otherwise compile the package again). The SLURM tests spend
# most of their 3-4 minutes waiting on the scheduler's clock (a one-minute time limit checked every
# 30 s, requeues, 5-s scheduling passes), so they run beside the rest in a second pytest of their
# own (its own temporary directory, no shared cache), with the documentation's tests (the site's
# build and the commands its pages show) and the whole-run tests of restarts and full disks (mostly
# process start-ups, signals and write timeouts) filling that wait, so that both take about as long;
# its report follows the suite's, and either failing fails the target.
BESIDE_TESTS := tests/system tests/app/test_full_disk.py tests/docs
test: $(STAMP)
	@bash .ci/install-slurm.sh
	@export PYTHONDONTWRITEBYTECODE=; scratch=$$(mktemp -d); \
	$(PY) -m pytest -q -p no:cacheprovider --basetemp=$$scratch/tmp $(BESIDE_TESTS) >$$scratch/log 2>&1 & \
	slurm=$$!; trap 'kill $$slurm 2>/dev/null' INT TERM; \
	$(PY) -m pytest -q tests $(addprefix --ignore=,$(BESIDE_TESTS)); suite=$$?; \
	wait $$slurm; slurm_status=$$?; \
	echo "--- $(BESIDE_TESTS), run beside the suite:"; cat $$scratch/log; rm -rf $$scratch; \
	test $$suite -eq 0 -a $$slurm_status -eq 0

bench: $(STAMP)
	$(PY) -m solver bench --ranks $(NP) $(ARGS)

# warnings are errors; --keep-going reports all of them before failing
docs: $(STAMP)
	$(PY) -m sphinx -W --keep-going -q -b html docs docs/_build/html
	@echo "docs: open docs/_build/html/index.html"

clean:
	rm -rf outputs/*/ .pytest_cache build *.egg-info docs/_build
