"""Compiled kernels: the numba switch, the decorators with the on-disk cache, and the index type
of sparse matrices, shared by the assembly (:mod:`solver.fem.kernels`) and the linear algebra
(:mod:`solver.la.symmetric`, the multigrid).

* ``AVAILABLE`` is False when numba is not installed or ``SOLVER_NUMBA=0`` is set; every caller
  then takes its NumPy/SciPy path (the same results to rounding, slower). numba itself is only
  imported when a kernel is first called: importing it and loading cached kernels costs about
  0.45 s per process, more than a small problem's whole assembly on the NumPy path.
* :func:`worth_compiling` is the run's choice (the same on every rank, from global sizes):
  compiled kernels unless the problem is small and linear (:data:`SMALL_WORK`), or as
  ``SOLVER_NUMBA=1`` forces.
* :func:`jit` compiles with ``cache=True`` on first call: in ``NUMBA_CACHE_DIR`` when set, else
  in ``__pycache__`` beside the source, else in the user's cache directory (``~/.cache/numba``);
  where none is writable numba refuses the cache, and the function is compiled in memory at
  every run instead. A cache that cannot take a kernel it compiled (a full or read-only disk)
  is turned off for the rest of the process, with one warning (:func:`cache_off`). Without
  numba it returns the Python function itself.
* One compile per machine: the first call of a kernel whose cache is empty holds a file lock
  beside the cache while it compiles (:func:`first_compile`), so that the ranks of a run (or
  the runs of a study) wait for one process to compile it and then load it, instead of all
  compiling the same code at once; :func:`compile_shared` deals the kernels a run needs to its
  ranks, so that P ranks compile P of them side by side, and a run on one rank to helper
  processes on its idle cores (:func:`compile_beside`).
* :data:`inline` inlines a helper into the kernels that call it (numba IR inlining): a call
  with array arguments costs reference counting, as much as the work of a small cell.
* :func:`index_dtype`: int32 where every index fits (half the index bytes of a product), else
  int64.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import os
import sys
import time

import numpy as np

try:
    import fcntl
except ImportError:  # not on Windows: each process compiles for itself there
    fcntl = None

AVAILABLE = os.environ.get("SOLVER_NUMBA", "") != "0" and importlib.util.find_spec("numba") is not None
FORCED = os.environ.get("SOLVER_NUMBA", "") == "1"
# cells x (nodes per cell)^2 of a linear problem up to which a whole steady run costs less on the
# NumPy path than starting numba and loading its kernels (measured on whole runs: P1 triangles
# break even near 2.5e6, P2 triangles near 1.2e6)
SMALL_WORK = 1 << 21

__all__ = ["AVAILABLE", "compiled_kernels", "compile_seconds", "compile_shared", "helper_compiled_kernels",
           "index_dtype", "inline", "jit", "kernels_enabled", "use_kernels", "worth_compiling"]


_ENABLED = True  # the current run's choice (use_kernels), for the linear algebra's products


def use_kernels(enabled: bool) -> None:
    """Record the run's choice (:func:`worth_compiling`), which the multigrid's and CG's products
    follow (:class:`solver.la.symmetric.SymmetricCSR`): a run on the NumPy path never starts
    numba."""
    global _ENABLED
    _ENABLED = bool(enabled)


def kernels_enabled() -> bool:
    """numba is there and the current run takes the compiled kernels."""
    return AVAILABLE and _ENABLED


def worth_compiling(global_cells: int, nodes_per_cell: int, linear: bool) -> bool:
    """Whether a run takes the compiled kernels: numba is there, and the problem is nonlinear
    (assembled again at every Newton iteration) or larger than :data:`SMALL_WORK`, or
    ``SOLVER_NUMBA=1`` forces them. Give it global sizes, so that every rank agrees."""
    if not AVAILABLE:
        return False
    return FORCED or not linear or global_cells * nodes_per_cell ** 2 > SMALL_WORK


_COMPILING = None  # the listener of numba's "numba:compile" events, once numba is imported


def _start_numba():
    """Import numba and count and time its compilations from now on (:func:`compile_seconds`)."""
    global _COMPILING
    import numba
    from numba.core import event

    if _COMPILING is None:
        class Compilations(event.Listener):
            """Top-level compilations (a kernel's own, not those of the helpers it calls)."""

            def __init__(self):
                self.depth, self.seconds, self.start, self.kernels = 0, 0.0, 0.0, []

            def on_start(self, ev):
                self.depth += 1
                if self.depth == 1:
                    self.start = time.perf_counter()

            def on_end(self, ev):
                self.depth -= 1
                if self.depth == 0:
                    data = ev.data or {}
                    fn = getattr(data.get("dispatcher"), "py_func", None)
                    self.kernels.append(f"{getattr(fn, '__qualname__', '?')}{tuple(map(str, data.get('args', ())))}")
                    self.seconds += time.perf_counter() - self.start

        _COMPILING = Compilations()
        event.register("numba:compile", _COMPILING)
    return numba


def compile_seconds() -> float:
    """Seconds this process has spent compiling kernels (not loading them from the cache)."""
    return _COMPILING.seconds if _COMPILING is not None else 0.0


def compiled_kernels() -> list[str]:
    """The kernels this process has compiled (not loaded from the cache), with their argument
    types, in order."""
    return list(_COMPILING.kernels) if _COMPILING is not None else []


def _index_path(dispatcher) -> str | None:
    """numba's cache index of a dispatcher (None: it has no on-disk cache)."""
    cache_file = getattr(getattr(dispatcher, "_cache", None), "_cache_file", None)
    return getattr(cache_file, "_index_path", None)


@contextlib.contextmanager
def first_compile(dispatcher):
    """Hold an exclusive lock beside the cache while a kernel absent from it is first called (and
    so compiled): other processes then wait, and load what this one compiled. Nothing is locked
    when the kernel is in the cache already, or where no lock can be taken (no cache, no fcntl, a
    file system without locks: then each process compiles for itself, as numba does)."""
    index = _index_path(dispatcher)
    if index is None or fcntl is None or os.path.exists(index):
        yield
        return
    try:
        os.makedirs(os.path.dirname(index), exist_ok=True)
        fd = os.open(index[: -len(".nbi")] + ".lock", os.O_CREAT | os.O_RDWR, 0o666)
    except OSError:
        yield
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
        except OSError:
            pass
        yield
    finally:
        os.close(fd)  # releases the lock


def compile_shared(comm, tasks) -> None:
    """Collective, on more than one rank: the compilations ``tasks`` ((seconds, call) pairs: calls
    that run kernels on tiny inputs, and their estimated compile times) dealt to the ranks, the
    longest first, each to the rank with the least work so far; each rank runs its share,
    compiling what the cache lacks (or loading it), and all wait for the slowest. A first run on
    P ranks then compiles its kernels side by side, each once. A task that fails is left to fail
    again where the kernel is used for real."""
    if comm.size == 1:
        from mpi4py import MPI

        if MPI.COMM_WORLD.size == 1:  # the launch's only process (not one of a study's groups)
            compile_beside(tasks)
        return
    for task in _dealt(tasks, comm.size)[comm.rank]:
        _attempt(task)
    comm.Barrier()


def _dealt(tasks, workers: int) -> list[list]:
    """``tasks`` ((seconds, call) pairs) dealt to ``workers``, the longest first, each to the one
    with the least work so far."""
    load, shares = [0.0] * workers, [[] for _ in range(workers)]
    for seconds, task in sorted(tasks, key=lambda t: -t[0]):
        worker = load.index(min(load))
        load[worker] += seconds
        shares[worker].append(task)
    return shares


def _attempt(task) -> None:
    try:
        task()
    except Exception:  # noqa: BLE001 - reported by the real call, on every rank that makes it
        pass


_HELPERS_COMPILED: list[str] = []
HELPER_TIMEOUT = 600.0  # seconds a helper process may take to compile its share
LAUNCHER_PREFIXES = ("OMPI_", "PMIX_", "PMI_", "MPI_LOCALNRANKS", "SLURM_PROCID")


def compile_beside(tasks, cores: int | None = None) -> None:
    """One process: when the on-disk cache lacks these compilations (no mark of them beside it,
    :func:`_warm_mark`), deal them to this process and to helper processes started for the
    purpose, one per idle core (the first run of a kernel set on one rank then takes about as long
    as on P ranks); later runs find the mark and load the kernels where they are used. The
    helpers get the tasks pickled (records and module functions) on their command lines and
    report what they compiled (:func:`helper_compiled_kernels`). Nothing happens where there is
    no cache to fill, one core, or one task; a helper that fails leaves its kernels to be
    compiled where they are used. Called by the launch's only process."""
    import base64
    import json
    import pickle
    import subprocess

    if cores is None:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    workers = min(cores, len(tasks))
    if workers < 2:
        return
    mark = _warm_mark(tasks)
    if mark is None or os.path.exists(mark):
        return
    shares = _dealt(tasks, workers)
    env = {k: v for k, v in os.environ.items() if not k.startswith(LAUNCHER_PREFIXES)}
    code = "import base64, pickle, sys\nfrom solver.compiled import serve_tasks\n" \
           "serve_tasks(pickle.loads(base64.b64decode(sys.argv[1])))"
    helpers = []
    try:
        for share in shares[1:]:
            tasks_text = base64.b64encode(pickle.dumps(share)).decode()
            helpers.append(subprocess.Popen([sys.executable, "-c", code, tasks_text], stdin=subprocess.DEVNULL,
                                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env))
        for task in shares[0]:
            _attempt(task)
        done = True
        for proc in helpers:
            out, _ = proc.communicate(timeout=HELPER_TIMEOUT)
            done &= proc.returncode == 0
            with contextlib.suppress(ValueError, IndexError):
                _HELPERS_COMPILED.extend(json.loads(out.decode().strip().splitlines()[-1]))
    except (OSError, subprocess.SubprocessError, pickle.PicklingError):
        done = False
    finally:
        for proc in helpers:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    if done and _SAVING[0]:  # (not where the cache could not take the kernels: nothing is warm)
        with contextlib.suppress(OSError):
            with open(mark, "w"):
                pass


def serve_tasks(tasks) -> None:
    """A helper process of :func:`compile_beside`: run ``tasks`` and print what they compiled."""
    import json

    for task in tasks:
        _attempt(task)
    print(json.dumps(compiled_kernels()), flush=True)


def helper_compiled_kernels() -> list[str]:
    """The kernels this process's helpers compiled for it (:func:`compile_beside`)."""
    return list(_HELPERS_COMPILED)


def _warm_mark(tasks) -> str | None:
    """The file that marks ``tasks`` compiled into the cache, in a folder beside it (None: no
    writable one): its name digests the tasks, numba's and Python's versions and the sources of
    the compiled modules (an edit of any of them, or an emptied cache folder, means cold again)."""
    import hashlib
    from importlib.metadata import PackageNotFoundError, version

    try:
        numba_version = version("numba")  # without importing numba (0.1 s)
    except PackageNotFoundError:
        numba_version = "?"
    root = os.path.dirname(os.path.abspath(__file__))
    names = sorted(f"{t.__module__}.{t.__qualname__}" if hasattr(t, "__qualname__") else repr(t) for _, t in tasks)
    digest = hashlib.sha256(repr((names, sys.version, numba_version)).encode())
    for folder in ("fem/kernels", "la", "."):
        for name in sorted(os.listdir(os.path.join(root, folder))):
            if name.endswith(".py"):
                with open(os.path.join(root, folder, name), "rb") as f:
                    digest.update(f.read())
    folder = os.path.join(_cache_root(), "solver-warm")
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError:
        return None
    return os.path.join(folder, digest.hexdigest()[:32]) if os.access(folder, os.W_OK) else None


def _cache_root() -> str:
    """The folder of numba's on-disk cache: ``NUMBA_CACHE_DIR``, else beside the kernels' sources."""
    root = os.path.dirname(os.path.abspath(__file__))
    return os.environ.get("NUMBA_CACHE_DIR") or os.path.join(root, "fem", "kernels", "__pycache__")


_WARNED_CACHE: set = set()
_SAVING = [True]  # False once the on-disk cache could not take a kernel: later ones compile in memory
_DEFERRED: list = []  # every kernel of this process (Deferred), whose caches cache_off turns off


def _raised_in_cache(exc: BaseException, functions: tuple[str, ...] = ()) -> bool:
    """Whether ``exc`` was raised inside numba's on-disk cache (in one of ``functions``, if given)."""
    tb = exc.__traceback__
    while tb is not None:
        code = tb.tb_frame.f_code
        if code.co_filename.replace("\\", "/").endswith("numba/core/caching.py") and \
                (not functions or code.co_name in functions):
            return True
        tb = tb.tb_next
    return False


def from_cache(exc: BaseException) -> bool:
    """Whether an exception was raised while numba read its on-disk cache (a truncated or corrupt
    index or data file)."""
    return _raised_in_cache(exc) and not saving_cache(exc)


def saving_cache(exc: BaseException) -> bool:
    """Whether a write failed while numba saved a compiled kernel into its on-disk cache (a full,
    read-only or failing disk): the kernel compiled, only the cache could not keep it."""
    return isinstance(exc, OSError) and _raised_in_cache(exc, ("save_overload", "_save_overload"))


def _warn_once(folder: str, text: str) -> None:
    """Print ``warning: text`` once per cache folder (and process)."""
    if folder not in _WARNED_CACHE:
        _WARNED_CACHE.add(folder)
        print(f"warning: {text}", file=sys.stderr, flush=True)


def fresh_cache(dispatcher, exc: BaseException, make):
    """Empty the cache folder of a kernel whose cache could not be read, warn once per folder, and
    return ``make()``: a new dispatcher that compiles afresh into the emptied cache."""
    index = _index_path(dispatcher)
    folder = os.path.dirname(index) if index else None
    if folder:
        for name in os.listdir(folder):
            if name.endswith((".nbi", ".nbc")):
                try:
                    os.unlink(os.path.join(folder, name))
                except OSError:
                    pass
        _warn_once(folder, f"the compiled-kernel cache in {folder} could not be read ({type(exc).__name__}: {exc}); "
                           f"it was emptied and the kernels are compiled again")
    return make()


def cache_off(dispatcher, exc: OSError, make):
    """Stop saving kernels into an on-disk cache that could not take one (``exc``: a full or
    read-only disk), warn once, and return ``make()``: a new dispatcher that compiles in memory,
    as every later one of this process does (:func:`_njit`)."""
    _SAVING[0] = False
    for kernel in _DEFERRED:  # (the helpers compiled already save nothing more either)
        cache = getattr(kernel.dispatcher, "_cache", None)
        if hasattr(cache, "disable"):
            cache.disable()
    index = _index_path(dispatcher)
    folder = os.path.dirname(index) if index else "?"
    _warn_once(folder, f"cannot save compiled kernels in the cache {folder} ({exc.strerror or exc}); this process "
                       f"compiles them in memory (free space there, or set NUMBA_CACHE_DIR to a writable folder, "
                       f"to keep them for the next runs)")
    return make()


def _njit(numba, fn, options: dict):
    """numba's dispatcher of ``fn``, with an on-disk cache where a cache directory is writable (and
    has taken every kernel so far: :func:`cache_off`)."""
    _check_cache_root()
    if not _SAVING[0]:
        return numba.njit(**options)(fn)
    try:
        return numba.njit(cache=True, **options)(fn)
    except RuntimeError:  # no writable cache directory anywhere numba looks
        return numba.njit(**options)(fn)


def _check_cache_root() -> None:
    """Warn once (on the first rank) when NUMBA_CACHE_DIR is not a folder that can be written (a
    file, a device): numba then caches the kernels elsewhere, or compiles them again in each run."""
    folder = os.environ.get("NUMBA_CACHE_DIR")
    if not folder or folder in _WARNED_CACHE:
        return
    _WARNED_CACHE.add(folder)
    try:
        os.makedirs(folder, exist_ok=True)
        usable = os.access(folder, os.W_OK | os.X_OK)
    except OSError:
        usable = False
    mpi = sys.modules.get("mpi4py.MPI")  # (MPI started: the first rank of the launch says it)
    if not usable and (mpi is None or not mpi.Is_initialized() or mpi.COMM_WORLD.rank == 0):
        print(f"warning: the compiled-kernel cache NUMBA_CACHE_DIR={folder} is not a writable folder; the kernels "
              f"are cached beside their sources, or compiled again in each run: set it to a writable folder",
              file=sys.stderr, flush=True)


class Deferred:
    """A function that numba compiles on its first call (numba imported then): the compiled
    helpers it refers to through module globals or closure cells are compiled first, and the
    names rebound to them, so that numba types the calls."""

    def __init__(self, fn, options: dict):
        self.py_func, self.options, self.dispatcher = fn, options, None
        self.called = False
        functools.update_wrapper(self, fn)
        _DEFERRED.append(self)

    def compile(self):
        if self.dispatcher is None:
            numba = _start_numba()
            fn = self.py_func
            for name in fn.__code__.co_names:
                value = fn.__globals__.get(name)
                if isinstance(value, Deferred):
                    fn.__globals__[name] = value.compile()
            for cell in fn.__closure__ or ():
                if isinstance(cell.cell_contents, Deferred):
                    cell.cell_contents = cell.cell_contents.compile()
            self.dispatcher = _njit(numba, fn, self.options)
        return self.dispatcher

    def __call__(self, *args):
        if self.called:
            return self.dispatcher(*args)
        dispatcher = self.compile()
        with first_compile(dispatcher):
            try:
                result = dispatcher(*args)
            except Exception as exc:  # noqa: BLE001 - re-raised unless the cache was unreadable or unwritable
                handle = cache_off if saving_cache(exc) else fresh_cache if from_cache(exc) else None
                if handle is None:
                    raise
                numba = _start_numba()
                self.dispatcher = handle(dispatcher, exc, lambda: _njit(numba, self.py_func, self.options))
                result = self.dispatcher(*args)
        self.called = True
        return result


def jit(fn=None, **options):
    """numba.njit with an on-disk cache (or without one where no cache directory is writable),
    compiled on first call; the Python function itself without numba. Use as ``@jit`` or
    ``@jit(option=...)``."""
    if fn is None:
        return lambda f: jit(f, **options)
    if not AVAILABLE:
        return fn
    options.setdefault("nogil", True)
    return Deferred(fn, options)


inline = jit(inline="always")


def index_dtype(*sizes: int):
    """int32 when every index and count fits, else int64."""
    return np.int32 if max(sizes, default=0) < 2**31 - 1 else np.int64
