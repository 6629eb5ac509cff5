"""Milvus specifics: expression quoting, URIs, the one-collection-per-field layout, stores that
recsys did not create (or created with its older layout), and interrupted creates.

The contract suite covers behaviour on Milvus Lite and, when one answers at
``RECSYS_TEST_MILVUS_URI``, on a Milvus server (see tests/milvus_server.py).
"""

from __future__ import annotations

import numpy as np
import pytest
from milvus_server import MILVUS_URI, NEEDS_SERVER, drop_collections, new_collection

from recsys.errors import RecsysError
from recsys.store import open_store
from recsys.store.milvus import MilvusStore, field_collection, quote

FIELDS = {"text": 4, "image@shared": 3}


@pytest.mark.parametrize(
    ("text", "literal"),
    [
        ("plain", '"plain"'),
        ('a"b', '"a\\"b"'),
        ("c\\d", '"c\\\\d"'),
        ('x\\"y', '"x\\\\\\"y"'),
        ("line\nbreak\ttab", '"line\\nbreak\\ttab"'),
        ("it's", '"it\'s"'),
    ],
)
def test_quote_escapes_backslashes_quotes_and_line_breaks(text, literal):
    assert quote(text) == literal


def test_milvus_uris_reach_the_milvus_backend(tmp_path):
    for uri in (f"milvus-lite://{tmp_path / 'a.db'}", str(tmp_path / "b.db"), f"{tmp_path / 'c.db'}?collection=other"):
        store = open_store(uri, {"text": 4})
        assert isinstance(store, MilvusStore)
        store.close()
    store = open_store(f"{tmp_path / 'c.db'}?collection=other")
    assert store.collection == "other" and store.fields == {"text": 4}
    store.close()
    with pytest.raises(RecsysError, match="only \\?collection"):
        open_store(f"milvus-lite://{tmp_path / 'd.db'}?colection=x", {"text": 4})


@pytest.fixture(params=["milvus-lite", pytest.param("milvus-server", marks=NEEDS_SERVER)])
def uri(request, tmp_path):
    """A fresh store location on Milvus Lite or on the test server (dropped afterwards)."""
    if request.param == "milvus-lite":
        yield f"milvus-lite://{tmp_path / 'm.db'}?collection=store"
        return
    collection = new_collection()
    yield f"{MILVUS_URI}?collection={collection}"
    drop_collections(collection)


def _client(store: MilvusStore):
    return store._client


def test_one_collection_per_field_holds_only_the_items_that_have_it(uri):
    store = open_store(uri, FIELDS)
    image = np.zeros((3, 3), np.float32)
    image[0, 0] = 1
    store.upsert(["a", "b", "c"], ["x/y", "x", ""], {"text": np.eye(3, 4, dtype=np.float32), "image@shared": image})
    store.upsert(["d"], ["x"], {})  # an item with no vector at all
    client = _client(store)
    assert set(client.list_collections()) >= set(store._collections())
    image_rows = client.query(
        field_collection(store.collection, "image@shared"), filter='id != ""', output_fields=["id"]
    )
    assert [r["id"] for r in image_rows] == ["a"]
    assert len(store) == 4 and set(store.versions()) == {"a", "b", "c", "d"}
    assert not store.get("text", ["d"]).any()
    store.upsert(["a"], ["x"], {"text": np.ones((1, 4), np.float32)})  # a replace without an image
    assert store.search("image@shared", np.ones(3, np.float32), 5).ids == []
    store.drop()
    assert not set(client.list_collections()) & set(store._collections())
    store.close()


