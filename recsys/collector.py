"""Python's cyclic garbage collector paused while a start builds long-lived objects.

Why: a full collection walks every tracked object, and CPython runs one each time the objects
created since the last one outnumber a quarter of those that survived it. Loading a catalogue
creates every item at once (7 full collections at 100k items, ~1 s of a 3.3 s load on 2 cores)
and building a network imports a deep-learning stack after those items exist (~0.8 s more for
MiniLM beside 100k items). Nothing built there is garbage, so pausing frees nothing later than it
would have been freed; the collector runs as usual once the outermost pause ends (pauses nest, and
overlap across threads).
"""

from __future__ import annotations

import contextlib
import gc
import threading
from collections.abc import Iterator

_lock = threading.Lock()
_depth = 0
_was_enabled = False


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """No cyclic collection inside the block (usable as a decorator); the collector's state before
    the outermost pause is restored after it."""
    global _depth, _was_enabled
    with _lock:
        if _depth == 0:
            _was_enabled = gc.isenabled()
            gc.disable()
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0 and _was_enabled:
                gc.enable()
