"""Maps: shape, disk cache keyed by input hash, the sampled path, placing a query, vectors per source."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from recsys.errors import InputError
from recsys.maps import (
    FUSED,
    METRICS,
    MapMemo,
    MapVectors,
    ProjectionParams,
    SearchSpace,
    catalogue_vectors,
    input_hash,
    map_key,
    nearest,
    project,
    query_vector,
    stratified_sample,
)
from recsys.recommend.query import Query


def clusters(n_per: int = 20, d: int = 16, seed: int = 0) -> np.ndarray:
    """Two well separated Gaussian blobs."""
    rng = np.random.default_rng(seed)
    a = rng.normal(0, 0.1, (n_per, d)) + 3.0 * np.eye(d)[0]
    b = rng.normal(0, 0.1, (n_per, d)) - 3.0 * np.eye(d)[0]
    return np.vstack([a, b]).astype(np.float32)


@pytest.fixture
def engine(fake_engine):
    return fake_engine


def test_map_separates_clusters_and_places_a_query_in_its_cluster(tmp_path):
    x = clusters()
    proj = project(x, ProjectionParams(n_neighbors=5, metric="euclidean"), cache_dir=tmp_path)
    assert proj.coords.shape == (40, 2)
    ca, cb = proj.coords[:20].mean(0), proj.coords[20:].mean(0)
    q = proj.transform(x[:1] + 0.01)[0]
    assert np.linalg.norm(q - ca) < np.linalg.norm(q - cb)


def test_cache_hit_on_same_inputs_and_miss_on_changed_parameters(tmp_path):
    x = clusters()
    params = ProjectionParams(n_neighbors=5)
    first = project(x, params, cache_dir=tmp_path)
    files = sorted(tmp_path.iterdir())
    assert len(files) == 1 and first.key in files[0].name
    mtime = files[0].stat().st_mtime_ns
    again = project(x, params, cache_dir=tmp_path)
    assert np.array_equal(first.coords, again.coords)
    assert files[0].stat().st_mtime_ns == mtime  # read, not refitted
    project(x, ProjectionParams(n_neighbors=6), cache_dir=tmp_path)
    project(x[:-1], params, cache_dir=tmp_path)
    assert len(list(tmp_path.glob("map-*.npz"))) == 3
    assert not list(tmp_path.glob(".*tmp"))  # atomic writes leave no temporaries


def test_corrupt_cache_entry_is_refitted(tmp_path):
    x = clusters()
    params = ProjectionParams(n_neighbors=5)
    (tmp_path / f"map-{input_hash(x, params)}.npz").write_bytes(b"garbage")
    assert project(x, params, cache_dir=tmp_path).coords.shape == (40, 2)


def test_hash_depends_on_values_and_parameters():
    x = clusters()
    h = input_hash(x, ProjectionParams())
    assert h == input_hash(x.copy(), ProjectionParams())
    assert h != input_hash(x + 1e-3, ProjectionParams())
    assert h != input_hash(x, ProjectionParams(min_dist=0.5))


@pytest.mark.parametrize("kwargs", [{"n_neighbors": 1}, {"min_dist": 2.0}, {"metric": "bogus"}, {"fit_size": 3}])
def test_bad_parameters_are_input_errors(kwargs):
    with pytest.raises(InputError):
        ProjectionParams(**kwargs)


def test_too_few_points_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match="at least 4"):
        project(np.ones((3, 4), dtype=np.float32), cache_dir=tmp_path)


def test_vectors_per_source_cover_the_items_that_have_the_modality(engine):
    cat = engine.catalogue
    vecs, idx = catalogue_vectors(engine, "image")
    assert [cat.items[i].id for i in idx] == ["apple", "lime", "car", "taxi", "frog"]  # note has no image
    fused, fidx = catalogue_vectors(engine, FUSED)
    assert len(fidx) == len(cat.items)
    assert np.allclose(np.linalg.norm(fused, axis=1), 1.0, atol=1e-5)
    text_only, _ = catalogue_vectors(engine, FUSED, {"text": 1.0, "image": 0.0, "audio": 0.0})
    assert fused.shape == (6, 64 + 3 + 16)  # spaces of different dimension are concatenated
    assert text_only.shape == (6, 64)  # a weight of 0 drops the modality from the map
    with pytest.raises(InputError):
        catalogue_vectors(engine, FUSED, {"text": 0.0, "image": 0.0, "audio": 0.0})


def test_map_vectors_gathered_in_blocks_equal_the_whole_catalogue_at_once(engine, monkeypatch):
    from recsys import maps

    weights = {"text": 1.0, "image": 0.5, "audio": 2.0}
    whole = {src: catalogue_vectors(engine, src, weights) for src in (FUSED, "image", "text")}
    monkeypatch.setattr(maps, "GATHER_ROWS", 2)  # 6 items: blocks of 2, and a modality some items lack
    for src, (vecs, idx) in whole.items():
        blocked, blocked_idx = catalogue_vectors(engine, src, weights)
        np.testing.assert_array_equal(blocked_idx, idx)
        np.testing.assert_array_equal(blocked, vecs)

    # the fused map by hand: per space the weighted sum of unit vectors (0 where an item lacks the
    # modality), each space normalised, the spaces side by side, normalised again
    def unit(x):
        n = np.linalg.norm(x, axis=1, keepdims=True)
        return np.where(n > 0, x / np.where(n > 0, n, 1), 0)

    spaces: dict[int, np.ndarray] = {}
    for m, w in weights.items():
        v, present = engine.item_vectors(m)
        part = unit(np.asarray(v, dtype=np.float64)) * np.asarray(present)[:, None] * w
        spaces[part.shape[1]] = spaces.get(part.shape[1], 0) + part
    expected = unit(np.concatenate([unit(spaces[d]) for d in sorted(spaces)], axis=1))
    np.testing.assert_allclose(whole[FUSED][0], expected[whole[FUSED][1]], atol=1e-6)


class _HalfEngine:
    """Item vectors kept in float16, as the engine keeps them past 20,000 items."""

    item_modalities = ["text", "image"]

    def __init__(self) -> None:
        rng = np.random.default_rng(3)
        self.vectors = {
            "text": rng.normal(size=(9, 8)).astype(np.float16),
            "image": rng.normal(size=(9, 5)).astype(np.float16),
        }
        self.vectors["image"][4] = 0  # a zero row: it stays zero rather than dividing by 0
        self.present = {"text": np.arange(9) != 2, "image": np.ones(9, dtype=bool)}

    def item_vectors(self, modality):
        return self.vectors[modality], self.present[modality]


def test_map_vectors_of_half_precision_items_are_the_float_unit_vectors(monkeypatch):
    from recsys import maps

    monkeypatch.setattr(maps, "GATHER_ROWS", 4)
    engine = _HalfEngine()
    image, idx = catalogue_vectors(engine, "image")
    exact = engine.vectors["image"].astype(np.float64)
    norms = np.linalg.norm(exact, axis=1, keepdims=True)
    expected = np.where(norms > 0, exact / np.where(norms > 0, norms, 1), 0)
    assert image.dtype == np.float32 and np.array_equal(idx, np.arange(9))
    np.testing.assert_allclose(image, expected, atol=1e-6)
    assert not image[4].any()
    fused, _ = catalogue_vectors(engine, FUSED, {"text": 1.0, "image": 0.5})
    assert fused.shape == (9, 13) and fused.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(fused, axis=1), 1.0, atol=1e-6)
    # spaces side by side, narrowest first: item 2 lacks text, item 4's image vector is zero
    assert not fused[2, 5:].any() and not fused[4, :5].any()


def test_query_vector_matches_the_map_layout(engine):
    fused, _ = catalogue_vectors(engine, FUSED)
    q = query_vector(engine, Query(text="a red apple"), FUSED)
    assert q.shape == (fused.shape[1],)
    assert int(np.argmax(fused @ q)) == engine.catalogue.index_of("apple")
    assert query_vector(engine, Query(text="a red apple"), "image") is None  # no image side, not aligned
    assert query_vector(engine, Query(likes=("car",)), "image") is not None


def test_aligned_spaces_share_one_block_and_queries_cross_over(aligned_fake_engine):
    engine = aligned_fake_engine
    fused, _ = catalogue_vectors(engine, FUSED)
    assert fused.shape == (6, 64 + 16)  # text and aligned images in one 64-d block, audio apart
    image_vecs, idx = catalogue_vectors(engine, "image")
    q = query_vector(engine, Query(text="blue"), "image")  # a text query lands on the image map
    assert q is not None
    assert engine.catalogue.items[idx[int(np.argmax(image_vecs @ q))]].id == "car"


SAMPLED = ProjectionParams(n_neighbors=10, metric="cosine", fit_size=80)


def test_map_vectors_gather_any_rows_as_the_whole_map_holds_them(engine, monkeypatch):
    from recsys import maps

    monkeypatch.setattr(maps, "GATHER_ROWS", 2)
    for source in (FUSED, "image", "text"):
        vectors = MapVectors(engine, source, {"text": 1.0, "image": 0.5, "audio": 2.0})
        whole = vectors.all()
        assert vectors.shape == whole.shape
        pick = np.array([4, 0, 2, 3])
        np.testing.assert_array_equal(vectors.rows(pick), whole[pick])


def test_a_named_engine_keys_its_maps_by_its_matrices_and_reads_one_back_gathering_its_fitted_items_only(
    engine, tmp_path, monkeypatch
):
    params = ProjectionParams(n_neighbors=3, fit_size=5)  # 6 items: 5 fitted, 1 placed
    assert engine.matrices_key  # built by build_engine, which names them
    monkeypatch.setattr(engine, "matrices_key", None)
    unnamed = MapVectors(engine, FUSED)
    assert unnamed.key(params) == input_hash(unnamed.all(), params)  # an unnamed engine: the vectors themselves
    monkeypatch.setattr(engine, "matrices_key", "matrices-1")
    first = project(MapVectors(engine, FUSED), params, cache_dir=tmp_path)
    gathered = []
    rows = MapVectors.rows
    monkeypatch.setattr(MapVectors, "rows", lambda self, where: gathered.append(len(where)) or rows(self, where))
    monkeypatch.setattr(MapVectors, "all", lambda self: pytest.fail("a cached map gathered every item's vector"))
    again = project(MapVectors(engine, FUSED), params, cache_dir=tmp_path)
    assert gathered == [5]
    np.testing.assert_array_equal(again.coords, first.coords)
    np.testing.assert_array_equal(again.reference, first.reference)
    keys = {
        MapVectors(engine, FUSED).key(params),
        MapVectors(engine, "text").key(params),
        MapVectors(engine, FUSED, {"text": 1.0, "image": 0.5}).key(params),
        MapVectors(engine, FUSED).key(params, ["a"] * 6),
        MapVectors(engine, FUSED).key(ProjectionParams(n_neighbors=4, fit_size=5)),
    }
    monkeypatch.setattr(engine, "matrices_key", "matrices-2")
    keys.add(MapVectors(engine, FUSED).key(params))
    assert len(keys) == 6 and first.key in keys


def big_clusters(n_per: int = 400, d: int = 96) -> np.ndarray:
    """Two blobs with more points than ``SAMPLED.fit_size`` and more dimensions than the placement keeps."""
    return clusters(n_per=n_per, d=d, seed=1)


def test_sampled_map_places_every_item_beside_its_cluster(tmp_path):
    x = big_clusters()
    labels = ["a"] * 400 + ["b"] * 400
    proj = project(x, SAMPLED, cache_dir=tmp_path, groups=labels)
    assert proj.coords.shape == (800, 2) and np.isfinite(proj.coords).all()
    assert len(proj.fitted) == 80 and proj.space.basis is not None  # UMAP saw a sample; the rest were placed
    ca, cb = proj.coords[:400].mean(0), proj.coords[400:].mean(0)
    da = np.linalg.norm(proj.coords - ca, axis=1)
    db = np.linalg.norm(proj.coords - cb, axis=1)
    assert (da[:400] < db[:400]).all() and (db[400:] < da[400:]).all()
    q = proj.transform(x[400:401] + 0.01)[0]  # a query from cluster b
    assert np.linalg.norm(q - cb) < np.linalg.norm(q - ca)


def test_sampled_map_cache_hit_is_identical_and_places_queries_the_same(tmp_path):
    x = big_clusters()
    first = project(x, SAMPLED, cache_dir=tmp_path)
    (entry,) = tmp_path.glob("map-*.npz")
    mtime = entry.stat().st_mtime_ns
    again = project(x, SAMPLED, cache_dir=tmp_path)
    assert np.array_equal(first.coords, again.coords)
    assert np.array_equal(first.fitted, again.fitted)
    assert entry.stat().st_mtime_ns == mtime  # read, not recomputed
    q = x[:3] + 0.02
    assert np.array_equal(first.transform(q), again.transform(q))


def test_a_map_placed_in_part_places_the_rest_when_asked_as_a_whole_map_does(tmp_path):
    x = big_clusters()
    whole = project(x, SAMPLED, cache_dir=tmp_path / "whole")
    drawn = np.arange(0, 800, 3)
    part = project(x, SAMPLED, cache_dir=tmp_path / "part", placed=drawn)
    assert part.key == whole.key
    placed = np.zeros(800, dtype=bool)
    placed[drawn] = placed[part.fitted] = True
    assert np.array_equal(~np.isnan(part.coords).any(axis=1), placed)  # only the drawn and fitted items
    np.testing.assert_allclose(part.coords[placed], whole.coords[placed], atol=1e-5)
    gathered = []

    def rows_of(positions):
        gathered.append(positions.copy())
        return x[positions]

    asked = np.array([1, 0, 5, 1, 799])  # unplaced (1, 5, 799; 1 twice) beside placed ones
    np.testing.assert_allclose(part.coords_at(asked, rows_of), whole.coords[asked], atol=1e-5)
    assert [g.tolist() for g in gathered] == [sorted(set(asked.tolist()) - set(np.flatnonzero(placed).tolist()))]
    part.coords_at(asked, rows_of)
    assert len(gathered) == 1  # placed once, then kept
    # the cache keeps what project placed; reopened, only the fitted items' vectors are gathered
    again = project(_Counted(x, gathered), SAMPLED, cache_dir=tmp_path / "part", placed=drawn)
    assert len(gathered) == 2 and np.array_equal(np.sort(gathered[-1]), np.sort(again.fitted))
    np.testing.assert_array_equal(np.isnan(again.coords[:, 0]), ~placed)
    # asked for every item, a partly placed cache entry is completed and written back
    full = project(x, SAMPLED, cache_dir=tmp_path / "part")
    assert np.isfinite(full.coords).all()
    np.testing.assert_allclose(full.coords, whole.coords, atol=1e-5)
    assert np.isfinite(project(_Counted(x, []), SAMPLED, cache_dir=tmp_path / "part", placed=drawn).coords).all()


class _Counted(MapVectors):
    """Vectors of an array that record each gather, as a named engine's map vectors (no hash of them all)."""

    def __init__(self, x: np.ndarray, gathered: list) -> None:
        self.x, self.gathered = x, gathered

    @property
    def shape(self) -> tuple[int, int]:
        return self.x.shape

    def rows(self, positions: np.ndarray) -> np.ndarray:
        self.gathered.append(np.asarray(positions).copy())
        return self.x[positions]

    def all(self) -> np.ndarray:
        raise AssertionError("a map read from the cache gathered every item's vector")

    def key(self, params: ProjectionParams, groups=None) -> str:
        return input_hash(self.x, params, groups)


