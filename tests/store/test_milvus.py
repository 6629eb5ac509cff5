"""Milvus specifics: expression quoting, URIs, and a real Milvus server when one is running.

The contract suite covers Milvus Lite. ``test_against_a_milvus_server`` runs when a server answers
at ``RECSYS_TEST_MILVUS_URI`` (default ``http://127.0.0.1:19530``; ``bash scripts/milvus_server.sh
start`` starts one). The PyPI server is Milvus 2.3, which allows one vector field per
collection, so that test uses a one-field store.
"""

from __future__ import annotations

import os
import socket
import uuid
from urllib.parse import urlsplit

import numpy as np
import pytest

from recsys.errors import RecsysError
from recsys.store import open_store
from recsys.store.milvus import quote

MILVUS_URI = os.environ.get("RECSYS_TEST_MILVUS_URI", "http://127.0.0.1:19530")


def answers(uri: str) -> bool:
    parts = urlsplit(uri)
    try:
        with socket.create_connection((parts.hostname, parts.port or 19530), timeout=0.5):
            return True
    except OSError:
        return False


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
    from recsys.store.milvus import MilvusStore

    for uri in (f"milvus-lite://{tmp_path / 'a.db'}", str(tmp_path / "b.db"), f"{tmp_path / 'c.db'}?collection=other"):
        store = open_store(uri, {"text": 4})
        assert isinstance(store, MilvusStore)
        store.close()
    store = open_store(f"{tmp_path / 'c.db'}?collection=other")
    assert store.collection == "other" and store.fields == {"text": 4}
    store.close()
    with pytest.raises(RecsysError, match="only \\?collection"):
        open_store(f"milvus-lite://{tmp_path / 'd.db'}?colection=x", {"text": 4})


@pytest.mark.skipif(not answers(MILVUS_URI), reason=f"no Milvus server at {MILVUS_URI}")
def test_against_a_milvus_server():
    collection = f"recsys_test_{uuid.uuid4().hex[:12]}"
    uri = f"{MILVUS_URI}?collection={collection}"
    rng = np.random.default_rng(0)
    ids = [f"i{j}" for j in range(40)] + ['q"uote', "back\\slash"]
    cats = ["animals/birds" if j % 3 == 0 else "animalsX" if j % 3 == 1 else "plants" for j in range(len(ids))]
    x = rng.standard_normal((len(ids), 8)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    store = open_store(uri, {"text": 8})
    try:
        store.upsert(ids, cats, {"text": x}, [str(j) for j in range(len(ids))])
        assert len(store) == len(ids)
        assert store.search("text", x[41], 1).ids == ["back\\slash"]
        hits = store.search("text", x[0], 50, category="animals", exclude=["i3", 'q"uote'])
        assert set(hits.ids) == {i for i, c in zip(ids, cats, strict=True) if c == "animals/birds"} - {"i3", 'q"uote'}
        np.testing.assert_allclose(store.get("text", ['q"uote', "back\\slash"]), x[40:], atol=1e-6)
        store.delete(["back\\slash", "i0"])
        store.flush()
        store.close()
        store = open_store(uri)
        assert store.fields == {"text": 8}
        assert store.versions() == {i: str(j) for j, i in enumerate(ids) if i not in ("back\\slash", "i0")}
    finally:
        store._client.drop_collection(collection)
        store.close()


@pytest.mark.skipif(not answers(MILVUS_URI), reason=f"no Milvus server at {MILVUS_URI}")
def test_several_fields_on_a_server_either_work_or_say_which_version_is_needed():
    collection = f"recsys_test_{uuid.uuid4().hex[:12]}"
    try:
        store = open_store(f"{MILVUS_URI}?collection={collection}", {"text": 8, "image": 4})
    except RecsysError as e:
        assert "Milvus 2.4 or later" in str(e)
        return
    assert store.fields == {"text": 8, "image": 4}
    store._client.drop_collection(collection)
    store.close()
