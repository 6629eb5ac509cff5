"""Python's cyclic garbage collector paused while a start builds long-lived objects.

Why: a full collection walks every tracked object, and CPython runs one each time the objects
created since the last one outnumber a quarter of those that survived it. Loading a catalogue
creates every item at once (7 full collections at 100k items, ~1 s of a 3.3 s load on 2 cores)
and building a network imports a deep-learning stack after those items exist (~0.8 s more for
MiniLM beside 100k items). Nothing built there is garbage, so pausing frees nothing later than it
would have been freed; the collector runs as usual once the outermost pause ends (pauses nest, and
overlap across threads), with what the pause built already in the oldest generation: the young
collection that would have moved it there walked every object of it first (1.2-1.6 s just after
a 1M-item load); full collections still walk it, and free its garbage.
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
            if _depth == 0:
                gc.freeze()  # everything tracked to the permanent generation, then into the oldest
                gc.unfreeze()
                if _was_enabled:
                    gc.enable()