@pytest.mark.parametrize(
    "damage", ["infinite", "half", "fitted"], ids=["an infinite value", "half a point", "a fitted item unplaced"]
)
def test_a_map_cache_entry_with_impossible_coordinates_is_computed_again(tmp_path, damage):
    from recsys.cachefile import save_npz
    from recsys.maps import map_path

    x = big_clusters(n_per=60)
    first = project(x, SAMPLED, cache_dir=tmp_path)
    path = map_path(tmp_path, first.key)
    with np.load(path) as npz:
        arrays = {name: npz[name] for name in npz.files}
    coords = arrays["coords"].copy()
    row = int(first.fitted[0]) if damage == "fitted" else int(np.setdiff1d(np.arange(120), first.fitted)[0])
    coords[row] = [np.inf, 0.0] if damage == "infinite" else [0.0, np.nan] if damage == "half" else [np.nan, np.nan]
    save_npz(path, what="test", **{**arrays, "coords": coords})
    again = project(x, SAMPLED, cache_dir=tmp_path)
    assert np.isfinite(again.coords).all()
    np.testing.assert_allclose(again.coords, first.coords, atol=1e-5)


def test_strata_change_the_cache_key_and_must_match_the_rows(tmp_path):
    x = big_clusters(n_per=60)
    assert input_hash(x, SAMPLED, ["a"] * 120) != input_hash(x, SAMPLED, ["a"] * 60 + ["b"] * 60)
    assert input_hash(x, SAMPLED) != input_hash(x, SAMPLED, ["a"] * 120)
    with pytest.raises(InputError, match="group label"):
        project(x, SAMPLED, groups=["a"] * 5)


