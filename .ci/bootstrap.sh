#!/usr/bin/env bash
# Bootstrap everything `make run` / `make test` need, skipping what is already there.
#
#  1. System MPI and parallel HDF5: from the distribution's packages when missing and
#     we are root on Debian/Ubuntu; otherwise an explanation (load your cluster modules).
#  2. A virtual environment (.venv) with mpi4py, NumPy, SciPy, numba, meshio, pytest and an
#     MPI-enabled h5py built from source against the system's parallel HDF5, every version
#     pinned by constraints.txt (compiled from pyproject.toml by pip-tools: make lock).
#  3. The solver package itself, installed in editable mode.
#
# Re-running is cheap: a stamp file records a completed bootstrap, and pip's wheel cache
# keeps the h5py wheel built the first time (a fresh clone re-installs it in seconds).
#
# Environment knobs (all optional):
#   PYTHON=python3            interpreter used to create the venv
#   VENV=.venv                where the venv lives
#   HDF5_PKGCONFIG_NAME=...   pkg-config name of the parallel HDF5 (default: detected)
#   MPICC=mpicc               MPI compiler wrapper used to build h5py
set -euo pipefail

cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}
MPICC=${MPICC:-mpicc}
STAMP="$VENV/.bootstrap-done"

say() { printf '[bootstrap] %s\n' "$*" >&2; }
die() { printf '[bootstrap] error: %s\n' "$*" >&2; exit 1; }

if [ -f "$STAMP" ] && [ "$STAMP" -nt pyproject.toml ] && [ "$STAMP" -nt .ci/bootstrap.sh ] \
        && [ "$STAMP" -nt constraints.txt ]; then
    exit 0
fi

# ---------------------------------------------------------------- 1. system MPI + HDF5
detect_hdf5_pc() {
    local name
    for name in ${HDF5_PKGCONFIG_NAME:-} hdf5-openmpi hdf5-mpich hdf5_openmpi hdf5; do
        if pkg-config --exists "$name" 2>/dev/null; then
            # Only a parallel build will do: its headers define H5_HAVE_PARALLEL.
            local inc
            inc=$(pkg-config --cflags-only-I "$name" | sed 's/-I//g')
            for d in $inc /usr/include; do
                if [ -f "$d/H5pubconf.h" ] && grep -q '#define H5_HAVE_PARALLEL 1' "$d/H5pubconf.h"; then
                    echo "$name"; return 0
                fi
            done
        fi
    done
    return 1
}

need_system=0
command -v "$MPICC" >/dev/null 2>&1 || need_system=1
command -v mpirun >/dev/null 2>&1 || command -v mpiexec >/dev/null 2>&1 || need_system=1
command -v pkg-config >/dev/null 2>&1 || need_system=1
if [ $need_system = 0 ] && ! detect_hdf5_pc >/dev/null; then need_system=1; fi

