"""Candidate retrieval through a vector store, and keeping the store in step with the catalogue.

The engine's exhaustive scoring is the reference: with a store that returns every item, candidate
search must reproduce it exactly (scores and contributions); with few candidates per pair, the
results stay a faithful, explainable subset.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math

import numpy as np
import pandas as pd
import pytest
from fakes import write_square
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from milvus_server import MILVUS_URI, NEEDS_SERVER, drop_collections, new_collection

from recsys.catalogue import Item
from recsys.errors import InputError, RecsysError
from recsys.fusion import SIMILARITIES, STRATEGIES, pair_name
from recsys.media import load_image
from recsys.recommend import retrieval
from recsys.recommend.catalogue_store import attach_store, item_version, joint_projection, sync_store
from recsys.recommend.engine import RecommendationEngine
from recsys.recommend.query import Query, QueryVectors
from recsys.store import open_store
from recsys.store.joint import JOINT_FIELD, JointProjection

QUERIES = [
    Query(text="a green fruit"),
    Query(text="red car", likes=("taxi",)),
    Query(text="a car", dislikes=("car",)),
    Query(likes=("frog",)),
]


def _ranked(engine, query, **kw):
    """(score, id, contributions) rounded past float32 noise; tied items may swap places."""
    return [(round(r.score, 5), r.item.id, {k: round(v, 5) for k, v in r.contributions.items()})
            for r in engine.recommend(query, **kw)]  # fmt: skip


def _same_up_to_ties(got, expected) -> None:
    assert [g[0] for g in got] == [e[0] for e in expected]
    exact = {e[1]: e for e in expected}
    for score, item_id, contributions in got:
        if item_id in exact:
            assert exact[item_id] == (score, item_id, contributions)


def _with_memory_store(engine, candidates: int):
    """The engine on an in-memory store, every category filter searched in the store (these tests
    are about that search; a small category is otherwise scored item by item)."""
    attach_store(engine, search="ann", uri="memory://")
    engine.candidates = candidates
    engine.exact_category_max = 0
    return engine


@pytest.mark.parametrize("strategy", STRATEGIES)
@pytest.mark.parametrize("category", [None, "food", "vehicles/cars"])
@pytest.mark.parametrize("similarity", SIMILARITIES)
def test_candidates_covering_the_catalogue_reproduce_exact_scoring(aligned_fake_engine, strategy, category, similarity):
    """Candidates come from inner-product search; every similarity re-scores them as exact scoring would."""
    engine = aligned_fake_engine
    how = {"strategy": strategy, "k": 4, "category": category, "similarity": similarity}
    expected = [_ranked(engine, q, **how) for q in QUERIES]
    _with_memory_store(engine, candidates=len(engine.catalogue))
    assert engine.uses_candidates
    for q, want in zip(QUERIES, expected, strict=True):
        _same_up_to_ties(_ranked(engine, q, **how), want)


@pytest.mark.parametrize("similarity", SIMILARITIES)
def test_a_small_category_is_scored_item_by_item_without_a_store_search(aligned_fake_engine, monkeypatch, similarity):
    """A filter leaving at most ``exact_category_max`` items gets the exact engine's results (items,
    rrf ranks, scores and contributions to float noise) with no store search; a larger one searches
    the store."""
    engine = aligned_fake_engine
    cases = [(q, s, c) for q in QUERIES for s in STRATEGIES for c in ("food", "/vehicles/", "vehicles/cars")]
    how = {"k": 4, "similarity": similarity}

    def answers(engine, q, s, c):
        results = engine.recommend(q, strategy=s, category=c, **how)
        return [(r.item.id, r.score, r.contributions, r.ranks) for r in results]

    expected = [answers(engine, *case) for case in cases]
    attach_store(engine, search="ann", uri="memory://")
    search = engine.store.search
    monkeypatch.setattr(engine.store, "search", lambda *a, **kw: pytest.fail("a small category searched the store"))
    assert engine.uses_candidates and engine.exact_category_max >= len(engine.catalogue)
    for case, want in zip(cases, expected, strict=True):
        got = answers(engine, *case)
        assert [(i, ranks) for i, _, _, ranks in got] == [(i, ranks) for i, _, _, ranks in want], case
        for (_, score, parts, _), (_, want_score, want_parts, _) in zip(got, want, strict=True):
            assert score == pytest.approx(want_score, abs=1e-6) and parts == pytest.approx(want_parts, abs=1e-6)
    searched = []
    monkeypatch.setattr(engine.store, "search", lambda *a, **kw: searched.append(a[0]) or search(*a, **kw))
    engine.exact_category_max = 1
    results = engine.recommend(Query(text="a green fruit"), strategy="late", k=2, category="food")
    assert searched and results and all(r.item.category.startswith("food") for r in results)


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_candidates_with_a_modality_weighed_zero_reproduce_exact_scoring(aligned_fake_engine, strategy):
    """A pair weighed 0 is not searched (nor, for rrf, rank-estimated) and changes nothing."""
    engine = aligned_fake_engine
    how = {"strategy": strategy, "k": 4, "weights": {"text": 1.0, "image": 0.0}, "category": "food"}
    expected = [_ranked(engine, q, **how) for q in QUERIES]
    _with_memory_store(engine, candidates=len(engine.catalogue))
    for q, want in zip(QUERIES, expected, strict=True):
        _same_up_to_ties(_ranked(engine, q, **how), want)


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_few_candidates_still_explain_and_filter(aligned_fake_engine, tmp_path, strategy):
    engine = _with_memory_store(aligned_fake_engine, candidates=2)
    image = load_image(write_square(tmp_path / "q.png", "green"))
    for query in [*QUERIES, Query(text="green", image=image)]:
        for category in (None, "food"):
            results = engine.recommend(query, strategy=strategy, k=3, category=category)
            assert results
            for r in results:
                assert r.score == pytest.approx(sum(r.contributions.values()), abs=1e-9)
                assert r.item.id not in (*query.likes, *query.dislikes)
                if category:
                    assert r.item.category.startswith(category)


def test_candidate_search_reports_an_empty_category(aligned_fake_engine):
    engine = _with_memory_store(aligned_fake_engine, candidates=3)
    with pytest.raises(InputError, match="no item in category"):
        engine.recommend(Query(text="car"), category="plants")


@pytest.mark.parametrize("backend", ["milvus-lite", pytest.param("milvus-server", marks=NEEDS_SERVER)])
def test_engine_on_milvus_gives_the_exact_engines_results(aligned_fake_engine, tmp_path, backend):
    """End to end on Milvus (Lite, and the test server when one answers): build the store from the
    engine, then every strategy, with and without a category filter, ranks as exact scoring does."""
    engine = aligned_fake_engine
    cases = [(q, s, c) for q in QUERIES for s in STRATEGIES for c in (None, "food", "vehicles/cars")]
    expected = [_ranked(engine, q, strategy=s, k=4, category=c) for q, s, c in cases]
    collection = new_collection()
    base = f"milvus-lite://{tmp_path / 'm.db'}" if backend == "milvus-lite" else MILVUS_URI
    uri = f"{base}?collection={collection}"
    try:
        attach_store(engine, search="ann", uri=uri)
        engine.exact_category_max = 0  # the categories searched on Milvus, not scored item by item
        assert engine.uses_candidates and len(engine.store) == len(engine.catalogue)
        for (q, s, c), want in zip(cases, expected, strict=True):
            _same_up_to_ties(_ranked(engine, q, strategy=s, k=4, category=c), want)
        engine.store.close()
        engine.store = open_store(uri)
        assert sync_store(engine.store, engine) == (0, 0)  # versions read back: nothing to rewrite
    finally:
        engine.store.close()
        if backend == "milvus-server":
            drop_collections(collection)


def test_small_catalogue_needs_no_store_unless_asked(fake_engine):
    assert attach_store(fake_engine, search="auto").store is None
    assert not fake_engine.uses_candidates
    with pytest.raises(RecsysError, match="unknown search mode"):
        attach_store(fake_engine, search="fast")


def _rebuild(root, tmp_path):
    from recsys import pipeline
    from recsys.catalogue import load_catalogue

    config = pipeline.PipelineConfig(
        cache_dir=str(tmp_path / "cache"), image_aligner=None, audio_aligner=None, search="ann",
        store=str(tmp_path / "store"),
    )  # fmt: skip
    return pipeline.build_engine(load_catalogue(root), config)


def test_store_is_updated_item_by_item(tmp_path, patched_encoders):
    from fakes import build_catalogue

    root = build_catalogue(tmp_path / "cat")
    engine = _rebuild(root, tmp_path)
    assert len(engine.store) == 6
    assert sync_store(engine.store, engine) == (0, 0)  # nothing changed: nothing written
    engine.store.close()

    manifest = pd.read_csv(root / "catalogue.csv", keep_default_na=False)
    manifest.loc[manifest.id == "lime", "description"] = "a sour citrus"
    manifest = manifest[manifest.id != "note"]
    write_square(root / "media" / "plum.png", "blue")
    plum = {"id": "plum", "title": "Plum", "description": "a plum", "category": "food/fruit"}
    manifest = pd.concat([manifest, pd.DataFrame([{**plum, "image": "media/plum.png", "audio": ""}])])
    manifest.to_csv(root / "catalogue.csv", index=False)

    from recsys.catalogue import load_catalogue

    store = open_store(tmp_path / "store")
    fresh = _engine_without_store(load_catalogue(root), tmp_path)
    with pytest.raises(RecsysError, match="joint"):  # a store with a joint field needs its projection
        sync_store(store, fresh)
    fresh.joint = engine.joint  # the projection kept beside the store, as attach_store loads it
    written, deleted = sync_store(store, fresh)
    assert (written, deleted) == (2, 1)  # lime changed, plum added; note deleted
    assert set(store.versions()) == {"apple", "lime", "car", "taxi", "frog", "plum"}
    hits = store.search("text", patched_encoders["text"].encode(["a sour citrus"])[0], 1)
    assert hits.ids == ["lime"]


def _engine_without_store(catalogue, tmp_path):
    from recsys import pipeline

    config = pipeline.PipelineConfig(cache_dir=str(tmp_path / "cache"), image_aligner=None, audio_aligner=None)
    return pipeline.build_engine(catalogue, config)


@pytest.mark.slow
def test_demo_answers_the_same_on_the_embedded_store(demo_catalogue, tmp_path):
    """Acceptance: the embedded store (its ANN index forced on) gives the exact engine's top results."""
    from recsys.pipeline import PipelineConfig, build_engine

    engine = build_engine(demo_catalogue, PipelineConfig.layered(demo_catalogue.root))
    queries = [Query(text=t) for t in ("a red apple", "a barking puppy", "a musical instrument", "a boat")]
    queries.append(Query(image=load_image(demo_catalogue.root / "images" / "frog.png")))
    queries.append(Query(text="fruit", likes=("apple_red",)))
    expected = {
        (i, s, c): [r.item.id for r in engine.recommend(q, strategy=s, k=10, category=c)]
        for i, q in enumerate(queries) for s in STRATEGIES for c in (None, "animals")
    }  # fmt: skip
    attach_store(engine, search="ann", uri=str(tmp_path / "store"), exact_below=1)  # the IVF index, not a flat scan
    engine.exact_category_max = 0  # and "animals" searched there too, not scored item by item
    assert all(not spec.startswith("Flat") for spec in engine.store.info()["indexes"].values())
    overlap = []
    for (i, s, c), ids in expected.items():
        got = [r.item.id for r in engine.recommend(queries[i], strategy=s, k=10, category=c)]
        if s != "rrf":
            assert got[:3] == ids[:3], (i, s, c)
        overlap.append(len(set(got) & set(ids)) / len(ids))
    assert np.mean(overlap) >= 0.95


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_half_precision_vectors_of_a_large_catalogue_rank_as_float32(aligned_fake_engine, monkeypatch, strategy):
    """Past HALF_PRECISION_ABOVE items the engine keeps float16 vectors (here forced on the six-item
    catalogue); candidates re-scored from them give float32's ranking, scores within rounding, and
    contributions that still sum to each score."""
    from recsys import pipeline

    engine = aligned_fake_engine
    how = {"strategy": strategy, "k": 4}
    every = {**how, "k": len(engine.catalogue)}
    expected = [{r.item.id: r.score for r in engine.recommend(q, **every)} for q in QUERIES]
    monkeypatch.setattr("recsys.recommend.engine.HALF_PRECISION_ABOVE", 0)
    config = pipeline.PipelineConfig(
        cache_dir=str(engine.catalogue.root.parent / "cache"), image_aligner="fake", audio_aligner=None
    )
    half = _with_memory_store(pipeline.build_engine(engine.catalogue, config), candidates=len(engine.catalogue))
    arrays = [a for ix in half.indexes.values() for a in (ix.native, ix.shared) if a is not None]
    assert arrays and all(a.dtype == np.float16 for a in arrays)
    for q, want in zip(QUERIES, expected, strict=True):
        got = half.recommend(q, **how)
        top = sorted(want.values(), reverse=True)[: len(got)]
        assert np.allclose([r.score for r in got], top, atol=1e-4)  # the same ranking, up to tied items
        for r in got:
            assert r.score == pytest.approx(want[r.item.id], abs=1e-4)
            assert sum(r.contributions.values()) == pytest.approx(r.score, abs=1e-6)


