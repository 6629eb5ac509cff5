"""The URI factory: which backend a URI opens, and the errors for URIs it cannot open."""

from __future__ import annotations

import pytest

from recsys.errors import InputError, RecsysError
from recsys.store import open_store
from recsys.store.local import LocalStore
from recsys.store.memory import MemoryStore


def test_paths_and_local_uris_open_the_local_store(tmp_path):
    a = open_store(tmp_path / "a", {"text": 4})
    b = open_store(f"local://{tmp_path / 'b'}", {"text": 4}, exact_below=10)
    assert isinstance(a, LocalStore) and isinstance(b, LocalStore)
    assert b.options.exact_below == 10
    b.close()
    assert open_store(str(tmp_path / "b")).options.exact_below == 10  # options are kept in the manifest


def test_memory_uri():
    assert isinstance(open_store("memory://", {"text": 4}), MemoryStore)
    with pytest.raises(RecsysError, match="fields"):
        open_store("memory://")


@pytest.mark.parametrize("uri", ["ftp://host/x", "qdrant://localhost:6333", "s3://bucket/store"])
def test_unknown_schemes_list_the_known_ones(uri):
    with pytest.raises(RecsysError, match="milvus-lite://") as e:
        open_store(uri, {"text": 4})
    assert "local://" in str(e.value) and "memory://" in str(e.value)


def test_bad_fields_are_input_errors(tmp_path):
    for fields in ({}, {"text": 0}, {"": 3}, {"text": 2.5}):
        with pytest.raises(InputError):
            open_store(tmp_path / "s", fields)