if [ $need_system = 1 ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        say "installing Open MPI and parallel HDF5 from the distribution (apt-get)"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq libopenmpi-dev openmpi-bin libhdf5-openmpi-dev pkg-config >/dev/null
    else
        die "MPI (mpicc, mpirun) and a parallel HDF5 with pkg-config are required.
  On Debian/Ubuntu: sudo apt-get install libopenmpi-dev openmpi-bin libhdf5-openmpi-dev pkg-config
  On a cluster:     module load openmpi hdf5/parallel   (names vary; see docs/getting_started.md)
  then set HDF5_PKGCONFIG_NAME, or HDF5_DIR for h5py, if the HDF5 is not found by pkg-config."
    fi
fi
HDF5_PC=$(detect_hdf5_pc) || die "no parallel HDF5 found by pkg-config (set HDF5_PKGCONFIG_NAME)"
say "MPI: $(command -v "$MPICC"), parallel HDF5: $HDF5_PC $(pkg-config --modversion "$HDF5_PC")"

# ---------------------------------------------------------------- 2. virtual environment
if [ ! -x "$VENV/bin/python" ]; then
    say "creating $VENV with $($PYTHON --version 2>&1)"
    if ! "$PYTHON" -m venv "$VENV" 2>/dev/null; then
        if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
            apt-get install -y -qq python3-venv >/dev/null
            rm -rf "$VENV"; "$PYTHON" -m venv "$VENV"
        else
            die "'$PYTHON -m venv' failed: install python3-venv"
        fi
    fi
fi
PY="$VENV/bin/python"
PIP="$PY -m pip --disable-pip-version-check --quiet"
LOCK="-c constraints.txt"  # every version pinned (pip-tools, from pyproject.toml: make lock)

say "installing build tools and dependencies"
$PIP install $LOCK -U pip setuptools cython pkgconfig packaging wheel numpy
$PIP install $LOCK mpi4py scipy meshio tomli-w pyamg pymetis gmsh matplotlib pytest hypothesis numba
$PIP install $LOCK sphinx furo myst-parser sphinx-argparse   # make docs (the docs tests build the site)
if ! "$PY" -c 'import gmsh' >/dev/null 2>&1; then
    # gmsh's wheel (used to build example geometries and test meshes) needs a few X/GL libraries
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        say "installing the libraries gmsh needs (apt-get)"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libglu1-mesa libxft2 libxinerama1 libxcursor1 >/dev/null
    else
        say "warning: 'import gmsh' fails (install libglu1-mesa libxft2 libxinerama1 libxcursor1); mesh tests will be skipped"
    fi
fi

H5PY_PIN=$(grep -E '^h5py==' constraints.txt)
if "$PY" -c 'import sys, h5py; sys.exit(0 if h5py.get_config().mpi and "h5py==" + h5py.__version__ == sys.argv[1] else 1)' \
        "$H5PY_PIN" 2>/dev/null; then
    say "h5py with MPI already installed ($H5PY_PIN)"
else
    say "building h5py against $HDF5_PC with MPI (about 4 minutes the first time; cached after)"
    $PIP uninstall -y h5py >/dev/null 2>&1 || true
    CC="$MPICC" HDF5_MPI=ON HDF5_PKGCONFIG_NAME="$HDF5_PC" \
        $PIP install --no-binary=h5py --no-build-isolation "$H5PY_PIN"
    if ! "$PY" -c 'import sys, h5py; sys.exit(0 if h5py.get_config().mpi else 1)'; then
        say "cached h5py wheel lacks MPI; rebuilding without the cache"
        $PIP uninstall -y h5py >/dev/null 2>&1 || true
        CC="$MPICC" HDF5_MPI=ON HDF5_PKGCONFIG_NAME="$HDF5_PC" \
            $PIP install --no-cache-dir --no-binary=h5py --no-build-isolation "$H5PY_PIN"
    fi
fi

# ---------------------------------------------------------------- 3. the package
say "installing the solver package (editable)"
$PIP install --no-deps --no-build-isolation -e .
"$PY" -c 'import mpi4py, h5py, scipy, solver; assert h5py.get_config().mpi' \
    || die "the environment in $VENV is incomplete"
# numba compiles the assembly kernels on first use and caches them beside the sources; do it once
# here (about 2.5 minutes on one core: the linear cells, and the quadratic ones affine and curved)
# rather than in the first runs
if "$PY" -c 'import numba' >/dev/null 2>&1; then
    say "compiling the assembly kernels and the products (numba, cached in solver/fem/__pycache__, solver/la/__pycache__)"
    "$PY" -m solver.fem.kernels >/dev/null || say "warning: the kernels did not compile here (they will be at first use)"
    "$PY" -c 'from solver.la.symmetric import warm_tasks
for _, task in warm_tasks(): task()' || say "warning: the products did not compile here (they will be at first use)"
fi
touch "$STAMP"
say "ready: $VENV"