def test_early_and_late_search_each_field_and_the_joint_field_and_rrf_each_pair(aligned_fake_engine, monkeypatch):
    engine = attach_store(aligned_fake_engine, search="ann", uri="memory://")
    assert engine.joint is not None and JOINT_FIELD in engine.store.fields
    searched = []  # (field, effort, k) of each search
    search = engine.store.search

    def recording(field, query, k, **kw):
        searched.append((field, kw["effort"], k))
        return search(field, query, k, **kw)

    monkeypatch.setattr(engine.store, "search", recording)
    query = Query(text="a green fruit", likes=("taxi",))
    for strategy in ("early", "late"):
        searched.clear()
        engine.recommend(query, strategy=strategy, k=3)
        fields = [f for f, _, _ in searched]
        assert fields[-1] == JOINT_FIELD and fields.count(JOINT_FIELD) == 1 and len(set(fields)) > 2
        # beside the joint search, the per-field ones need only the items nearest the query
        assert {(f, e) for f, e, _ in searched} == {
            (f, 1.0 if f == JOINT_FIELD else engine.field_effort) for f in fields
        } and engine.field_effort < 1
    searched.clear()
    engine.recommend(query, strategy="rrf", k=3)
    # one search per pair, no joint one; cross-modal pairs search wider; each returns a deep list
    assert JOINT_FIELD not in {f for f, _, _ in searched} and len(searched) > 2
    assert {e for _, e, _ in searched} == {1.0, engine.cross_effort()} and engine.cross_effort() > 1
    assert {k for _, _, k in searched} == {max(engine.candidates, engine.rank_depth)}
    searched.clear()
    engine.exact_category_max = 0  # a category searched in the store, not scored item by item
    engine.recommend(query, strategy="late", k=3, category="food")  # within a category the same searches
    assert {f for f, _, _ in searched} == set(fields) and fields[-1] == JOINT_FIELD


