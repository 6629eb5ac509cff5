"""How many CPU threads torch and the BLAS / OpenMP pools use, decided in one place by role.

Torch and OpenBLAS default to one thread per core of the *machine*. That is right for one big
job on an idle machine and badly wrong otherwise: small ops spend their time synchronising
threads, and on a busy machine every thread waits for the slowest. Measured on a busy 2-core
machine: a text query through the API took 1,956 ms (median) with the defaults and 96 ms with
one thread, an image query 12,436 ms vs 228 ms; three processes training with 16 threads each
on a 16-core machine made one BPR fit take 461 s instead of 18 s. So every place that runs
torch or BLAS names its role here:

``query``
    one query (a sentence, an image, a clip): 1 thread.
``batch``
    batch encoding of a catalogue, maps: every core this process may use (its CPU affinity,
    which honours ``taskset`` and cgroup cpusets), minus the DataLoader worker processes.
``train``
    lab fits: ``max(1, min(4, cores // 4))``, i.e. one thread below 8 cores. BPR on lfm2k
    (10 epochs, 2-core machine shared with other jobs, load ~2.3): 115-238 ms per epoch with
    1 thread, 1,024-1,602 ms with 2. Lab models are small (64-d embeddings, 1k-row batches),
    so intra-op threads mostly add synchronisation; the cap of 4 keeps a few concurrent fits
    from oversubscribing a large machine.

``search``
    the vector-store searches of one query (one per item field or modality pair), run side by
    side by :func:`run_side_by_side`, each on one thread: ``min(4, cores)``. Unlike OpenMP
    threads inside one search, independent searches never wait for each other (at 1M items on
    2 cores, a fused query's 2-4 searches took 9-15 ms one after another; see benchmarks/scale.py).

``RECSYS_QUERY_THREADS``, ``RECSYS_BATCH_THREADS``, ``RECSYS_TRAIN_THREADS`` and
``RECSYS_SEARCH_THREADS`` override the defaults (a whole number >= 1). Counts are per process
and global to it: concurrent users of one process (Streamlit sessions) share the last setting.
"""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from types import TracebackType
from typing import Any, ParamSpec, TypeVar

from recsys.config import whole_number
from recsys.errors import RecsysError

ROLES: dict[str, str] = {
    "query": "RECSYS_QUERY_THREADS",
    "batch": "RECSYS_BATCH_THREADS",
    "train": "RECSYS_TRAIN_THREADS",
    "search": "RECSYS_SEARCH_THREADS",
}
MAX_SEARCH_THREADS = 4
MAX_TRAIN_THREADS = 4
WORKERS_ENV = "RECSYS_BATCH_WORKERS"
P = ParamSpec("P")
R = TypeVar("R")
T = TypeVar("T")

_interop_done = False
_active: int | None = None  # the count the last ThreadScope applied (None: no scope yet)