def test_stratified_sample_keeps_every_category_in_proportion():
    groups = ["big"] * 900 + ["mid"] * 95 + ["tiny"] * 5
    picked = stratified_sample(1000, 100, groups, seed=0)
    assert len(picked) == len(set(picked)) == 100 and (np.diff(picked) > 0).all()
    chosen = np.asarray(groups)[picked]
    assert (chosen == "tiny").sum() >= 1  # a small category is not lost
    assert 85 <= (chosen == "big").sum() <= 91
    assert np.array_equal(picked, stratified_sample(1000, 100, groups, seed=0))
    assert not np.array_equal(picked, stratified_sample(1000, 100, groups, seed=1))
    assert np.array_equal(stratified_sample(50, 100, None, seed=0), np.arange(50))
    many = stratified_sample(300, 10, [str(i) for i in range(300)], seed=0)  # more categories than slots
    assert len(many) == 10


@pytest.mark.parametrize("metric", METRICS)
def test_nearest_matches_brute_force(metric):
    from scipy.spatial.distance import cdist

    rng = np.random.default_rng(0)
    queries, reference = rng.normal(size=(30, 8)).astype(np.float32), rng.normal(size=(50, 8)).astype(np.float32)
    space = SearchSpace(metric)
    idx, dist = nearest(space(queries), space(reference), 5, metric, chunk=7)
    expected = cdist(queries, reference, {"manhattan": "cityblock"}.get(metric, metric))
    assert np.array_equal(idx, np.argsort(expected, axis=1)[:, :5])
    np.testing.assert_allclose(dist, np.sort(expected, axis=1)[:, :5], rtol=1e-4, atol=1e-4)


