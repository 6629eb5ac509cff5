"""Property: whatever happens to a cache or store file between two runs, nothing but a message escapes
and nothing wrong is returned: the next run gives exactly the clean result (rebuilding what it must),
and the run after it finds a complete, clean cache.

Damages: truncation anywhere, a flipped bit anywhere, random bytes, an empty file, a folder in the
file's place, and well-formed files holding the wrong thing (another width, NaN, complex values,
another feature id). Budget: the ``ci`` profile of tests/conftest.py (``--hypothesis-profile long``
for a deep run).
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest
from fakes import FakeTextEncoder, TinyImageEncoder, build_image_catalogue
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from recsys.alignment.bridge import cached_class_text_embeddings
from recsys.catalogue import load_catalogue
from recsys.encoding import BatchOptions, catalogue_features
from recsys.recommend.catalogue_store import attach_store
from recsys.store import open_store
from recsys.store.base import UnusableStoreError

BOTH = ("embedding", "class_proba")
OPTIONS = BatchOptions(batch_size=2, chunk_size=4, workers=0)
CLASSES = ["tabby, tabby cat", "golden retriever", "fire engine, fire truck", "banana"]

damages = st.one_of(
    st.tuples(st.just("truncate"), st.floats(0.0, 0.999)),
    st.tuples(st.just("flip"), st.integers(0, 2**31), st.integers(0, 7)),
    st.tuples(st.just("bytes"), st.binary(max_size=300)),
    st.sampled_from([("empty",), ("folder",), ("wider",), ("nan",), ("complex",), ("foreign",)]),
)


def damage(path: Path, how: tuple) -> None:
    """Apply one damage to a cache file (the array damages rewrite a well-formed npz / npy; other
    files, such as FAISS indexes or the manifest, are cut in half instead)."""
    kind = how[0]
    data = path.read_bytes()
    if kind == "truncate" or (kind in ARRAY_DAMAGES and path.suffix not in (".npy", ".npz")):
        path.write_bytes(data[: int(len(data) * (how[1] if kind == "truncate" else 0.5))])
    elif kind == "flip":
        flipped = bytearray(data)
        flipped[how[1] % len(data)] ^= 1 << how[2]
        path.write_bytes(bytes(flipped))
    elif kind == "bytes":
        path.write_bytes(how[1])
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "folder":
        path.unlink()
        path.mkdir()
    elif path.suffix == ".npy":
        np.save(path, _mangle(kind, np.load(path)))
    else:
        with np.load(path) as z:
            arrays = {k: z[k] for k in z.files}
        if kind == "foreign" and "feature_id" in arrays:
            arrays["feature_id"] = np.asarray("image/other@1")
        else:
            name = next((k for k in ("vectors", "embeddings") if k in arrays), next(iter(arrays)))
            arrays[name] = _mangle(kind, arrays[name])
        with open(path, "wb") as fh:
            np.savez(fh, **arrays)


ARRAY_DAMAGES = ("wider", "nan", "complex", "foreign")


def _mangle(kind: str, array: np.ndarray) -> np.ndarray:
    """Another width, a NaN, or complex values, in an array of the same name."""
    if kind == "wider":
        return np.concatenate([array, array[..., :1]], axis=-1) if array.ndim else np.stack([array, array])
    numeric = array.dtype.kind in "fiub"
    if kind == "complex":
        return array.astype(np.complex64) + 1j if numeric else np.zeros(array.shape, np.complex64)
    out = array.astype(np.float32) if numeric else np.zeros(array.shape, np.float32)
    if out.size:
        out.flat[0] = np.nan
    return out


def _value_damage(path: Path, how: tuple) -> bool:
    """Whether ``how`` may change a stored vector's value inside a memory-mapped segment file: those are
    checked for header, dtype and shape only (reading every value at open would defeat the map)."""
    return path.name.startswith("seg-") and path.suffix == ".npy" and how[0] in ("flip", "nan", "bytes")


def _files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


@pytest.fixture(scope="module")
def encoded(tmp_path_factory):
    """A catalogue of ten pictures, its clean cache (three shards per output) and the clean features."""
    base = tmp_path_factory.mktemp("encoded")
    catalogue = load_catalogue(build_image_catalogue(base / "cat", 10))
    clean = catalogue_features(catalogue, "image", TinyImageEncoder(), BOTH, cache_dir=base / "cache", options=OPTIONS)
    return catalogue, base / "cache", clean


@given(which=st.integers(0, 10_000), how=damages)
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_a_damaged_feature_cache_gives_the_clean_result_and_is_rebuilt(encoded, which, how):
    catalogue, clean_cache, clean = encoded
    with tempfile.TemporaryDirectory() as tmp:
        cache = Path(tmp) / "cache"
        shutil.copytree(clean_cache, cache)
        files = _files(cache)
        damage(files[which % len(files)], how)
        got = catalogue_features(catalogue, "image", TinyImageEncoder(), BOTH, cache_dir=cache, options=OPTIONS)
        for name in BOTH:
            np.testing.assert_array_equal(got[name].present, clean[name].present)
            np.testing.assert_array_equal(got[name].vectors, clean[name].vectors)
        encoder = TinyImageEncoder()
        again = catalogue_features(catalogue, "image", encoder, BOTH, cache_dir=cache, options=OPTIONS)
        assert encoder.forwarded == 0  # the rebuilt cache is complete
        np.testing.assert_array_equal(again["embedding"].vectors, clean["embedding"].vectors)


@given(how=damages)
def test_a_damaged_label_bridge_cache_gives_the_clean_embeddings(how):
    with tempfile.TemporaryDirectory() as tmp:
        clean = cached_class_text_embeddings(CLASSES, FakeTextEncoder(), tmp)
        damage(next(Path(tmp).glob("label-bridge-*.npz")), how)
        np.testing.assert_array_equal(cached_class_text_embeddings(CLASSES, FakeTextEncoder(), tmp), clean)


FIELDS = {"a": 8, "b": 4}
# Every field goes ANN (so FAISS files are written) and every IVF list is probed: searches are exact,
# so a rebuilt index answers exactly as the original did.
STORE_OPTIONS = {"exact_below": 1, "exact_filter_below": 0, "codes": "flat", "nprobe": 4096}
QUERIES = np.random.default_rng(7).normal(size=(4, 8)).astype(np.float32)


def _searches(store) -> list[tuple[list[str], list[float]]]:
    return [(h.ids, np.round(h.scores, 5).tolist()) for h in (store.search("a", q, 7) for q in QUERIES)]


@pytest.fixture(scope="module")
def saved_store(tmp_path_factory):
    """A local store written in three upserts and a delete (segments, metadata, FAISS files, manifest)."""
    root = tmp_path_factory.mktemp("store") / "s"
    rng = np.random.default_rng(0)
    with open_store(root, FIELDS, **STORE_OPTIONS) as store:
        for i in range(3):
            ids = [f"x{i}-{j}" for j in range(60)]
            vectors = {"a": rng.normal(size=(60, 8)), "b": rng.normal(size=(60, 4))}
            store.upsert(ids, ["c/d"] * 60, {k: v.astype(np.float32) for k, v in vectors.items()})
        store.delete(["x0-1", "x2-5"])
        store.flush()
        reference = _searches(store)
    assert any(root.glob("index-*.faiss"))
    return root, reference


@given(which=st.integers(0, 10_000), how=damages)
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_a_damaged_store_is_reported_or_answers_exactly_as_before(saved_store, which, how):
    root, reference = saved_store
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "s"
        shutil.copytree(root, copy)
        files = _files(copy)
        victim = files[which % len(files)]
        damage(victim, how)
        try:
            store = open_store(copy, FIELDS, **STORE_OPTIONS)
        except UnusableStoreError as exc:
            assert str(copy) in str(exc)  # a message naming the store (and, for a file, which one)
            return
        with store:
            got = _searches(store)
            if _value_damage(victim, how):  # candidates may differ; the engine re-scores them itself
                assert all(len(ids) == 7 and set(ids) <= set(store.versions()) for ids, _ in got)
            else:
                assert got == reference


@pytest.mark.parametrize("victim", ["manifest.json", "seg-*.meta.npz", "seg-*.f0.npy"])
def test_the_store_kept_for_a_catalogue_is_rebuilt_when_damaged(fake_engine, tmp_path, caplog, victim):
    cache = tmp_path / "cache"
    attach_store(fake_engine, search="ann", cache_dir=cache)
    folder = next(p for p in (cache / "stores").iterdir() if p.is_dir())  # beside it: the joint projection
    expected = [(r.item.id, round(r.score, 5)) for r in fake_engine.recommend(_query(), k=4)]
    fake_engine.store.close()
    damage(sorted(folder.glob(victim))[0], ("truncate", 0.5))
    attach_store(fake_engine, search="ann", cache_dir=cache)
    assert "rebuilding the vector store" in caplog.text
    assert [(r.item.id, round(r.score, 5)) for r in fake_engine.recommend(_query(), k=4)] == expected
    fake_engine.store.close()


def test_a_damaged_store_the_user_named_is_reported_not_deleted(fake_engine, tmp_path):
    target = tmp_path / "mine"
    attach_store(fake_engine, search="ann", uri=str(target))
    fake_engine.store.close()
    (target / "manifest.json").write_text("{", encoding="utf-8")
    with pytest.raises(UnusableStoreError, match="cannot read the store manifest"):
        attach_store(fake_engine, search="ann", uri=str(target))
    assert (target / "manifest.json").exists()


def _query():
    from recsys.recommend.query import Query

    return Query(text="a green fruit")