def available_cores() -> int:
    """CPUs this process may run on (affinity mask), not the machine's count."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - platforms without sched_getaffinity (macOS)
        return max(1, os.cpu_count() or 1)


def _env_int(name: str, minimum: int, unit: str) -> int | None:
    """A whole-number environment override (None when unset), or a :class:`ConfigError` naming it."""
    raw = os.environ.get(name)
    if raw is None or not raw.strip():
        return None
    return whole_number(raw, f"environment variable {name}", minimum=minimum, unit=unit)


def check_overrides() -> None:
    """Raise :class:`ConfigError` now for a malformed thread or worker override, rather than mid-run."""
    for role in ROLES:
        _env_count(role)
    _env_int(WORKERS_ENV, 0, "processes")


def _env_count(role: str) -> int | None:
    return _env_int(ROLES[role], 1, "threads")


def thread_count(role: str, workers: int = 0) -> int:
    """The thread count for ``role``: its environment override, else the default described above.

    ``workers`` (batch role): DataLoader worker processes that will run beside this one.
    """
    if role not in ROLES:
        raise ValueError(f"unknown thread role {role!r}; known: {', '.join(ROLES)}")
    explicit = _env_count(role)
    if explicit is not None:
        return explicit
    cores = available_cores()
    if role == "query":
        return 1
    if role == "batch":
        return max(1, cores - max(0, workers))
    if role == "search":
        return max(1, min(MAX_SEARCH_THREADS, cores))
    return max(1, min(MAX_TRAIN_THREADS, cores // 4))


def worker_processes(device: str = "cpu") -> int:
    """Decode / preprocess worker processes for batch encoding: ``RECSYS_BATCH_WORKERS``, else on
    CUDA all cores but one (the main process mostly waits on the GPU), on the CPU 1 up to 4 cores,
    then a quarter of them.

    Decoding and resizing a catalogue picture costs ~2 ms of CPU, the CPU forward pass of the image
    model ~20 ms: on a CPU one worker keeps up and the forward pass gets the other cores (the
    batch role's thread count subtracts the workers); a GPU runs the model at thousands of
    images/s, so there preprocessing needs every core it can get.
    """
    explicit = _env_int(WORKERS_ENV, 0, "processes")
    if explicit is not None:
        return explicit
    cores = available_cores()
    if str(device).startswith("cuda"):
        return max(1, min(16, cores - 1))
    return 1 if cores <= 4 else cores // 4


def check_processes() -> int:
    """Processes checking a large catalogue's media files on its first load: ``RECSYS_BATCH_WORKERS``,
    else every core (nothing else runs while a catalogue loads)."""
    explicit = _env_int(WORKERS_ENV, 0, "processes")
    return explicit if explicit is not None else available_cores()


def one_thread_per_worker(_: int) -> None:
    """DataLoader ``worker_init_fn``: one torch / BLAS thread in each worker process, whose decoding
    and hashing must not crowd out the forward pass (the workers are counted by :func:`worker_processes`),
    and one for the runtimes sized by :func:`active_threads` (YAMNet's onnxruntime sessions), whose
    count a forked worker would otherwise inherit from the main process's batch role."""
    import torch

    global _active
    _active = 1
    torch.set_num_threads(1)
    with contextlib.suppress(ImportError):
        from threadpoolctl import threadpool_limits

        threadpool_limits(1)


def _set_interop_once(torch: Any) -> None:
    """Torch's inter-op pool can be sized once per process, before it starts: do it at the first call.

    It gets the largest count any role may ask for. If the pool already started (torch was used,
    or the size was set elsewhere) torch refuses and the pool keeps its size; that is harmless.
    """
    global _interop_done
    if _interop_done:
        return
    _interop_done = True
    with contextlib.suppress(RuntimeError):
        torch.set_num_interop_threads(max(thread_count(role) for role in ROLES))


class ThreadScope:
    """The counts in force after :func:`use_threads`; as a context manager it restores the earlier ones."""

    def __init__(self, role: str, count: int) -> None:
        import torch
        from threadpoolctl import threadpool_limits

        self.role = role
        self.count = count
        self._torch = torch
        _set_interop_once(torch)
        self._previous_torch = torch.get_num_threads()
        torch.set_num_threads(count)
        self._limiter = threadpool_limits(limits=count)  # BLAS and OpenMP pools (numpy, scipy, sklearn)
        global _active
        self._previous_active, _active = _active, count

    def restore(self) -> None:
        """Put back the torch and BLAS / OpenMP counts that were in force before."""
        global _active
        self._limiter.restore_original_limits()
        self._torch.set_num_threads(self._previous_torch)
        _active = self._previous_active

    def __enter__(self) -> ThreadScope:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.restore()


def active_threads() -> int:
    """The count in force now for runtimes this module cannot size itself (an onnxruntime session
    takes its intra-op count when it is created): the last :func:`use_threads` count, else the
    query role's."""
    return _active if _active is not None else thread_count("query")


def use_threads(role: str, *, workers: int = 0, threads: int | None = None) -> ThreadScope:
    """Apply ``role``'s count to torch intra-op threads and to the BLAS / OpenMP pools, now.

    Call it plainly to switch for good (``use_threads("query")`` once an engine is built), or use
    it as a context manager to restore the previous counts on exit (``with use_threads("train"):``).
    ``threads`` forces a count for this call (a model's own setting); ``workers`` is passed to
    :func:`thread_count`. Raises :class:`RecsysError` for a malformed environment override.
    """
    count = thread_count(role, workers) if threads is None else threads
    if count < 1:
        raise RecsysError(f"A thread count must be at least 1, got {count}.")
    return ThreadScope(role, count)


def batch_then_query(build: Callable[P, R]) -> Callable[P, R]:
    """Run ``build`` (which encodes a whole catalogue) in the batch role, then switch to the query role.

    An engine is built once and then answers one query at a time, so this is the policy of every
    engine builder: the API (:func:`recsys.pipeline.load_engine`) then behaves like the CLI and
    the app. On failure the earlier counts are restored instead.
    """

    @functools.wraps(build)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        with use_threads("batch"):
            result = build(*args, **kwargs)
        use_threads("query")
        return result

    return wrapper


@functools.lru_cache(maxsize=4)
def _search_pool(threads: int) -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=threads, thread_name_prefix="recsys-search")


def run_side_by_side(fn: Callable[[T], R], items: Sequence[T]) -> list[R]:
    """``[fn(x) for x in items]``, on up to ``thread_count("search")`` threads (calls that release
    the GIL, such as index searches); in order, and the first exception is raised."""
    threads = min(len(items), thread_count("search"))
    if threads <= 1:
        return [fn(x) for x in items]
    return list(_search_pool(threads).map(fn, items))