def test_a_copy_of_a_fitted_item_lands_on_it(tmp_path):
    x = big_clusters()
    proj = project(x, SAMPLED)
    item = proj.fitted[7]
    assert np.linalg.norm(proj.transform(x[item])[0] - proj.coords[item]) < 0.5


class _Engine:
    """Stands for an engine: the memo keeps weak references to its engines and tells them apart."""


def test_the_map_memo_answers_for_the_same_engine_and_inputs_only():
    memo = MapMemo(size=2)
    a, b = _Engine(), _Engine()
    params = ProjectionParams()
    fused = map_key(FUSED, {"text": 1.0, "image": 0.5}, params)
    memo.put(a, fused, "map of a")
    assert memo.get(a, map_key(FUSED, {"image": 0.5, "text": 1.0}, params)) == "map of a"  # weights in any order
    assert memo.get(a, map_key(FUSED, {"text": 1.0, "image": 0.25}, params)) is None
    assert memo.get(a, map_key(FUSED, {"text": 1.0, "image": 0.5}, ProjectionParams(n_neighbors=5))) is None
    assert memo.get(b, fused) is None  # another engine, same inputs
    # a single modality's map does not depend on the weights
    assert map_key("text", {"text": 1.0}, params) == map_key("text", {"text": 0.2}, params)
    memo.put(a, map_key("text", None, params), "text map")
    memo.get(a, fused)  # used: the text map is now the least recent
    memo.put(b, fused, "map of b")
    assert memo.get(a, map_key("text", None, params)) is None  # evicted beyond size
    assert memo.get(a, fused) == "map of a" and memo.get(b, fused) == "map of b"


