"""The vector store behind a catalogue's engine: where it lives, and keeping it in step.

The engine's in-memory vectors stay the truth for exact re-scoring; the store answers "which
items are near this vector" fast on large catalogues. It is synchronised item by item: each item
carries a version (its content keys: its text's and media files' hashes, which its features are
cached by; its category; and the ids of the models that embedded it), so adding, changing or
deleting items rewrites only those items, and switching an encoder or aligner re-indexes everything.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from recsys.alignment.base import aligner_identity
from recsys.catalogue import Item
from recsys.errors import RecsysError
from recsys.recommend.engine import EXACT_MAX_ITEMS, RecommendationEngine
from recsys.retention import keep_recent
from recsys.store.joint import JOINT_FIELD, JointProjection

log = logging.getLogger(__name__)

SEARCH_MODES = ("auto", "exact", "ann")
UPSERT_CHUNK = 10_000
Progress = Callable[[int, int], None]


def models_fingerprint(engine: RecommendationEngine) -> str:
    """Ids of every model whose output the store holds; a change re-indexes every item."""
    models = {m: (ix.encoder, ix.aligner) for m, ix in engine.indexes.items()}
    return models_description(models, getattr(engine, "spoken", None))


def models_description(models: Mapping[str, tuple[Any, Any]], spoken: Any = None) -> str:
    """Ids of each modality's encoder and aligner (``models``: modality -> (encoder, aligner or
    None)) and of the speech rule (``spoken``, or None): what the engine's item vectors come from."""
    parts = []
    for m, (encoder, aligner) in sorted(models.items()):
        parts.append(f"{m}={getattr(encoder, 'encoder_id', type(encoder).__name__)}")
        if aligner is not None and m != "text":
            parts.append(f"{m}-aligner={aligner_identity(aligner)}")
    if spoken is not None:  # speech clips placed at their words
        parts.append(spoken.describe())
    return "|".join(parts)


def item_version(item: Item, fingerprint: str, keys: Sequence[str | None]) -> str:
    """Change detector: the item's content keys (its text's and media files' hashes, which its
    features are cached by, so a file replaced with another of the same size and mtime counts), its
    category (the store filters by its own copy), and the models."""
    h = hashlib.sha256(fingerprint.encode())
    h.update(f"\0category\0{item.category}".encode("utf-8", "surrogatepass"))
    for key in keys:
        h.update(f"\0{key or ''}".encode())
    return h.hexdigest()[:24]


ItemKeys = Mapping[str, Sequence[str | None]]


def engine_item_keys(engine: RecommendationEngine, cache_dir: str | os.PathLike[str] | None = None) -> ItemKeys:
    """Each indexed modality's content key per item (:func:`recsys.encoding.item_keys`; media hashes
    remembered by stat stamp under ``cache_dir``), for an engine built without them at hand."""
    from recsys.encoding import item_keys

    return {m: item_keys(engine.catalogue, m, ix.encoder, cache_dir=cache_dir) for m, ix in engine.indexes.items()}


def default_store_uri(engine: RecommendationEngine, cache_dir: str | os.PathLike[str] | None) -> Path:
    """One embedded store per (catalogue folder, models), under the cache directory."""
    from recsys.encoding.cache import default_cache_dir

    root = Path(engine.catalogue.root).resolve()
    key = hashlib.sha256(f"{root}\n{models_fingerprint(engine)}".encode()).hexdigest()[:16]
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", root.name).strip("_")[:40] or "catalogue"
    return (Path(cache_dir) if cache_dir else default_cache_dir()) / "stores" / f"{slug}-{key}"


def wants_store(engine: RecommendationEngine, search: str, uri: str | None) -> bool:
    if search not in SEARCH_MODES:
        raise RecsysError(f"unknown search mode {search!r}; choose one of {', '.join(SEARCH_MODES)}")
    if search == "exact":
        return False
    return search == "ann" or bool(uri) or len(engine.catalogue) > EXACT_MAX_ITEMS


def sync_store(
    store: Any,
    engine: RecommendationEngine,
    progress: Progress | None = None,
    keys: ItemKeys | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
) -> tuple[int, int]:
    """Bring ``store`` in step with the engine's catalogue; returns (items written, items deleted).

    ``keys``: each indexed modality's content key per item, as the engine's build computed them
    (else computed here, media hashes remembered under ``cache_dir``). With a joint projection
    (``engine.joint``) each written item also gets its joint vector, and the projection's id is
    part of every item's version: a refitted projection rewrites every item."""
    joint = engine.joint
    if joint is None and JOINT_FIELD in store.fields:
        raise RecsysError("this store has a joint field: attach it with attach_store, which loads its projection")
    fingerprint = models_fingerprint(engine) + (f"|joint={joint.id}" if joint is not None else "")
    items = engine.catalogue.items
    keys = engine_item_keys(engine, cache_dir) if keys is None else keys
    per_item = [keys[m] for m in engine.indexes]
    mark = sync_mark(fingerprint, items, per_item)
    if store.synced_to() == mark:  # this very state was synced, and nothing was written since
        return 0, 0
    wanted = [item_version(item, fingerprint, [k[i] for k in per_item]) for i, item in enumerate(items)]
    have = store.versions()
    todo = [i for i, (item, v) in enumerate(zip(items, wanted, strict=True)) if have.get(item.id) != v]
    current = {item.id for item in items}
    stale = [i for i in have if i not in current]
    if stale:
        store.delete(stale)
    vectors = engine.store_vectors()
    if progress:
        progress(0, len(todo))
    for start in range(0, len(todo), UPSERT_CHUNK):
        rows = np.asarray(todo[start : start + UPSERT_CHUNK], dtype=np.int64)
        chunk = {name: mat[rows] for name, mat in vectors.items()}
        if joint is not None:
            chunk[JOINT_FIELD] = joint.items(chunk)
        store.upsert(
            [items[r].id for r in rows], [items[r].category for r in rows], chunk, versions=[wanted[r] for r in rows]
        )
        if progress:
            progress(min(start + UPSERT_CHUNK, len(todo)), len(todo))
    if todo or stale:
        store.flush()
        log.info("vector store: %d items written, %d deleted", len(todo), len(stale))
    store.mark_synced(mark)
    return len(todo), len(stale)


