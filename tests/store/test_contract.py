"""The behaviour every vector store backend must share (memory, local exact, local ANN, Milvus Lite).

Collections are small, so an ANN index finds the true neighbours and every backend is compared
with brute force directly.
"""

from __future__ import annotations

import numpy as np
import pytest

from recsys.catalogue.categories import in_category
from recsys.errors import InputError, RecsysError

FIELDS = {"text": 8, "image@shared": 6}
CATEGORIES = ["animals", "animals/birds", "animals/birds/owls", "animalsX", "plants/trees", ""]
N = 60


def unit(rng, n, d):
    x = rng.standard_normal((n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.fixture
def data():
    rng = np.random.default_rng(7)
    ids = [f"item{i}" for i in range(N - 3)] + ['quo"te', "back\\slash", 'mix\\"ed']
    cats = [CATEGORIES[i % len(CATEGORIES)] for i in range(N)]
    image = unit(rng, N, 6)
    image[::4] = 0  # every 4th item has no image
    return {
        "ids": ids,
        "cats": cats,
        "vectors": {"text": unit(rng, N, 8), "image@shared": image},
        "versions": [f"v{i}" for i in range(N)],
    }


@pytest.fixture
def filled(opener, data):
    store = opener(FIELDS)
    store.upsert(data["ids"], data["cats"], data["vectors"], data["versions"])
    return store


def brute(data, field, q, k, category=None, exclude=()):
    v = data["vectors"][field]
    ok = [
        i
        for i in range(N)
        if v[i].any() and data["ids"][i] not in exclude and (category is None or in_category(data["cats"][i], category))
    ]
    scores = v[ok] @ q
    order = np.argsort(-scores)[:k]
    return [data["ids"][ok[i]] for i in order], scores[order]


def test_round_trip(filled, data):
    assert len(filled) == N
    assert filled.fields == FIELDS
    for field in FIELDS:
        got = filled.get(field, data["ids"])
        np.testing.assert_allclose(got, data["vectors"][field], atol=2e-3)
        assert got.dtype == np.float32
    hits = filled.search("text", data["vectors"]["text"][3], 1)
    assert hits.ids == [data["ids"][3]]
    assert hits.scores.dtype == np.float32 and abs(hits.scores[0] - 1) < 2e-3


@pytest.mark.parametrize("field", list(FIELDS))
def test_search_is_the_brute_force_top_k(filled, data, field):
    rng = np.random.default_rng(1)
    for q in unit(rng, 5, FIELDS[field]):
        hits = filled.search(field, q, 10)
        ids, scores = brute(data, field, q, 10)
        assert hits.ids == ids
        np.testing.assert_allclose(hits.scores, scores, atol=3e-3)


def test_a_lower_search_effort_still_returns_k_hits_and_the_nearest_first(filled, data):
    rng = np.random.default_rng(2)
    for q in unit(rng, 3, FIELDS["text"]):
        ids, _ = brute(data, "text", q, 10)
        for effort in (0.25, 1.0, 4.0):
            hits = filled.search("text", q, 10, effort=effort)
            assert len(hits.ids) == 10 and hits.ids[0] == ids[0]


def test_replace_changes_vector_category_and_version(filled, data):
    new = np.zeros(8, np.float32)
    new[0] = 1
    filled.upsert(["item5"], ["plants"], {"text": new[None]}, ["v-new"])
    assert len(filled) == N
    np.testing.assert_allclose(filled.get("text", ["item5"])[0], new, atol=1e-3)
    assert not filled.get("image@shared", ["item5"]).any()  # a whole-item replace: no image now
    assert filled.search("text", new, 1).ids == ["item5"]
    assert "item5" not in filled.search("text", new, N, category="animals").ids
    assert "item5" not in filled.search("image@shared", np.ones(6, np.float32), N).ids
    assert filled.versions()["item5"] == "v-new"


def test_delete_removes_and_ignores_unknown_ids(filled, data):
    gone = ["item1", 'quo"te', "back\\slash"]
    filled.delete([*gone, "never-there", "item1"])  # unknown and repeated ids
    assert len(filled) == N - 3
    for i in gone:
        q = data["vectors"]["text"][data["ids"].index(i)]
        assert i not in filled.search("text", q, N).ids
        assert i not in filled.versions()
    with pytest.raises(InputError, match="unknown item id"):
        filled.get("text", ["item1"])
    filled.delete(["never-there"])
    assert len(filled) == N - 3


def test_hit_row_numbers_name_the_hits_through_every_change(filled, data):
    """A store that numbers its rows names each hit's row in :meth:`row_ids`, across replaces and
    deletes (the list then grows or is another); one that does not gives no row numbers."""
    rng = np.random.default_rng(3)

    def check() -> None:
        for field in FIELDS:
            for q in unit(rng, 2, FIELDS[field]):
                for kwargs in ({}, {"category": "animals"}, {"exclude": ["item2"]}, {"rescore": False}):
                    hits = filled.search(field, q, 12, **kwargs)
                    row_ids = filled.row_ids()
                    if row_ids is None:
                        assert hits.rows is None
                    else:
                        assert [row_ids[r] for r in hits.rows.tolist()] == hits.ids

    check()
    filled.upsert(["item5", "item6"], ["plants", "animals"], {"text": data["vectors"]["text"][:2]})
    check()
    filled.delete(["item9"])
    check()


def test_hits_read_after_the_store_changed_name_what_the_search_found(filled, data):
    """A store may look a hit's id up only when it is read: replacing, deleting and compacting
    between the search and that read must not change the ids it names."""
    q = data["vectors"]["text"][4]
    hits = [filled.search("text", q, 8), filled.search("text", q, 8, category="animals")]
    expected = [brute(data, "text", q, 8)[0], brute(data, "text", q, 8, category="animals")[0]]
    replaced = [expected[0][0], expected[1][1]]
    filled.upsert(replaced, ["plants"] * 2, {"text": unit(np.random.default_rng(5), 2, 8)})
    filled.delete(expected[0][2:4])
    if hasattr(filled, "compact"):
        filled.compact()
    assert [h.ids for h in hits] == expected
    assert [len(h) for h in hits] == [8, 8]


@pytest.mark.parametrize("category", ["animals", "animals/birds", "animalsX", "plants", "animals/birds/owls/"])
def test_category_filter_includes_sub_categories_only(filled, data, category):
    q = data["vectors"]["text"][0]
    hits = filled.search("text", q, 10, category=category)
    ids, _ = brute(data, "text", q, 10, category=category.strip("/"))
    assert hits.ids == ids
    assert len(hits.ids) == min(10, sum(in_category(c, category.strip("/")) for c in data["cats"]))


def test_unknown_category_finds_nothing(filled, data):
    assert filled.search("text", data["vectors"]["text"][0], 5, category="minerals").ids == []
    assert filled.search("text", data["vectors"]["text"][0], 5, category="anim").ids == []


def test_exclude_never_returns_excluded_ids(filled, data):
    q = data["vectors"]["text"][2]
    exclude = {data["ids"][2], 'quo"te', 'mix\\"ed', "unknown"}
    hits = filled.search("text", q, 20, exclude=exclude)
    assert hits.ids == brute(data, "text", q, 20, exclude=exclude)[0]
    hits = filled.search("text", q, 5, category="animals", exclude=exclude)
    assert hits.ids == brute(data, "text", q, 5, category="animals", exclude=exclude)[0]


def test_fewer_than_k_only_when_fewer_qualify(filled, data):
    q = data["vectors"]["image@shared"][1]
    with_image = sum(bool(v.any()) for v in data["vectors"]["image@shared"])
    assert len(filled.search("image@shared", q, 1000).ids) == with_image
    owls = sum(c == "animals/birds/owls" for c in data["cats"])
    assert len(filled.search("text", data["vectors"]["text"][0], 50, category="animals/birds/owls").ids) == owls


def test_items_lacking_a_field_are_never_returned(filled, data):
    lacking = {data["ids"][i] for i in range(0, N, 4)}
    hits = filled.search("image@shared", data["vectors"]["image@shared"][1], N)
    assert not lacking & set(hits.ids)
    assert not filled.get("image@shared", sorted(lacking)).any()
    assert set(filled.search("text", data["vectors"]["text"][0], N).ids) >= lacking


def test_versions(filled, data):
    assert filled.versions() == dict(zip(data["ids"], data["versions"], strict=True))


def test_empty_store(opener):
    store = opener(FIELDS)
    assert len(store) == 0
    assert store.versions() == {}
    hits = store.search("text", np.ones(8, np.float32), 5)
    assert hits.ids == [] and hits.scores.shape == (0,)


def test_persists_across_reopen(opener, data):
    if not opener.persistent:
        pytest.skip("memory:// lives and dies with the process")
    store = opener(FIELDS)
    store.upsert(data["ids"], data["cats"], data["vectors"], data["versions"])
    store.delete(["item7"])
    q = data["vectors"]["text"][9]
    before = store.search("text", q, 10, category="animals")
    store.flush()
    store.close()
    again = opener()
    assert again.fields == FIELDS
    assert len(again) == N - 1
    assert again.versions() == store_versions_without(data, "item7")
    after = again.search("text", q, 10, category="animals")
    assert after.ids == before.ids
    np.testing.assert_allclose(again.get("text", ["item9"])[0], q, atol=2e-3)


def test_a_sync_mark_lasts_until_an_upsert_or_a_delete(opener, data):
    """What a sync may skip on: the mark it left, ended by any write that changes an item (and
    kept across a flush and a reopen by a store that keeps marks at all)."""
    store = opener(FIELDS)
    assert store.synced_to() is None
    store.upsert(data["ids"], data["cats"], data["vectors"], data["versions"])
    store.mark_synced("state-1")
    keeps = store.synced_to() == "state-1"
    assert keeps == (not opener.backend.startswith("milvus"))  # a Milvus store keeps none, and ignores them
    assert keeps or store.synced_to() is None
    expected = "state-1" if keeps else None
    store.delete(["not-an-item"])  # deletes nothing
    assert store.synced_to() == expected
    store.upsert(["item3"], ["plants"], {"text": data["vectors"]["text"][:1]})
    assert store.synced_to() is None
    store.mark_synced("state-2")
    store.delete(["item4"])
    assert store.synced_to() is None
    store.mark_synced("state-3")
    store.flush()
    assert store.synced_to() == ("state-3" if keeps else None)
    if opener.persistent:
        store.close()
        assert opener().synced_to() == ("state-3" if keeps else None)


def store_versions_without(data, gone):
    return {i: v for i, v in zip(data["ids"], data["versions"], strict=True) if i != gone}


def test_fields_mismatch_on_reopen(opener):
    if not opener.persistent:
        pytest.skip("memory:// has nothing to reopen")
    opener(FIELDS).close()
    with pytest.raises(RecsysError, match="fields"):
        opener({"text": 8, "image@shared": 7})
    with pytest.raises(RecsysError, match="fields"):
        opener({"text": 8})


def test_creating_needs_fields(opener):
    with pytest.raises(RecsysError):
        opener(None)


BAD_CALLS = {
    "dim mismatch": lambda s: s.upsert(["a"], ["x"], {"text": np.ones((1, 7), np.float32)}),
    "nan vector": lambda s: s.upsert(["a"], ["x"], {"text": np.full((1, 8), np.nan, np.float32)}),
    "inf vector": lambda s: s.upsert(["a"], ["x"], {"text": np.full((1, 8), np.inf, np.float32)}),
    "len mismatch ids/categories": lambda s: s.upsert(["a", "b"], ["x"], {"text": np.ones((2, 8), np.float32)}),
    "len mismatch vectors": lambda s: s.upsert(["a", "b"], ["x", "y"], {"text": np.ones((1, 8), np.float32)}),
    "len mismatch versions": lambda s: s.upsert(["a"], ["x"], {"text": np.ones((1, 8), np.float32)}, ["1", "2"]),
    "unknown field upsert": lambda s: s.upsert(["a"], ["x"], {"audio": np.ones((1, 8), np.float32)}),
    "empty ids": lambda s: s.upsert([], [], {}),
    "duplicate ids": lambda s: s.upsert(["a", "a"], ["x", "x"], {"text": np.ones((2, 8), np.float32)}),
    "empty id": lambda s: s.upsert([""], ["x"], {"text": np.ones((1, 8), np.float32)}),
    "one string as ids": lambda s: s.upsert("ab", ["x", "y"], {"text": np.ones((2, 8), np.float32)}),
    "bad category": lambda s: s.upsert(["a"], ["x//y"], {"text": np.ones((1, 8), np.float32)}),
    "NUL in an id": lambda s: s.upsert(["a\0"], ["x"], {"text": np.ones((1, 8), np.float32)}),
    "NUL in a category": lambda s: s.upsert(["a"], ["x\0"], {"text": np.ones((1, 8), np.float32)}),
    "id too long": lambda s: s.upsert(["a" * 1025], ["x"], {"text": np.ones((1, 8), np.float32)}),
    "unknown field search": lambda s: s.search("audio", np.ones(8, np.float32), 3),
    "k zero": lambda s: s.search("text", np.ones(8, np.float32), 0),
    "k negative": lambda s: s.search("text", np.ones(8, np.float32), -2),
    "k float": lambda s: s.search("text", np.ones(8, np.float32), 2.5),
    "query dim": lambda s: s.search("text", np.ones(7, np.float32), 3),
    "query nan": lambda s: s.search("text", np.full(8, np.nan, np.float32), 3),
    "empty category filter": lambda s: s.search("text", np.ones(8, np.float32), 3, category=""),
    "unknown field get": lambda s: s.get("audio", ["item1"]),
    "empty get": lambda s: s.get("text", []),
    "effort zero": lambda s: s.search("text", np.ones(8, np.float32), 3, effort=0),
    "effort nan": lambda s: s.search("text", np.ones(8, np.float32), 3, effort=float("nan")),
    "effort text": lambda s: s.search("text", np.ones(8, np.float32), 3, effort="low"),
}


@pytest.mark.parametrize("case", list(BAD_CALLS))
def test_bad_inputs_raise_input_error(filled, case):
    with pytest.raises(InputError):
        BAD_CALLS[case](filled)
    assert len(filled) == N  # nothing was half-applied