@pytest.mark.parametrize(
    ("items", "effort", "expected"),
    [(1_000_000, 2.0, 2.0), (250_000, 2.0, 2.0), (100_000, 2.0, 2 * math.sqrt(2.5)), (25_000, 2.0, 2 * math.sqrt(10)),
     (1_000, 2.0, 8.0), (1_000_000, 3.0, 3.0), (25_000, 10.0, 10.0)],
)  # fmt: skip
def test_cross_modal_searches_widen_in_smaller_catalogues(items, effort, expected):
    """Their cost grows as sqrt(n): small catalogues afford the breadth that cross-modal recall needs;
    a larger effort set on the engine is never narrowed."""
    from types import SimpleNamespace

    engine = SimpleNamespace(catalogue=range(items), cross_modal_effort=effort)
    assert RecommendationEngine.cross_effort(engine) == pytest.approx(expected)


def test_the_joint_projection_is_fitted_once_kept_and_refitted_when_damaged(aligned_fake_engine, tmp_path, caplog):
    engine, cache = aligned_fake_engine, tmp_path / "joint-cache"
    attach_store(engine, search="ann", uri=str(tmp_path / "jstore"), cache_dir=cache)
    fitted = engine.joint.id
    kept = list((cache / "stores").glob("joint-*.npz"))
    assert len(kept) == 1 and JointProjection.load(kept[0]).id == fitted
    engine.store.close()
    attach_store(engine, search="ann", uri=str(tmp_path / "jstore"), cache_dir=cache)
    assert engine.joint.id == fitted and sync_store(engine.store, engine) == (0, 0)  # reused: nothing rewritten
    engine.store.close()
    kept[0].write_bytes(b"damaged")
    with caplog.at_level("WARNING"):
        attach_store(engine, search="ann", uri=str(tmp_path / "jstore"), cache_dir=cache)
    assert "refitting the joint projection" in caplog.text
    assert engine.joint.id == fitted and JointProjection.load(kept[0]).id == fitted  # the same sample, the same fit
    engine.store.close()