#: Changes whenever :func:`item_version` or :func:`sync_mark` change what they cover, so that no
#: store synced by an earlier version skips its sync.
SYNC_MARK_FORMAT = 1


def sync_mark(fingerprint: str, items: Sequence[Item], per_item: Sequence[Sequence[str | None]]) -> str:
    """One hash of everything the items' versions (:func:`item_version`) are made of, and of which
    ids there are, in one pass over the catalogue instead of a hash per item: equal marks, equal
    versions for the same ids. Each list of strings is hashed whole with its lengths, which makes the
    hash unambiguous whatever the strings hold (an id may hold a NUL)."""
    h = hashlib.sha256(f"sync {SYNC_MARK_FORMAT}\0{len(items)}\0{fingerprint}".encode("utf-8", "surrogatepass"))
    columns: list[Sequence[str]] = [[it.id for it in items], [it.category for it in items]]
    columns += [[key or "" for key in keys] for keys in per_item]
    for texts in columns:
        h.update(np.fromiter(map(len, texts), dtype=np.int64, count=len(texts)).tobytes())
        h.update("".join(texts).encode("utf-8", "surrogatepass"))
    return h.hexdigest()


def attach_store(
    engine: RecommendationEngine,
    *,
    search: str = "auto",
    uri: str | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    progress: Progress | None = None,
    keys: ItemKeys | None = None,
    **store_options: Any,
) -> RecommendationEngine:
    """Open (or create) the engine's vector store, synchronise it, and switch the engine to it.

    ``keys``: as for :func:`sync_store`. ``store_options`` go to :func:`recsys.store.open_store`
    (e.g. ``exact_below=`` of the local store).
    """
    engine.search = search
    if not wants_store(engine, search, uri):
        return engine
    vectors = engine.store_vectors()
    fields = {name: int(mat.shape[1]) for name, mat in vectors.items()}
    default = default_store_uri(engine, cache_dir)
    joint_file = _joint_path(uri or default, engine, cache_dir)
    engine.joint = joint_projection(vectors, joint_file)
    if engine.joint is not None:
        fields[JOINT_FIELD] = engine.joint.dims
    store = _open_or_rebuild(uri, default, fields, store_options)
    if not uri:  # the product's own store: earlier model sets' stores of this catalogue go, but for the last one
        root = Path(engine.catalogue.root).resolve()
        keep_recent(default, "vector store", root)
        if engine.joint is not None and joint_file is not None and joint_file.is_file():
            keep_recent(joint_file, "joint projection", root)
    sync_store(store, engine, progress, keys, cache_dir)
    engine.store = store
    return engine


def joint_projection(vectors: dict[str, np.ndarray], path: Path | None) -> JointProjection | None:
    """The joint projection kept at ``path``, fitted (and saved, unless ``path`` is None) when missing,
    unreadable or fitted on other fields; None for a catalogue with one field, whose own search
    already is the fused one."""
    if len(vectors) < 2:
        return None
    if path is not None and path.is_file():
        try:
            kept = JointProjection.load(path)
        except RecsysError as exc:
            log.warning("refitting the joint projection: %s", exc)
        else:
            if kept.matches(vectors):
                return kept
            log.warning("refitting the joint projection %s: the catalogue's fields changed", path)
    fitted = JointProjection.fit(vectors)
    if path is not None:
        fitted.save(path)
    log.info("joint projection fitted (%d dims)%s", fitted.dims, f", saved to {path}" if path else "")
    return fitted


def _joint_path(
    uri: str | os.PathLike[str], engine: RecommendationEngine, cache_dir: str | os.PathLike[str] | None
) -> Path | None:
    """Where the joint projection of the store at ``uri`` is kept: under the cache directory, keyed
    by the store's location, the catalogue's folder and the models (a Milvus server's store has one as
    well as a local folder); None for a store in RAM, which lives no longer than its projection."""
    from recsys.encoding.cache import default_cache_dir

    text = os.fspath(uri)
    if text.lower().startswith("memory://"):
        return None
    if "://" not in text:
        text = str(Path(text).resolve())
    root = Path(engine.catalogue.root).resolve()
    key = hashlib.sha256(f"{text}\n{root}\n{models_fingerprint(engine)}".encode()).hexdigest()[:16]
    return (Path(cache_dir) if cache_dir else default_cache_dir()) / "stores" / f"joint-{key}.npz"


def _open_or_rebuild(uri: str | None, default: Path, fields: dict[str, int], options: dict[str, Any]) -> Any:
    """Open the store; the one the product keeps under the cache dir is derived data, so when it is
    damaged (or holds other fields) it is reported in one line, deleted and rebuilt from the
    catalogue. A store the user named is never deleted: its problem is raised as a message."""
    from recsys.store import open_store
    from recsys.store.base import UnusableStoreError

    if uri:
        return open_store(uri, fields, **options)
    try:
        return open_store(default, fields, **options)
    except UnusableStoreError as exc:
        if default.is_symlink() or not default.is_dir():
            raise
        log.warning("rebuilding the vector store %s: %s", default, exc)
        shutil.rmtree(default)
        return open_store(default, fields, **options)
