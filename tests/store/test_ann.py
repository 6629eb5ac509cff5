"""IVF search under filters: lists are probed by where the filter's rows lie, not by its size alone."""

import dataclasses

import numpy as np
import pytest

from recsys.errors import InputError
from recsys.store import open_store
from recsys.store.ann import AnnParams
from recsys.store.memory import MemoryStore
from recsys.store.synthetic import synthetic_arrays

DIM = 32


def recall(store, exact, queries, category) -> float:
    found = [set(store.search("v", q, 10, category=category).ids) for q in queries]
    truth = [set(exact.search("v", q, 10, category=category).ids) for q in queries]
    return float(np.mean([len(f & t) / len(t) for f, t in zip(found, truth, strict=True)]))


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    data = synthetic_arrays(40_000, {"v": DIM}, n_categories=30, seed=21)
    rng = np.random.default_rng(5)
    # "spread": 10% of the items picked at random, so it does not cluster with the vectors at all
    categories = [f"spread/{c}" if rng.random() < 0.1 else c for c in data.categories]
    store = open_store(tmp_path_factory.mktemp("ann") / "s", {"v": DIM}, exact_below=1_000, exact_filter_below=0)
    store.upsert(data.ids, categories, data.vectors)
    exact = MemoryStore({"v": DIM})
    exact.upsert(data.ids, categories, data.vectors)
    queries = synthetic_arrays(60, {"v": DIM}, n_categories=30, seed=22).vectors["v"]
    return store, exact, queries


@pytest.mark.slow
@pytest.mark.parametrize("category", ["spread", "c01", "c01/s0001", None])
def test_filtered_recall_holds_whether_or_not_the_filter_clusters(stores, category):
    store, exact, queries = stores
    assert recall(store, exact, queries, category) >= 0.95


@pytest.mark.slow
def test_a_clustered_category_probes_fewer_lists_than_a_scattered_one(stores):
    store, _, queries = stores
    index, table = store._indexes["v"], store._table
    params = store.options.ann
    probes = {}
    for category in ("c01", "spread"):
        selection = table.selection(category, ())
        share = table.count("v", selection) / len(table)
        probes[category] = np.mean([index.probe_lists(q[None, :], selection, params)[0].shape[1] for q in queries])
        blind = params.nprobe / share  # what widening by 1 / selectivity would scan
        assert probes[category] >= params.nprobe
        assert probes[category] < blind * 0.9, (category, probes, blind)
    assert probes["c01"] < probes["spread"] * 0.9, probes


def test_filter_probing_is_checked():
    with pytest.raises(InputError, match="filter_probing"):
        AnnParams(filter_probing="sideways")
    assert dataclasses.replace(AnnParams(), filter_probing="widen").filter_probing == "widen"