def test_a_filtered_search_counts_the_filter_s_rows_only_when_it_comes_back_short(uri, monkeypatch):
    """Counting is a query over every row: a search that found k rows (k at least as many as a
    filter scored exactly leaves) needs no count; one that came back short, or asks for fewer,
    counts, and a category of few rows comes back exact, without scoring its rows again when the
    search found them all."""
    rng = np.random.default_rng(3)
    vectors = rng.normal(size=(60, 4)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    ids = [f"i{i}" for i in range(60)]
    store = open_store(uri, {"text": 4}, exact_filter_below=5)
    store.upsert(ids, ["big"] * 56 + ["small"] * 4, {"text": vectors})
    store.flush()
    counted, scored = [], []
    count, exact = store._count, store._exact
    monkeypatch.setattr(store, "_count", lambda name, where: counted.append(where) or count(name, where))
    monkeypatch.setattr(store, "_exact", lambda name, *a: scored.append(name) or exact(name, *a))
    query = vectors[0]
    assert len(store.search("text", query, 5, category="big").ids) == 5
    assert counted == []
    want = np.argsort(-(vectors[56:] @ query), kind="stable")
    for k, counts, exacts in ((5, 1, 0), (3, 2, 1)):  # 3: fewer than a filter scored exactly leaves: counted first
        small = store.search("text", query, k, category="small")
        assert (len(counted), len(scored)) == (counts, exacts)
        assert small.ids == [ids[56 + i] for i in want[:k]]
        np.testing.assert_allclose(small.scores, np.sort(vectors[56:] @ query)[::-1][:k], atol=1e-5)
    store.drop()
    store.close()


def _old_layout(client, name: str) -> None:
    """A collection as recsys wrote it before one collection per field: every field in one."""
    from pymilvus import DataType

    schema = client.create_schema(auto_id=False, enable_dynamic_field=False)
    schema.add_field("id", DataType.VARCHAR, is_primary=True, max_length=64)
    schema.add_field("version", DataType.VARCHAR, max_length=64)
    schema.add_field("cat_prefixes", DataType.ARRAY, element_type=DataType.VARCHAR, max_capacity=4, max_length=64)
    schema.add_field("v_74657874", DataType.FLOAT_VECTOR, dim=4)
    schema.add_field("h_74657874", DataType.BOOL)
    index = client.prepare_index_params()
    index.add_index(field_name="v_74657874", index_type="FLAT", metric_type="IP")
    client.create_collection(name, schema=schema, index_params=index)


def _foreign(client, name: str, columns=("id", "vector")) -> None:
    from pymilvus import DataType

    schema = client.create_schema(auto_id=False, enable_dynamic_field=False)
    schema.add_field("id", DataType.VARCHAR, is_primary=True, max_length=64)
    if "cat_prefixes" in columns:
        schema.add_field("cat_prefixes", DataType.ARRAY, element_type=DataType.VARCHAR, max_capacity=4, max_length=64)
    schema.add_field("vector", DataType.FLOAT_VECTOR, dim=4)
    index = client.prepare_index_params()
    index.add_index(field_name="vector", index_type="FLAT", metric_type="IP")
    client.create_collection(name, schema=schema, index_params=index)


def _raw_client(tmp_path):
    from pymilvus import MilvusClient

    return MilvusClient(str(tmp_path / "m.db"))


def test_a_store_of_the_older_layout_asks_for_a_rebuild(tmp_path):
    client = _raw_client(tmp_path)
    _old_layout(client, "old")
    client.close()
    with pytest.raises(RecsysError, match="older recsys.*rebuild it.*drop_collection\\('old'\\)"):
        open_store(f"{tmp_path / 'm.db'}?collection=old", {"text": 4})


def test_collections_recsys_did_not_create_are_left_alone(tmp_path):
    client = _raw_client(tmp_path)
    _foreign(client, "theirs")
    _foreign(client, field_collection("mine", "text"))
    client.close()
    with pytest.raises(RecsysError, match="not created by recsys"):
        open_store(f"{tmp_path / 'm.db'}?collection=theirs")
    with pytest.raises(RecsysError, match="not created by recsys.*another \\?collection"):
        open_store(f"{tmp_path / 'm.db'}?collection=mine", {"text": 4})
    client = _raw_client(tmp_path)
    assert {"theirs", field_collection("mine", "text")} <= set(client.list_collections())
    client.close()


def test_an_interrupted_create_is_redone(tmp_path):
    """A field collection without its item table (the item table is created last) is replaced."""
    client = _raw_client(tmp_path)
    _foreign(client, field_collection("s", "text"), columns=("id", "cat_prefixes", "vector"))
    client.insert(field_collection("s", "text"), [{"id": "ghost", "cat_prefixes": [], "vector": [1.0, 0, 0, 0]}])
    client.close()
    store = open_store(f"{tmp_path / 'm.db'}?collection=s", {"text": 4})
    assert len(store) == 0 and store.search("text", np.ones(4, np.float32), 3).ids == []
    store.close()


def test_a_store_missing_a_field_collection_says_so(tmp_path):
    store = open_store(f"{tmp_path / 'm.db'}?collection=s", FIELDS)
    _client(store).drop_collection(field_collection("s", "image@shared"))
    store.close()
    with pytest.raises(RecsysError, match="lacks its collection .* for field 'image@shared'"):
        open_store(f"{tmp_path / 'm.db'}?collection=s")
