"""Every store backend behind one fixture, so the contract suite runs the same tests on each.

The Milvus backends run with a small ``batch_size`` so that their batched writes, reads and
paged ``versions()`` cross batch boundaries on the suite's 60 items. ``milvus-server`` runs
against the server at ``RECSYS_TEST_MILVUS_URI`` (see tests/milvus_server.py) and is skipped,
with the reason, when none answers.
"""

from __future__ import annotations

import itertools

import pytest
from milvus_server import MILVUS_URI, NEEDS_SERVER, drop_collections, new_collection

from recsys.store import open_store

BACKENDS = ["memory", "local-exact", "local-ann", "milvus-lite", pytest.param("milvus-server", marks=NEEDS_SERVER)]
MILVUS_OPTIONS = {"batch_size": 7}
_collections = itertools.count()


class Opener:
    """Opens (and re-opens) one store location of a backend; closes (and drops) what it opened."""

    def __init__(self, backend: str, tmp_path) -> None:
        self.backend = backend
        self.opened = []
        self.collection = None
        if backend == "memory":
            self.uri, self.options = "memory://", {}
        elif backend == "local-exact":
            self.uri, self.options = str(tmp_path / "store"), {"dtype": "float32"}
        elif backend == "local-ann":
            # every field goes ANN from the first item, and filters go through the ANN selector
            self.uri, self.options = f"local://{tmp_path / 'store'}", {"exact_below": 1, "exact_filter_below": 0}
        elif backend == "milvus-lite":
            self.uri = f"milvus-lite://{tmp_path / 'm.db'}?collection=c{next(_collections)}"
            self.options = MILVUS_OPTIONS
        else:
            self.collection = new_collection()
            self.uri, self.options = f"{MILVUS_URI}?collection={self.collection}", MILVUS_OPTIONS

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
        if self.collection:
            drop_collections(self.collection)


@pytest.fixture(params=BACKENDS)
def opener(request, tmp_path):
    o = Opener(request.param, tmp_path)
    yield o
    o.close_all()