def test_the_map_memo_never_hands_a_dead_engines_map_to_a_new_one():
    memo = MapMemo()
    key = map_key("text", None, ProjectionParams())
    engine = _Engine()
    memo.put(engine, key, "old map")
    old_id = id(engine)
    del engine
    newcomer = _Engine()  # CPython hands the freed memory, and so the id, to the next object of its size
    if id(newcomer) != old_id:
        pytest.skip("this interpreter did not reuse the freed object's id")
    assert memo.get(newcomer, key) is None


@pytest.mark.slow
def test_umaps_kernels_are_compiled_once_per_installation_not_per_process(tmp_path):
    """A fresh process's first map leaves numba's compiled UMAP kernels in the cache folder numba
    is given, for the next process to load instead of compiling them again (~5 s of a first map)."""
    import os
    import subprocess
    import sys

    script = (
        "import numpy as np\n"
        "from recsys.maps import ProjectionParams, project\n"
        "x = np.random.default_rng(0).normal(size=(60, 8)).astype(np.float32)\n"
        "project(x, ProjectionParams(n_neighbors=5), cache_dir=None)\n"
    )
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path)}
    repo = Path(__file__).resolve().parents[1]
    subprocess.run([sys.executable, "-c", script], check=True, env=env, cwd=str(repo), timeout=300)
    kernels = {p.name.split(".")[1].rsplit("-", 1)[0] for p in tmp_path.rglob("*.nbi") if "umap" in str(p)}
    assert {"smooth_knn_dist", "compute_membership_strengths"} <= kernels