def test_only_a_catalogue_with_several_fields_gets_a_joint_projection(fake_engine):
    vectors = fake_engine.store_vectors()
    assert len(vectors) > 1 and joint_projection(vectors, None).matches(vectors)
    assert joint_projection({"text": vectors["text"]}, None) is None  # its own search is the fused one


def _random_two_modality_engine(tmp_path, n: int) -> RecommendationEngine:
    """Random text and image vectors (each its own shared-space vector too), so rrf has four pairs."""
    from recsys.catalogue import Catalogue, Item
    from recsys.recommend.engine import ModalityIndex

    rng = np.random.default_rng(3)
    vec = {m: rng.standard_normal((n, 12)).astype(np.float32) for m in ("text", "image")}
    vec = {m: v / np.linalg.norm(v, axis=1, keepdims=True) for m, v in vec.items()}
    indexes = {m: ModalityIndex(m, None, v, np.ones(n, bool), m, shared=v) for m, v in vec.items()}
    items = [Item(f"i{i}", f"i{i}", "", "all", None, None) for i in range(n)]
    return RecommendationEngine(Catalogue(tmp_path, items, [], fingerprint="t"), None, indexes, search="exact")


def test_rrf_ranks_other_pairs_candidates_by_the_pairs_deep_list(tmp_path, monkeypatch):
    """A candidate that other pairs found takes its rank in a pair from that pair's deep list (exact
    here: an exact store and a list as long as the catalogue); what a shallower list lacks is
    estimated from the rank sample, exact only when the sample holds every item."""
    monkeypatch.setattr(retrieval, "RANK_SAMPLE", 64)  # a sample far coarser than the catalogue
    n = 1500
    engine = attach_store(_random_two_modality_engine(tmp_path, n), search="ann", uri="memory://")
    engine.candidates, engine.rank_depth = 10, n
    exact = _random_two_modality_engine(tmp_path, n)
    rng = np.random.default_rng(4)
    vectors = {m: v / np.linalg.norm(v) for m, v in zip(("text", "image"), rng.standard_normal((2, 12)), strict=True)}
    q = QueryVectors(native=vectors, shared=vectors)
    truth = {r.item.id: r.ranks for r in exact.recommend_vectors(q, strategy="rrf", k=n)}
    deep = engine.recommend_vectors(q, strategy="rrf", k=30)
    assert len(deep) == 30 and all(len(r.ranks) == 4 for r in deep)
    assert all(r.ranks == truth[r.item.id] for r in deep)
    engine.rank_depth = engine.candidates
    shallow = engine.recommend_vectors(q, strategy="rrf", k=30)
    assert sum(r.ranks != truth[r.item.id] for r in shallow) > 10
    # what the list lacks comes from the sample: a sample of every item counts it exactly, also
    # above the pair's own candidates, as under Pearson, whose ranking the store's cosine list is not
    monkeypatch.setattr(retrieval, "RANK_SAMPLE", n)
    engine._rank_samples.clear()
    for similarity in ("cosine", "pearson"):
        truth = {r.item.id: r.ranks for r in exact.recommend_vectors(q, strategy="rrf", k=n, similarity=similarity)}
        got = engine.recommend_vectors(q, strategy="rrf", k=30, similarity=similarity)
        assert all(r.ranks == truth[r.item.id] for r in got), similarity


