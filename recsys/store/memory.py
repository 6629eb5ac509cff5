"""``memory://``: an exact store held in RAM, for tests, small demos and as the reference the other
backends are checked against (it is brute force, so it is right by construction)."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence

import numpy as np

from recsys.store.base import Hits, VectorStore, check_effort, check_fields, check_ids
from recsys.store.rows import RowTable, exact_top


class MemoryStore(VectorStore):
    def __init__(self, fields: Mapping[str, int]) -> None:
        self.fields = check_fields(fields)
        self._table = RowTable(self.fields)
        self._vectors = {f: np.zeros((0, d), dtype=np.float32) for f, d in self.fields.items()}
        self._synced: str | None = None

    def upsert(
        self,
        ids: Sequence[str],
        categories: Sequence[str],
        vectors: Mapping[str, np.ndarray],
        versions: Sequence[str] | None = None,
    ) -> None:
        batch = self._check_batch(ids, categories, vectors, versions)
        self._synced = None
        self._table.append(batch.ids, batch.categories, batch.versions, batch.has)
        n = len(batch.ids)
        for f, d in self.fields.items():
            new = batch.vectors.get(f, np.zeros((n, d), dtype=np.float32))
            self._vectors[f] = np.concatenate([self._vectors[f], new])
        self._compact_if_sparse()

    def delete(self, ids: Sequence[str]) -> None:
        if isinstance(ids, str):
            ids = [ids]
        rows = self._table.rows_of(ids)
        if rows.size:
            self._synced = None
        self._table.kill(rows)
        self._compact_if_sparse()

    def synced_to(self) -> str | None:
        return self._synced

    def mark_synced(self, mark: str) -> None:
        self._synced = mark

    def search(
        self,
        field: str,
        query: np.ndarray,
        k: int,
        *,
        category: str | None = None,
        exclude: Collection[str] = (),
        rescore: bool = True,
        effort: float = 1.0,
    ) -> Hits:
        q = self._check_query(field, query, k)
        check_effort(effort)  # exact: every row is scored whatever the effort
        rows = self._table.candidates(field, self._table.selection(category, exclude))
        best, scores = exact_top(q, rows, self._vectors[field][rows], k)
        return Hits(None, scores, rows=best, names=self._table.ids)

    def get(self, field: str, ids: Sequence[str]) -> np.ndarray:
        self._dim(field)
        rows = self._table.rows_exactly(check_ids(ids, what="get"))
        return self._vectors[field][rows].copy()

    def versions(self) -> dict[str, str]:
        return self._table.versions()

    def row_ids(self) -> list[str]:
        return self._table.ids

    def __len__(self) -> int:
        return len(self._table)

    def flush(self) -> None:
        """Nothing to make durable: the store lives and dies with the process."""

    def close(self) -> None:
        """Nothing to release."""

    def _compact_if_sparse(self) -> None:
        """Drop dead rows once they outnumber the live ones, so churn does not grow RAM forever."""
        t = self._table
        if t.n_dead <= max(1024, len(t)):
            return
        keep = np.flatnonzero(t.alive)
        fresh = RowTable(self.fields)
        fresh.append(
            [t.ids[r] for r in keep.tolist()],
            t.categories_of(keep),
            [t.version_of[r] for r in keep.tolist()],
            {f: t.has[f][keep] for f in self.fields},
        )
        self._table = fresh
        self._vectors = {f: v[keep] for f, v in self._vectors.items()}
