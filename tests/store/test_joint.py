"""The joint projection: one search over every field ranks by the fused (linear) score."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from recsys.errors import RecsysError
from recsys.store.joint import JointProjection
from recsys.store.synthetic import synthetic_arrays

FIELDS = {"a": 32, "b": 48}


def _concat(vectors, names=("a", "b")):
    return np.concatenate([vectors[n] for n in names], axis=1)


def test_with_every_component_joint_scores_are_the_concatenated_inner_product():
    rng = np.random.default_rng(0)
    vectors = {"b": rng.standard_normal((300, 24)), "a": rng.standard_normal((300, 16))}
    vectors = {name: mat.astype(np.float32) for name, mat in vectors.items()}
    joint = JointProjection.fit(vectors, dims=40)  # every component: the projection is a rotation
    assert joint.fields == (("a", 16), ("b", 24)) and joint.dims == 40
    coefficients = {"a": rng.standard_normal(16).astype(np.float32), "b": rng.standard_normal(24).astype(np.float32)}
    c = np.concatenate([coefficients["a"], coefficients["b"]])
    got = joint.items(vectors) @ joint.query(coefficients)
    np.testing.assert_allclose(got, _concat(vectors) @ c, atol=1e-3)
    only_a = joint.items(vectors) @ joint.query({"a": coefficients["a"]})  # a field left out counts as zero
    a = coefficients["a"]
    np.testing.assert_allclose(only_a, vectors["a"] @ a, atol=1e-3)
    rows = np.array([5, 2, 299])
    np.testing.assert_allclose(joint.items(vectors, rows), joint.items(vectors)[rows], atol=1e-5)


def test_one_reduced_search_finds_the_fused_top_that_per_field_searches_miss():
    """Items good on both fields but best on neither: with the same budget of 100 candidates, the
    union of each field's top 50 misses a sixth of the fused top 10; the top 100 of the joint
    projection (60 of 80 dimensions) keeps nearly all."""
    data = synthetic_arrays(20_000, FIELDS, n_categories=8, seed=3).vectors
    queries = synthetic_arrays(30, FIELDS, n_categories=8, seed=11).vectors
    joint = JointProjection.fit(data, dims=60)
    z = joint.items(data)
    union_hits = joint_hits = 0
    for i in range(30):
        qa, qb = queries["a"][i], 0.5 * queries["b"][i]
        fused = data["a"] @ qa + data["b"] @ qb
        want = set(np.argsort(-fused)[:10].tolist())
        union = set(np.argsort(-(data["a"] @ qa))[:50].tolist()) | set(np.argsort(-(data["b"] @ qb))[:50].tolist())
        found = set(np.argsort(-(z @ joint.query({"a": qa, "b": qb})))[:100].tolist())
        union_hits += len(want & union)
        joint_hits += len(want & found)
    assert joint_hits / 300 >= 0.95
    assert union_hits / 300 <= 0.9


def test_the_fit_is_deterministic_and_survives_a_round_trip(tmp_path):
    data = synthetic_arrays(2_000, FIELDS, n_categories=4, seed=5).vectors
    joint = JointProjection.fit(data, dims=16, sample=500)
    assert JointProjection.fit(data, dims=16, sample=500).id == joint.id
    assert JointProjection.fit({k: v[::-1] for k, v in data.items()}, dims=16, sample=500).id != joint.id
    loaded = JointProjection.load(joint.save(tmp_path / "j.npz"))
    assert loaded.id == joint.id and loaded.fields == joint.fields and loaded.matches(data)
    np.testing.assert_array_equal(loaded.items(data, np.arange(7)), joint.items(data, np.arange(7)))


def test_wrong_fields_and_empty_catalogues_are_refused():
    data = synthetic_arrays(200, FIELDS, n_categories=2, seed=1).vectors
    joint = JointProjection.fit(data, dims=8)
    with pytest.raises(RecsysError, match="other fields"):
        joint.items({"a": data["a"], "b": data["b"][:, :40]})
    with pytest.raises(RecsysError, match="no field 'c'"):
        joint.query({"c": np.zeros(3, np.float32)})
    with pytest.raises(RecsysError, match="empty"):
        JointProjection.fit({"a": np.zeros((0, 4), np.float32), "b": np.zeros((0, 2), np.float32)})
    with pytest.raises(RecsysError, match="one row per item"):
        JointProjection.fit({"a": data["a"], "b": data["b"][:10]})


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=600))
def test_a_damaged_projection_file_raises_only_recsys_errors(tmp_path, blob):
    path = tmp_path / "j.npz"
    path.write_bytes(blob)
    with pytest.raises(RecsysError):
        JointProjection.load(path)


def test_a_projection_file_with_inconsistent_shapes_is_refused(tmp_path):
    path = tmp_path / "j.npz"
    np.savez(path, names=np.array(["a"]), dims=np.array([4]), components=np.zeros((5, 2)))
    with pytest.raises(RecsysError, match="inconsistent"):
        JointProjection.load(path)
    np.savez(path, names=np.array(["a"]), dims=np.array([4]), components=np.full((4, 2), np.nan))
    with pytest.raises(RecsysError, match="inconsistent"):
        JointProjection.load(path)