class RoughStore:
    """A store whose unscored hits (``rescore=False``) come as a reduced index's would: in a rough
    order with rough scores, flagged ``rough`` (or, with ``flag=False``, passed off as exact)."""

    def __init__(self, inner, flag: bool) -> None:
        self.inner, self.flag = inner, flag

    def search(self, field, query, k, *, rescore=True, **kwargs):
        from recsys.store.base import Hits

        hits = self.inner.search(field, query, k, rescore=rescore, **kwargs)
        if rescore:
            return hits
        rng = np.random.default_rng(len(hits))
        order = rng.permutation(len(hits))
        noisy = (hits.scores[order] + rng.normal(0.0, 0.05, len(hits))).astype(np.float32)
        rows = None if hits.rows is None else hits.rows[order]
        return Hits([hits.ids[i] for i in order.tolist()], noisy, rough=self.flag, rows=rows)

    def __getattr__(self, name):
        return getattr(self.inner, name)


@pytest.mark.parametrize("flag", [True, False])
def test_rrf_scores_a_rough_list_itself(tmp_path, flag):
    """Hits an index over a field's principal components returns unscored come in a rough order with
    rough scores; flagged, the engine scores the list itself and every rank stays exact (a list as
    long as the catalogue); trusted as they come, the candidates and ranks go wrong."""
    n = 400
    engine = attach_store(_random_two_modality_engine(tmp_path, n), search="ann", uri="memory://")
    engine.store = RoughStore(engine.store, flag)
    engine.candidates, engine.rank_depth = 10, n
    exact = _random_two_modality_engine(tmp_path, n)
    rng = np.random.default_rng(5)
    vectors = {m: v / np.linalg.norm(v) for m, v in zip(("text", "image"), rng.standard_normal((2, 12)), strict=True)}
    q = QueryVectors(native=vectors, shared=vectors)
    for similarity in ("cosine", "euclidean"):
        truth = {r.item.id: r.ranks for r in exact.recommend_vectors(q, strategy="rrf", k=n, similarity=similarity)}
        got = engine.recommend_vectors(q, strategy="rrf", k=20, similarity=similarity)
        assert len(got) == 20
        assert all(r.ranks == truth[r.item.id] for r in got) is flag, similarity


class UnnumberedStore:
    """A store without row numbers, as a server is: hits come by id alone."""

    def __init__(self, inner) -> None:
        self.inner = inner

    def search(self, *args, **kwargs):
        from recsys.store.base import Hits

        hits = self.inner.search(*args, **kwargs)
        return Hits(hits.ids, hits.scores, hits.rough)

    def row_ids(self):
        return None

    def __getattr__(self, name):
        return getattr(self.inner, name)


