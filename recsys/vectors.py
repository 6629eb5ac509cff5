"""Unit vectors, made one way everywhere: every score in the product is a cosine, the inner product
of unit vectors, and an item or query without a medium is a zero vector that must stay zero (not
NaN) through every normalisation."""

from __future__ import annotations

import numpy as np


def unit_vectors(x: np.ndarray, in_place: bool = False) -> np.ndarray:
    """``x`` (one vector, or rows of them) scaled to unit length along its last axis, as float32; a
    zero vector stays zero. ``in_place`` writes into ``x`` when it already is a float32 array (a
    million rows need no second copy)."""
    x = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=-1, keepdims=True)
    out = x if in_place else None
    if norms.all():  # the usual case, in one pass: the same values as the masked division below
        return np.divide(x, norms, out=out)
    return np.divide(x, norms, out=np.zeros_like(x) if out is None else out, where=norms > 0)
