"""Float16 vectors gathered as float32 where they are scored.

Large catalogues keep their vectors in float16 (the engine past 20k items, the embedded store's
segments): half the memory and disk. Scoring them needs float32, and numpy converts float16 with
a scalar loop, so every gather of candidate rows goes through :func:`rows_float32`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def rows_float32(matrix: np.ndarray, rows: np.ndarray | Sequence[int]) -> np.ndarray:
    """``matrix[rows]`` as a float32 array of its own.

    ``np.take`` gathers rows of a memory map in half the time of fancy indexing: 500 random rows
    of 1M x 1280 float16, gathered and converted, 0.36 against 0.69 ms (median of 2,000, 2 cores,
    pages in memory). float16 is converted by torch, whose conversion uses the CPU's vector
    instructions where numpy's is a scalar loop: 0.21 against 0.78 ms for 400 x 1280 values on
    2 cores, the same bits, also in a search thread (:func:`recsys.threads.run_side_by_side`).
    """
    gathered = np.asarray(np.take(matrix, np.asarray(rows, dtype=np.intp), axis=0))  # a copy of its own, C-ordered
    if gathered.dtype != np.float16:
        return gathered.astype(np.float32, copy=False)
    import torch

    return torch.from_numpy(gathered).float().numpy()