def test_hits_reach_their_items_through_the_store_row_numbers_as_the_store_changes(tmp_path):
    """The engine maps a store's row numbers onto catalogue rows once, extends the map as the store
    appends rows and builds it again when the store renumbers (compaction): its results are those of
    the lookup by id all along, and a hit the catalogue lacks is refused as by id."""
    n = 300
    numbered = attach_store(_random_two_modality_engine(tmp_path, n), search="ann", uri="memory://")
    numbered.candidates, numbered.rank_depth = 10, 50
    by_id = _random_two_modality_engine(tmp_path, n)
    by_id.store, by_id.search, by_id.candidates, by_id.rank_depth = UnnumberedStore(numbered.store), "ann", 10, 50
    by_id.joint = numbered.joint
    store = numbered.store
    rng = np.random.default_rng(6)

    def same_answers() -> None:
        for _ in range(3):
            pair = rng.standard_normal((2, 12))
            vectors = {m: v / np.linalg.norm(v) for m, v in zip(("text", "image"), pair, strict=True)}
            q = QueryVectors(native=vectors, shared=vectors)
            for strategy in STRATEGIES:
                got = numbered.recommend_vectors(q, strategy=strategy, k=15, exclude=["i3"])
                want = by_id.recommend_vectors(q, strategy=strategy, k=15, exclude=["i3"])
                assert [(r.item.id, r.score, r.ranks) for r in got] == [(r.item.id, r.score, r.ranks) for r in want]

    same_answers()
    first = store.row_ids()
    assert numbered._row_map[0] is first and len(numbered._row_map[1]) == n
    ids = [f"i{i}" for i in range(n)]
    for _ in range(3):  # items replaced: their new rows are appended, the old ones die
        fresh = {f: rng.standard_normal((n, 12)).astype(np.float32) for f in ("text", "image")}
        fresh = {f: v / np.linalg.norm(v, axis=1, keepdims=True) for f, v in fresh.items()}
        store.upsert(ids, ["all"] * n, fresh)
        same_answers()
        assert store.row_ids() is first and len(numbered._row_map[1]) == len(first)
    store.upsert(ids, ["all"] * n, fresh)  # most rows are dead now: the store compacts, numbering anew
    store.delete(["i7"])
    assert store.row_ids() is not first and len(store.row_ids()) == n and len(store) == n - 1
    same_answers()
    assert numbered._row_map[0] is store.row_ids()
    # an item the catalogue lacks, nearest to every query: refused alike both ways
    store.upsert(["stranger"], ["all"], {f: fresh[f][:1] for f in ("text", "image")})
    q = QueryVectors(native={"text": fresh["text"][0]}, shared={"text": fresh["text"][0]})
    for engine in (numbered, by_id):
        with pytest.raises(InputError, match="unknown item id 'stranger'"):
            engine.recommend_vectors(q, strategy="early", k=5)


@pytest.fixture(scope="module")
def random_store_engine(tmp_path_factory) -> RecommendationEngine:
    """The random two-modality engine on an exact in-memory store (300 items)."""
    return attach_store(
        _random_two_modality_engine(tmp_path_factory.mktemp("random"), 300), search="ann", uri="memory://"
    )


WEIGHT_VALUES = st.sampled_from([0.0, 1e-6, 0.5, 1.0, 7.0])


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    weights=st.dictionaries(st.sampled_from(["text", "image"]), WEIGHT_VALUES, max_size=2),
    strategy=st.sampled_from(STRATEGIES),
    similarity=st.sampled_from(SIMILARITIES),
    candidates=st.integers(1, 40),
    rank_depth=st.integers(1, 400),
    rank_sample=st.sampled_from([32, 1024]),
    k=st.integers(1, 60),
    excluded=st.lists(st.integers(0, 299), max_size=3, unique=True),
    seed=st.integers(0, 2**16),
)
def test_candidate_search_keeps_scores_exact_and_finite_whatever_its_settings(
    random_store_engine, tmp_path, monkeypatch, weights, strategy, similarity, candidates, rank_depth, rank_sample, k,
    excluded, seed,
):
    """Whatever the candidate and rank-list sizes, weights and similarity, results are finite, their
    parts add up to the score, early / late scores are the exact engine's (the candidates are
    re-scored exactly), and rrf's ranks are exact within its ranked lists (an exact store's) and
    below them past them, and exact everywhere when the rank sample holds every item (liked and
    disliked items, left out, rank nowhere); only a RecsysError may refuse a query."""
    engine = random_store_engine
    n = len(engine.catalogue)
    monkeypatch.setattr(retrieval, "RANK_SAMPLE", rank_sample)
    engine._rank_samples.clear()
    exact = _random_two_modality_engine(tmp_path, n)
    engine.candidates, engine.rank_depth = candidates, rank_depth
    rng = np.random.default_rng(seed)
    vectors = {m: v / np.linalg.norm(v) for m, v in zip(("text", "image"), rng.standard_normal((2, 12)), strict=True)}
    q = QueryVectors(native=vectors, shared=vectors)
    asked = {"weights": weights, "strategy": strategy, "similarity": similarity, "exclude": [f"i{i}" for i in excluded]}
    try:
        got = engine.recommend_vectors(q, k=k, **asked)
    except RecsysError:
        return
    want = {r.item.id: r for r in exact.recommend_vectors(q, k=n, **asked)}
    assert 0 < len(got) <= k
    depth = max(candidates, rank_depth)
    scored = exact._pairs(q.centred() if similarity == "pearson" else q, None, similarity)
    sims = {pair_name(*pair): s for pair, s in scored.items()}
    for r in got:
        assert np.isfinite(r.score) and sum(r.contributions.values()) == pytest.approx(r.score, abs=1e-6)
        if strategy != "rrf":
            assert r.score == pytest.approx(want[r.item.id].score, abs=1e-5)
            continue
        for pair, rank in r.ranks.items():
            truth = want[r.item.id].ranks[pair]
            # items tied with it within float noise: the engine orders them by position, the count
            # of the items above it leaves them out
            s = sims[pair]
            tied = int(np.sum(np.abs(s - s[engine.catalogue.index_of(r.item.id)]) <= 2e-6)) - 1
            if rank_sample >= n:  # the sample counts whatever the list lacks
                assert abs(rank - truth) <= tied, (pair, rank, truth, tied)
            elif similarity != "pearson":  # the list is the store's cosine ranking, which Pearson's is not
                assert abs(rank - truth) <= tied if truth <= depth else rank > depth - tied, (pair, rank, truth, depth)


