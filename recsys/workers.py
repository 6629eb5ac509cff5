"""A function over many files, in worker processes.

Why processes: per file the work of hashing or checking a catalogue's media is mostly interpreter
overhead (opening it, PIL parsing a header), which threads cannot share: 16 threads on an H100 host
hashed 94,900 pictures in 8.1 s, and 2 threads checked image headers slower than one. The workers
are DataLoader workers (forked, one torch / BLAS thread each), as the encoding pass's are.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

from recsys.threads import one_thread_per_worker

T = TypeVar("T")
R = TypeVar("R")


class _Chunks(Generic[T, R]):
    """Map-style dataset: chunk ``i`` of the items -> the function's results; an ``OSError`` comes
    back as the value (raised again in the caller), so a worker never dies of one file."""

    def __init__(self, function: Callable[[T], R], chunks: list[Sequence[T]]) -> None:
        self.function = function
        self.chunks = chunks

    def __len__(self) -> int:
        return len(self.chunks)

    def __getitem__(self, index: int) -> list[R] | OSError:
        try:
            return [self.function(item) for item in self.chunks[index]]
        except OSError as exc:
            return exc


def map_in_processes(function: Callable[[T], R], items: Sequence[T], processes: int, chunk: int = 256) -> list[R]:
    """``[function(item) for item in items]``, in ``processes`` worker processes when there are more
    than one and more than one chunk of ``chunk`` items; an ``OSError`` of ``function`` is raised here."""
    if processes < 2 or len(items) <= chunk:
        return [function(item) for item in items]
    from torch.utils.data import DataLoader

    chunks = [items[i : i + chunk] for i in range(0, len(items), chunk)]
    loader = DataLoader(
        _Chunks(function, chunks),  # type: ignore[arg-type]  # map-style: __len__ + __getitem__
        batch_size=None,
        num_workers=min(processes, len(chunks)),
        worker_init_fn=one_thread_per_worker,
    )
    results: list[R] = []
    for part in loader:
        if isinstance(part, OSError):
            raise part
        results.extend(part)
    return results
