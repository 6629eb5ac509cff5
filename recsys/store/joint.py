"""The joint field: every item's fields, concatenated and reduced by PCA, searched as one vector.

Why it exists: ``early`` and ``late`` fusion score an item with a weighted sum of inner products,
one per item field, so the fused score is one inner product between the item's concatenated
fields and the concatenation of the (weighted) query vectors reaching each field. Searching each
field on its own and re-scoring the union of their top candidates misses items that are good on
every field but best on none: at 1M synthetic items (validation queries, 384 + 1280 + 384-d) the
union of each field's exact top 100 held 0.71 (early) / 0.57 (late) of the fused top 10, and even
the top 400 only 0.94. One search over the concatenation finds the fused top directly. The
concatenation is 2,048-d and its scan would cost as much as the three fields' together, so it is
reduced to :data:`JOINT_DIMS` principal components, and the engine re-scores what it returns
exactly (candidate counts in :mod:`recsys.recommend.engine`). On the same validation queries, the exact
fused top 10 within the top 400 by the 512-d projection: early 0.975, late 1.0 (256-d: 0.925 /
0.988; the full 2,048-d linear score: 0.988 / 1.0, early's item norm being outside any linear
score).

The projection is fitted once per store on a sample of the catalogue and kept beside it (a new
projection changes every item's version, so the store re-indexes them all); items added later are
projected with it, so incremental updates stay incremental.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from recsys.atomic import write_npz
from recsys.errors import RecsysError

#: Store field name of the joint vectors.
JOINT_FIELD = "joint"
#: Principal components kept (fewer when the fields have fewer dimensions or the sample fewer rows).
JOINT_DIMS = 512
#: Items the projection is fitted on: a covariance of 50k rows is stable to well under the gaps
#: between neighbours' scores, and the fit takes seconds.
FIT_SAMPLE = 50_000
_CHUNK = 20_000


@dataclass(frozen=True)
class JointProjection:
    """``z = concat(fields) @ components``; a query's coefficients map to ``components.T @ c``, so
    ``<z, query>`` is the item's inner product with the coefficients, less what lies outside the
    kept components.

    The components are those of the centred data (its variation between items, which decides the
    ranking), but items are projected uncentred: the two differ by a per-query constant, and the
    uncentred vectors keep the geometry an inverted-file index clusters well. Stored centred, the
    joint IVF search held 0.85 (early) / 0.93 (late) of the fused top 10 on a real 25k catalogue
    where the projection itself held 1.0."""

    fields: tuple[tuple[str, int], ...]
    components: np.ndarray  # (sum of field dims, dims)

    @property
    def dims(self) -> int:
        return int(self.components.shape[1])

    @property
    def id(self) -> str:
        h = hashlib.sha256(repr(self.fields).encode())
        h.update(np.ascontiguousarray(self.components, dtype=np.float32).tobytes())
        return h.hexdigest()[:12]

    @classmethod
    def fit(
        cls, vectors: Mapping[str, np.ndarray], dims: int = JOINT_DIMS, sample: int = FIT_SAMPLE, seed: int = 0
    ) -> JointProjection:
        """PCA of the concatenated ``vectors`` (field name -> one row per item) over a fixed sample."""
        fields = tuple(sorted((name, int(mat.shape[1])) for name, mat in vectors.items()))
        n = _rows(vectors)
        if n == 0:
            raise RecsysError("cannot fit the joint projection on an empty catalogue")
        rows = np.arange(n) if n <= sample else np.sort(np.random.default_rng(seed).choice(n, sample, replace=False))
        x = _concat(vectors, fields, rows)
        x -= x.mean(axis=0)
        cov = (x.T @ x) / len(x)
        values, vecs = np.linalg.eigh(cov.astype(np.float64))
        keep = min(dims, x.shape[1])
        order = np.argsort(values)[::-1][:keep]
        components = vecs[:, order]
        # Fix each component's sign so the same data always gives the same projection (and id).
        components *= np.where(components[np.abs(components).argmax(axis=0), np.arange(keep)] < 0, -1.0, 1.0)
        return cls(fields, components.astype(np.float32))

    def items(self, vectors: Mapping[str, np.ndarray], rows: np.ndarray | None = None) -> np.ndarray:
        """Joint vectors of ``rows`` (default: every row) of ``vectors``, in chunks."""
        self._check(vectors)
        rows = np.arange(_rows(vectors)) if rows is None else np.asarray(rows, dtype=np.int64)
        out = np.empty((len(rows), self.dims), dtype=np.float32)
        for a in range(0, len(rows), _CHUNK):
            out[a : a + _CHUNK] = _concat(vectors, self.fields, rows[a : a + _CHUNK]) @ self.components
        return out

    def query(self, coefficients: Mapping[str, np.ndarray]) -> np.ndarray:
        """The joint query for per-field coefficient vectors (fields left out count as zero)."""
        unknown = set(coefficients) - {name for name, _ in self.fields}
        if unknown:
            raise RecsysError(f"the joint projection has no field {sorted(unknown)[0]!r}")
        parts = [
            np.asarray(coefficients[name], dtype=np.float32) if name in coefficients else np.zeros(dim, np.float32)
            for name, dim in self.fields
        ]
        return np.concatenate(parts) @ self.components

    def save(self, path: str | os.PathLike[str]) -> Path:
        names = np.array([name for name, _ in self.fields])
        dims = np.array([dim for _, dim in self.fields], dtype=np.int64)
        return write_npz(path, names=names, dims=dims, components=self.components)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> JointProjection:
        try:
            with np.load(path, allow_pickle=False) as z:
                fields = tuple((str(n), int(d)) for n, d in zip(z["names"], z["dims"], strict=True))
                components = z["components"].astype(np.float32)
        except (OSError, ValueError, KeyError, EOFError) as exc:
            raise RecsysError(f"unreadable joint projection {path}: {exc}") from exc
        total = sum(d for _, d in fields)
        if components.ndim != 2 or components.shape[0] != total or not np.isfinite(components).all():
            raise RecsysError(f"joint projection {path} has inconsistent shapes or values")
        return cls(fields, components)

    def matches(self, vectors: Mapping[str, np.ndarray]) -> bool:
        """Whether these are the fields (names and dims) the projection was fitted on."""
        return self.fields == tuple(sorted((name, int(mat.shape[1])) for name, mat in vectors.items()))

    def _check(self, vectors: Mapping[str, np.ndarray]) -> None:
        if not self.matches(vectors):
            raise RecsysError("the joint projection was fitted on other fields; delete it to refit")


def _rows(vectors: Mapping[str, np.ndarray]) -> int:
    sizes = {len(mat) for mat in vectors.values()}
    if len(sizes) > 1:
        raise RecsysError("every field needs one row per item")
    return sizes.pop() if sizes else 0


def _concat(vectors: Mapping[str, np.ndarray], fields: tuple[tuple[str, int], ...], rows: np.ndarray) -> np.ndarray:
    return np.concatenate([np.asarray(vectors[name][rows], dtype=np.float32) for name, _ in fields], axis=1)
