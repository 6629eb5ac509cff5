"""The top of a list of scores, in one order everywhere: best first, ties to the lower position.

The engine's results, the vector stores' exact searches and the lab's metrics all rank this way, so
the same scores give the same order in each (float noise aside: the engine rounds before ranking).
That holds at the cut too: of several items tied at the k-th place, those at the lowest positions
make it, not those a partial sort happened to leave there, so the exact engine and its candidate
path (candidates in catalogue order) keep the same one of two identical items.
"""

from __future__ import annotations

import numpy as np


def top_k(scores: np.ndarray, k: int, cut_by_position: bool = True) -> np.ndarray:
    """Positions of the ``k`` highest ``scores`` along the last axis (per row of a 2-D array), best
    first, ties to the lower position; all of them when there are fewer than ``k``.

    ``cut_by_position=False`` leaves the items tied at the k-th place as the partial sort chose
    them (one pass less): the lab ranks items visited in a seeded random order, where that choice
    is already a random one, and its shipped figures were made so."""
    scores = np.asarray(scores)
    n = scores.shape[-1]
    k = max(0, min(k, n))
    if k == 0:
        return np.zeros((*scores.shape[:-1], 0), dtype=np.int64)
    rows = scores.reshape(-1, n)
    if k < n:
        part = np.argpartition(-rows, k - 1, axis=1)[:, :k]
        if cut_by_position:
            _cut_by_position(rows, part)
        part.sort(axis=1)  # ascending positions, so the stable sort below breaks ties by position
    else:
        part = np.tile(np.arange(n), (len(rows), 1))
    order = np.argsort(-np.take_along_axis(rows, part, axis=1), axis=1, kind="stable")
    return np.take_along_axis(part, order, axis=1).reshape(*scores.shape[:-1], k)


def _cut_by_position(rows: np.ndarray, part: np.ndarray) -> None:
    """In place: in a row where more items hold the k-th best score than the partial sort's top
    ``part`` kept, the top takes those at the lowest positions."""
    kept = np.take_along_axis(rows, part, axis=1)
    cut = kept.min(axis=1)
    held = (rows == cut[:, None]).sum(axis=1)
    for r in np.flatnonzero(held > (kept == cut[:, None]).sum(axis=1)):
        above = np.flatnonzero(rows[r] > cut[r])
        part[r] = np.concatenate([above, np.flatnonzero(rows[r] == cut[r])[: part.shape[1] - len(above)]])
