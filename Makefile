# make run   -- bootstrap if needed, then run the default case on $(NP) ranks
# make test  -- bootstrap if needed, then run the whole test suite
# make bench -- bootstrap if needed, then python -m solver bench $(ARGS) (e.g. ARGS=--quick)
# make bootstrap / make clean
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

.PHONY: all bootstrap run test bench clean
all: test

bootstrap: $(STAMP)

$(STAMP): pyproject.toml .ci/bootstrap.sh
	PYTHON=$(PYTHON) VENV=$(VENV) bash .ci/bootstrap.sh

run: $(STAMP)
	$(MPIEXEC) -n $(NP) $(PY) -m solver $(CASE) --overwrite $(ARGS)

test: $(STAMP)
	$(PY) -m pytest -q tests

bench: $(STAMP)
	$(PY) -m solver bench --ranks $(NP) $(ARGS)

clean:
	rm -rf outputs/*/ .pytest_cache build *.egg-info