def test_an_item_moved_to_another_category_is_found_under_its_new_one(tmp_path, patched_encoders):
    """A category-only edit is a change: the store filters by the categories it holds, and kept the
    old one while the version covered only the text, media and models."""
    from fakes import build_catalogue

    root = build_catalogue(tmp_path / "cat")
    engine = _rebuild(root, tmp_path)
    engine.store.close()
    manifest = pd.read_csv(root / "catalogue.csv", keep_default_na=False)
    manifest.loc[manifest.id == "taxi", "category"] = "food/fruit"
    manifest.to_csv(root / "catalogue.csv", index=False)

    engine = _rebuild(root, tmp_path)
    query = patched_encoders["text"].encode(["a yellow taxi car"])[0]
    assert "taxi" in engine.store.search("text", query, 6, category="food").ids
    assert "taxi" not in engine.store.search("text", query, 6, category="vehicles").ids
    got = {r.item.id for r in engine.recommend(Query(text="a yellow taxi car"), k=6, category="vehicles")}
    assert got == {"car"}
    engine.store.close()


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_a_store_out_of_step_on_categories_puts_no_other_category_in_the_results(aligned_fake_engine, strategy):
    """The engine checks each candidate's category itself: the store's copy may lag (another process
    writing it, or a store written before categories counted in the versions)."""
    engine = _with_memory_store(aligned_fake_engine, candidates=len(aligned_fake_engine.catalogue))
    vectors = {name: m[[engine.catalogue.index_of("taxi")]] for name, m in engine.store_vectors().items()}
    if JOINT_FIELD in engine.store.fields:
        vectors[JOINT_FIELD] = engine.joint.items(vectors)
    engine.store.upsert(["taxi"], ["food/fruit"], vectors)  # the catalogue says vehicles/cars
    taxi = engine.query_vectors(Query(text="taxi"))["text"]
    assert "taxi" in engine.store.search("text", taxi, 6, category="food").ids
    for query in (Query(text="a yellow taxi car"), *QUERIES):
        results = engine.recommend(query, strategy=strategy, k=6, category="food")
        assert results and all(r.item.category.startswith("food") for r in results)


def test_a_picture_replaced_with_one_of_the_same_size_and_mtime_is_rewritten(tmp_path, patched_encoders):
    """The store's versions follow the items' content keys, as the features do: a copy that keeps
    the old file's size and modification time (cp -p, rsync -t) still counts as a change."""
    import os

    from fakes import build_catalogue

    root = build_catalogue(tmp_path / "cat")
    picture = root / "media" / "lime.png"

    def write(colour: str) -> None:
        data = write_square(tmp_path / "square.png", colour).read_bytes()
        picture.write_bytes(data + b"\0" * (4096 - len(data)))  # trailing bytes: the decoders ignore them

    write("green")
    engine = _rebuild(root, tmp_path)
    before = engine.store.get("image", ["lime"])
    engine.store.close()
    stamp = picture.stat()
    write("blue")
    os.utime(picture, ns=(stamp.st_atime_ns, stamp.st_mtime_ns))
    assert (picture.stat().st_size, picture.stat().st_mtime_ns) == (stamp.st_size, stamp.st_mtime_ns)

    engine = _rebuild(root, tmp_path)
    after = engine.store.get("image", ["lime"])
    assert not np.allclose(before, after)
    np.testing.assert_allclose(after[0], engine.store_vectors()["image"][engine.catalogue.index_of("lime")], atol=1e-3)
    engine.store.close()


