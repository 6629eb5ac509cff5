"""Every store backend behind one fixture, so the contract suite runs the same tests on each."""

from __future__ import annotations

import itertools

import pytest

from recsys.store import open_store

BACKENDS = ["memory", "local-exact", "local-ann", "milvus-lite"]
_collections = itertools.count()


class Opener:
    """Opens (and re-opens) one store location of a backend; closes what it opened."""

    def __init__(self, backend: str, tmp_path) -> None:
        self.backend = backend
        self.opened = []
        if backend == "memory":
            self.uri, self.options = "memory://", {}
        elif backend == "local-exact":
            self.uri, self.options = str(tmp_path / "store"), {"dtype": "float32"}
        elif backend == "local-ann":
            # every field goes ANN from the first item, and filters go through the ANN selector
            self.uri, self.options = f"local://{tmp_path / 'store'}", {"exact_below": 1, "exact_filter_below": 0}
        else:
            self.uri, self.options = f"milvus-lite://{tmp_path / 'm.db'}?collection=c{next(_collections)}", {}

    @property
    def persistent(self) -> bool:
        return self.backend != "memory"

    def __call__(self, fields=None, **options):
        store = open_store(self.uri, fields, **{**self.options, **options})
        self.opened.append(store)
        return store

    def close_all(self) -> None:
        for s in self.opened:
            s.close()


@pytest.fixture(params=BACKENDS)
def opener(request, tmp_path):
    o = Opener(request.param, tmp_path)
    yield o
    o.close_all()
