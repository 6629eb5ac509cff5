"""The synthetic catalogue generator: deterministic, chunk-independent, clustered, fit to real stats."""

from __future__ import annotations

import numpy as np

from recsys.store.synthetic import fit_field_stats, synthetic_arrays, synthetic_collection

FIELDS = {"text": 32, "image": 48}


def test_chunks_are_deterministic_and_number_items_contiguously():
    whole = synthetic_arrays(900, FIELDS, n_categories=12, seed=4)
    parts = list(synthetic_collection(900, FIELDS, 12, 4, chunk_size=300))
    assert [len(p.ids) for p in parts] == [300, 300, 300]
    assert whole.ids[:3] == ["item000", "item001", "item002"]
    assert sum((p.ids for p in parts), []) == whole.ids
    # each chunk is seeded by (seed, chunk number): the same call gives the same items
    again = list(synthetic_collection(900, FIELDS, 12, 4, chunk_size=300))
    for a, b in zip(parts, again, strict=True):
        assert a.categories == b.categories
        np.testing.assert_array_equal(a.vectors["image"], b.vectors["image"])


def test_vectors_are_unit_clustered_and_categories_form_a_tree():
    data = synthetic_arrays(3000, FIELDS, n_categories=16, seed=1, missing={"image": 0.25})
    text = data.vectors["text"]
    np.testing.assert_allclose(np.linalg.norm(text, axis=1), 1, atol=1e-5)
    missing = ~np.any(data.vectors["image"] != 0, axis=1)
    assert 0.2 < missing.mean() < 0.3
    sims = text[:200] @ text.T
    nearest = np.sort(sims, axis=1)[:, -2]  # the closest other item
    assert nearest.mean() > 0.5 > abs(np.median(sims))  # clustered, not uniform on the sphere
    tops = {c.split("/")[0] for c in data.categories}
    assert len(set(data.categories)) > len(tops) > 1 and all("/" in c for c in data.categories)


def test_fitted_stats_reproduce_a_catalogue_s_geometry():
    real = synthetic_arrays(2000, {"text": 32}, n_categories=5, seed=9, n_clusters=6).vectors["text"]
    stats = fit_field_stats(real, n_components=6, rank=4, seed=0)
    assert stats.dim == 32 and np.isclose(stats.weights.sum(), 1)
    fake = synthetic_arrays(2000, {"text": 32}, n_categories=5, seed=2, stats={"text": stats}).vectors["text"]
    # same mean direction and similar spread of pairwise similarities as the data it was fitted on
    assert float(real.mean(0) @ fake.mean(0)) / (np.linalg.norm(real.mean(0)) * np.linalg.norm(fake.mean(0))) > 0.9
    assert abs(np.mean(real[:300] @ real.T) - np.mean(fake[:300] @ fake.T)) < 0.05