@pytest.mark.parametrize("with_store", [False, True])
def test_a_category_filter_with_outer_slashes_names_the_same_category(aligned_fake_engine, with_store):
    """The store reads '/food/' as 'food' (normalize_category); the engine refused it."""
    engine = _with_memory_store(aligned_fake_engine, candidates=3) if with_store else aligned_fake_engine
    for strategy in STRATEGIES:
        plain = _ranked(engine, Query(text="a green fruit"), strategy=strategy, k=3, category="food")
        assert _ranked(engine, Query(text="a green fruit"), strategy=strategy, k=3, category="/food/") == plain
    with pytest.raises(InputError, match="no item in category"):
        engine.recommend(Query(text="car"), category="/")


def _version_as_stores_were_written(category: str, fingerprint: str, keys: list[str | None]) -> str:
    """item_version as every existing store's versions were computed: a new formula for the same
    item would rewrite every item of every store once (an hour at 1M items)."""
    h = hashlib.sha256(fingerprint.encode())
    h.update(f"\0category\0{category}".encode("utf-8", "surrogatepass"))
    for key in keys:
        h.update(f"\0{key or ''}".encode())
    return h.hexdigest()[:24]


@given(
    category=st.text(max_size=12),
    fingerprint=st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=40),
    keys=st.lists(st.one_of(st.none(), st.text(alphabet="0123456789abcdef", max_size=64)), max_size=3),
)
def test_an_items_version_stays_what_existing_stores_hold(category, fingerprint, keys):
    item = Item("i", "t", "", category, None, None)
    assert item_version(item, fingerprint, keys) == _version_as_stores_were_written(category, fingerprint, keys)


def test_a_sync_of_the_state_last_synced_compares_no_versions(tmp_path, patched_encoders, monkeypatch):
    """The store's sync mark skips a sync of the very state it left; a write to the store in
    between, or another state (an item's category here), makes the sync compare versions again."""
    from fakes import build_catalogue

    from recsys.recommend import catalogue_store

    root = build_catalogue(tmp_path / "cat")
    engine = _rebuild(root, tmp_path)
    assert engine.store.synced_to() == catalogue_store.sync_mark(
        catalogue_store.models_fingerprint(engine) + f"|joint={engine.joint.id}",
        engine.catalogue.items,
        [catalogue_store.engine_item_keys(engine, tmp_path / "cache")[m] for m in engine.indexes],
    )
    versions = []
    counting = lambda *a: versions.append(a) or item_version(*a)  # noqa: E731
    monkeypatch.setattr(catalogue_store, "item_version", counting)
    assert sync_store(engine.store, engine) == (0, 0) and not versions  # skipped
    apple = engine.catalogue.item("apple")
    ones = np.ones(engine.store.fields["text"], np.float32)
    engine.store.upsert(["apple"], ["elsewhere"], {"text": ones[None]})
    assert sync_store(engine.store, engine) == (1, 0) and len(versions) == len(engine.catalogue)
    assert engine.store.search("text", ones, 1, category="elsewhere").ids == []  # written back
    versions.clear()
    assert sync_store(engine.store, engine) == (0, 0) and not versions
    moved = dataclasses.replace(apple, category="food/other")
    engine.catalogue.items[engine.catalogue.items.index(apple)] = moved
    assert sync_store(engine.store, engine) == (1, 0) and len(versions) == len(engine.catalogue)


@given(
    ids=st.lists(st.text(min_size=1, max_size=4), min_size=1, max_size=4, unique=True),
    cut=st.integers(0, 3),
)
def test_a_sync_mark_tells_apart_states_whose_strings_join_alike(ids, cut):
    """Moving characters from one id to the next (ids may hold NULs and separators) or between the
    ids and the categories changes the mark: each list is hashed with its strings' lengths."""
    from recsys.recommend.catalogue_store import sync_mark

    items = [Item(i, "", "", "c", None, None) for i in ids]
    base = sync_mark("f", items, [[None] * len(ids)])
    if len(ids) > 1 and len(ids[0]) > 1:
        k = min(cut, len(ids[0]) - 1) or 1
        shifted = [ids[0][:k], ids[0][k:] + ids[1], *ids[2:]]
        if len(set(shifted)) == len(shifted) and shifted != ids:
            other = [Item(i, "", "", "c", None, None) for i in shifted]
            assert sync_mark("f", other, [[None] * len(ids)]) != base
    assert sync_mark("f", [Item(items[0].id + "c", "", "", "", None, None), *items[1:]], [[None] * len(ids)]) != base
    assert sync_mark("g", items, [[None] * len(ids)]) != base
    assert sync_mark("f", items, [["0" * 64] + [None] * (len(ids) - 1)]) != base
