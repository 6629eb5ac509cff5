"""Device choice: CUDA when present, never required."""

from __future__ import annotations

import os


def pick_device(preferred: str | None = None) -> str:
    """Return ``preferred`` if given, else ``RECSYS_DEVICE``, else ``cuda`` when available, else ``cpu``."""
    choice = preferred or os.environ.get("RECSYS_DEVICE")
    if choice:
        return choice
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def limit_query_threads() -> int:
    """Run torch on ``RECSYS_QUERY_THREADS`` (default 1) threads for answering queries.

    A query is one sentence, image or clip: intra-op threads barely help it, and on a busy
    machine they wait on each other. Measured on 2 cores under load: MiniLM on one sentence took
    ~1.2 s with 2 threads and ~30 ms with 1. Call it once the catalogue is indexed (batched
    encoding does profit from every core).
    """
    import torch

    threads = max(1, int(os.environ.get("RECSYS_QUERY_THREADS", "1")))
    torch.set_num_threads(threads)
    return threads
