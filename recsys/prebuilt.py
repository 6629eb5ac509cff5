"""Derived data shipped with a catalogue (``<catalogue>/prebuilt/``), so that a fresh clone starts in seconds.

Encoding the 950-item demo catalogue (texts, pictures, sounds, and the class probabilities of the
label bridge) took ~19 minutes on a busy 2-core machine, and its first map another minute. The
folder holds what those produce, every part keyed so that it is used only where it is right:

- feature rows, float16: one file per feature id (the encoder id, which names the model and a
  hash of its weights, plus the output), each row keyed by the item content hash the cache uses;
- the label bridge's class-name embeddings, under their own cache name (text encoder, prompts, classes);
- Explore's default maps, keyed by their parameters, strata and a sketch of the vectors drawn;
- what speech recognition heard in the speech clips, keyed by clip content and transcriber
  (:func:`seed_transcripts`, read by :mod:`recsys.alignment.spoken`);
- ``manifest.json``: every file with its sha256, shape and dtype, and a hash of the catalogue's content.

At load, :func:`seed_cache` (called by :func:`recsys.pipeline.build_engine`) checks the shipped
data against the configured encoders and the catalogue and appends the rows the normal cache lacks
to it (:class:`recsys.encoding.cache.FeatureStore`), so nothing downstream changes; :func:`seed_map` does the
same for a map about to be computed. Anything stale (other encoders, edited items) or damaged
(checksum, shape, dtype) is named in one log line and computed normally.
``scripts/build_demo_cache.py`` writes the folder (:func:`export_features`, :func:`add_map`).
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from recsys import atomic
from recsys.alignment.bridge import bridge_class_names, bridge_parents, class_text_cache_file
from recsys.encoding import feature_id
from recsys.encoding.cache import FeatureStore, catalogue_keys, content_keys
from recsys.encoding.transcripts import TranscriptStore
from recsys.transcribe import Transcript

if TYPE_CHECKING:  # pragma: no cover
    from recsys.catalogue import Catalogue
    from recsys.maps import MapVectors, ProjectionParams

log = logging.getLogger(__name__)

FORMAT = "recsys-prebuilt/1"
FOLDER = "prebuilt"
MANIFEST = "manifest.json"
#: The speech clips' transcripts (:mod:`recsys.alignment.spoken`), keyed by clip content, per transcriber.
TRANSCRIPTS_FILE = "audio-transcripts.npz"
#: Columns of a map's vector sketch (a seeded random projection): enough to tell other vectors apart.
SKETCH_DIMS = 8
SKETCH_SEED = 20261125
#: Largest sketch difference still "the same vectors": float16 storage and another machine's
#: arithmetic move it by ~1e-3; an edited item moves its row by ~1.
SKETCH_TOLERANCE = 0.02
_SHIPPED_DTYPE = np.float16


class _Unusable(Exception):
    """A shipped file that is missing, damaged or not what the manifest says."""


@dataclass
class SeedReport:
    """What :func:`seed_cache` did: rows appended to the cache, parts used, and why others were not."""

    rows: int = 0
    used: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def log(self, folder: Path) -> None:
        if self.problems:
            log.warning("%s not used for: %s; computing that normally", folder, "; ".join(self.problems))
        if self.used:
            log.info("seeded the cache from %s: %s (%d rows)", folder, ", ".join(self.used), self.rows)


def prebuilt_dir(catalogue_root: str | Path) -> Path:
    return Path(catalogue_root) / FOLDER


def keys_by_modality(
    catalogue: Catalogue, modalities: Sequence[str], cache_dir: str | Path | None = None
) -> dict[str, list[str | None]]:
    """Each item's cache key per modality (``None`` where it has none); unchanged media files are not
    read again (:func:`recsys.encoding.cache.catalogue_keys`)."""
    return {
        m: catalogue_keys(catalogue.items, m, catalogue.root, cache_dir=cache_dir, stamps=catalogue.file_stamps(m))
        for m in modalities
    }


def catalogue_hash(keys: Mapping[str, Sequence[str | None]]) -> str:
    """Order-free hash of everything the encoders see, every (modality, content key): renaming or
    reordering items keeps it, editing a text or a media file changes it."""
    pairs = sorted({f"{m}:{k}" for m, ks in keys.items() for k in ks if k is not None})
    return hashlib.sha256("\n".join(pairs).encode("utf-8")).hexdigest()


def sketch(vectors: np.ndarray) -> np.ndarray:
    """``(n, SKETCH_DIMS)``: the rows through a fixed random projection (PCG64 is the same everywhere)."""
    vectors = np.asarray(vectors, dtype=np.float32)
    basis = np.random.default_rng(SKETCH_SEED).standard_normal((vectors.shape[1], SKETCH_DIMS)).astype(np.float32)
    return vectors @ basis


def groups_hash(groups: Sequence[str] | None) -> str | None:
    return None if groups is None else hashlib.sha256("\x1f".join(map(str, groups)).encode("utf-8")).hexdigest()


# -- reading --------------------------------------------------------------------------------------------
def read_manifest(folder: Path) -> dict[str, Any] | None:
    """The folder's manifest; None when there is none. Raises :class:`_Unusable` when it is damaged."""
    path = folder / MANIFEST
    if not path.is_file():
        return None
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise _Unusable(f"{MANIFEST} is unreadable ({type(exc).__name__}: {exc})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise _Unusable(f"{MANIFEST} is not in format {FORMAT}")
    return manifest


def _verified_bytes(folder: Path, entry: Mapping[str, Any]) -> bytes:
    name = str(entry.get("file", ""))
    if not name or Path(name).name != name:
        raise _Unusable(f"bad file name {name!r} in {MANIFEST}")
    try:
        data = (folder / name).read_bytes()
    except OSError as exc:
        raise _Unusable(f"{name} is unreadable ({exc.strerror or exc})") from None
    if hashlib.sha256(data).hexdigest() != entry.get("sha256"):
        raise _Unusable(f"{name} is damaged (checksum mismatch)")
    return data


def _arrays(folder: Path, entry: Mapping[str, Any], names: Sequence[str]) -> dict[str, np.ndarray]:
    """The named arrays of a shipped file whose checksum matches the manifest."""
    data = _verified_bytes(folder, entry)
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            return {name: np.asarray(npz[name]) for name in names}
    except Exception as exc:  # zip / npy parsing raises a dozen types on a foreign file
        raise _Unusable(f"{entry['file']} is unreadable ({type(exc).__name__}: {exc})") from None


def _checked_vectors(name: str, vectors: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    if vectors.dtype != _SHIPPED_DTYPE or vectors.shape != shape:
        raise _Unusable(f"{name} holds {vectors.dtype} {vectors.shape}, expected {np.dtype(_SHIPPED_DTYPE)} {shape}")
    out = vectors.astype(np.float32)
    if not np.isfinite(out).all():
        raise _Unusable(f"{name} holds NaN or infinite values")
    return out


def _feature_rows(folder: Path, entry: Mapping[str, Any]) -> tuple[list[str], np.ndarray]:
    arrays = _arrays(folder, entry, ("keys", "vectors"))
    keys = arrays["keys"]
    if keys.ndim != 1 or keys.dtype.kind not in "SU":
        raise _Unusable(f"{entry['file']} has keys of dtype {keys.dtype} and shape {keys.shape}")
    vectors = _checked_vectors(entry["file"], arrays["vectors"], (len(keys), int(entry["dim"])))
    return keys.astype(str).tolist(), vectors


# -- seeding the caches ---------------------------------------------------------------------------------
def seed_cache(
    catalogue: Catalogue,
    encoders: Mapping[str, Any],
    *,
    cache_dir: str | Path | None = None,
    precision: str = "fp32",
) -> SeedReport:
    """Append the shipped rows the cache lacks for ``catalogue`` with these encoders (modality -> encoder).

    A part built with other encoders, a damaged file, or items edited since the build are named in
    one warning line; those rows are left to the normal encoding pass. Silent when there is no
    shipped data or the cache already holds everything. The label bridge's class-name embeddings go
    where :class:`recsys.alignment.LabelBridge` reads them (``cache_dir`` too).
    """
    folder = prebuilt_dir(catalogue.root)
    report = SeedReport()
    try:
        manifest = read_manifest(folder)
    except _Unusable as exc:
        report.problems.append(str(exc))
        manifest = None
    if manifest is not None:
        modalities = sorted({str(e.get("modality")) for e in manifest.get("features", [])} & set(encoders))
        keys = keys_by_modality(catalogue, modalities, cache_dir)
        stale = 0
        for entry in manifest.get("features", []):
            if entry.get("modality") in keys:
                stale = max(stale, _seed_feature(folder, entry, encoders, keys, cache_dir, precision, report))
        _seed_bridge(folder, manifest, encoders, report, cache_dir)
        if stale and catalogue_hash(keys) != manifest.get("catalogue"):
            report.problems.append(f"{stale} item(s) new or edited since it was built")
    report.log(folder)
    return report


def _seed_feature(
    folder: Path,
    entry: Mapping[str, Any],
    encoders: Mapping[str, Any],
    keys: Mapping[str, list[str | None]],
    cache_dir: str | Path | None,
    precision: str,
    report: SeedReport,
) -> int:
    """Seed one shipped feature file; returns how many needed rows it does not hold (edited items)."""
    modality, output = str(entry["modality"]), str(entry.get("output", "embedding"))
    wanted = feature_id(encoders[modality], output, precision)
    store = FeatureStore(cache_dir, wanted)
    needed = list(dict.fromkeys(k for k in keys[modality] if k is not None))
    lacking = [k for k, ok in zip(needed, store.load(needed).present, strict=True) if not ok]
    if not lacking:
        return 0
    if wanted != entry.get("feature_id"):
        problem = f"{modality} ({output}): built with {entry.get('feature_id')}, configured {wanted}"
        report.problems.append(problem)
        return 0
    try:
        shipped, vectors = _feature_rows(folder, entry)
    except _Unusable as exc:
        report.problems.append(str(exc))
        return 0
    index = {k: i for i, k in enumerate(shipped)}
    found = [k for k in lacking if k in index]
    if found:
        store.append(found, vectors[[index[k] for k in found]])
        report.rows += len(found)
        report.used.append(wanted)
    return len(lacking) - len(found)


def _seed_bridge(
    folder: Path,
    manifest: Mapping[str, Any],
    encoders: Mapping[str, Any],
    report: SeedReport,
    cache_dir: str | Path | None,
) -> None:
    text = encoders.get("text")
    shipped = {str(e.get("file")): e for e in manifest.get("label_bridge", [])}
    for modality, encoder in encoders.items():
        names = bridge_class_names(encoder) if modality != "text" and text is not None else None
        if not names:
            continue
        target = class_text_cache_file(names, text, cache_dir, parents=bridge_parents(encoder))
        if target.exists():
            continue
        entry = shipped.get(target.name)
        if entry is None:
            if shipped:
                report.problems.append(f"label bridge: built for other encoders or prompts (no {target.name})")
            continue
        try:
            emb = _arrays(folder, entry, ("embeddings",))["embeddings"]
            emb = _checked_vectors(target.name, emb, (len(names), int(getattr(text, "dim", emb.shape[-1]))))
        except _Unusable as exc:
            report.problems.append(str(exc))
            continue
        atomic.write_npz(target, embeddings=emb)
        report.used.append(f"label bridge {target.name}")


def seed_transcripts(catalogue_root: str | Path, store: TranscriptStore, needed: Sequence[str]) -> int:
    """Append the shipped transcripts of ``needed`` clip keys that ``store`` lacks; returns how many.

    Only a part made by the same transcriber (``transcriber_id``: model and settings) is used; a
    damaged one is named in one log line and its clips are transcribed normally.
    """
    folder = prebuilt_dir(catalogue_root)
    try:
        manifest = read_manifest(folder)
    except _Unusable as exc:
        log.warning("%s not used for transcripts: %s", folder, exc)
        return 0
    wanted = set(needed)
    for entry in (manifest or {}).get("transcripts", []):
        if entry.get("transcriber_id") != store.transcriber_id:
            continue
        try:
            arrays = _arrays(folder, entry, ("keys", "text", "words"))
            if len({a.shape for a in arrays.values()}) != 1 or any(
                a.ndim != 1 or a.dtype.kind != "U" for a in arrays.values()
            ):
                raise _Unusable(f"{entry['file']} does not hold three equal-length lists of words")
        except _Unusable as exc:
            log.warning("%s not used for transcripts: %s; transcribing normally", folder, exc)
            return 0
        rows = zip(*(arrays[n].tolist() for n in ("keys", "text", "words")), strict=True)
        found = {k: Transcript(text=t, words=tuple(w.split())) for k, t, w in rows if k in wanted}
        store.append(found)
        if found:
            log.info("seeded %d transcripts from %s", len(found), folder)
        return len(found)
    return 0


def seed_map(
    catalogue_root: str | Path,
    vectors: np.ndarray | MapVectors,
    params: ProjectionParams,
    groups: Sequence[str] | None,
    target: Path,
) -> bool:
    """Write the shipped map drawn from ``vectors`` (same parameters and strata, sketches within
    :data:`SKETCH_TOLERANCE`) to ``target``, the map cache file :func:`recsys.maps.project` reads.
    A :class:`~recsys.maps.MapVectors` is gathered only when a shipped map has its shape (a map of
    a user's million items is never gathered whole just to find nothing shipped).

    False when ``target`` exists or nothing shipped matches; a damaged map is named in one log line.
    """
    if target.exists():
        return False
    folder = prebuilt_dir(catalogue_root)
    try:
        manifest = read_manifest(folder)
    except _Unusable as exc:
        log.warning("%s not used for maps: %s", folder, exc)
        return False
    rows, dim = vectors.shape
    gathered: np.ndarray | None = None
    for entry in (manifest or {}).get("maps", []):
        same = (
            entry.get("params") == asdict(params)
            and entry.get("rows") == rows
            and entry.get("dim") == dim
            and entry.get("groups") == groups_hash(groups)
        )
        if not same:
            continue
        if gathered is None:
            gathered = np.asarray(vectors if isinstance(vectors, np.ndarray) else vectors.all(), dtype=np.float32)
        try:
            data = _verified_bytes(folder, entry)
            with np.load(io.BytesIO(data), allow_pickle=False) as npz:
                shipped = np.asarray(npz["sketch"], dtype=np.float32)
        except (_Unusable, KeyError, ValueError, OSError) as exc:
            log.warning("%s not used for the %s map: %s; computing it normally", folder, entry.get("source"), exc)
            continue
        close = shipped.shape == (rows, SKETCH_DIMS)
        if close and np.allclose(shipped, sketch(gathered), atol=SKETCH_TOLERANCE, rtol=0):
            atomic.write_bytes(target, data)
            log.info("seeded the %s map from %s", entry.get("source"), folder)
            return True
    return False


# -- writing (scripts/build_demo_cache.py) -------------------------------------------------------------
def _file_entry(path: Path, **meta: Any) -> dict[str, Any]:
    return {"file": path.name, "sha256": hashlib.sha256(path.read_bytes()).hexdigest(), **meta}


def export_features(
    catalogue: Catalogue,
    encoders: Mapping[str, Any],
    outputs: Mapping[str, Sequence[str]],
    folder: Path,
    *,
    cache_dir: str | Path | None = None,
    precision: str = "fp32",
) -> dict[str, Any]:
    """Write the cached rows of ``outputs`` (modality -> output names) for the catalogue, and the label
    bridge's class-name embeddings when cached, into ``folder`` as float16; return the manifest.

    Reads the cache only: build the engine first. Items with no cached row are left out.
    """
    folder.mkdir(parents=True, exist_ok=True)
    keys = keys_by_modality(catalogue, sorted(outputs), cache_dir)
    manifest: dict[str, Any] = {
        "format": FORMAT,
        "catalogue": catalogue_hash(keys),
        "items": len(catalogue),
        "features": [],
        "label_bridge": [],
        "maps": [],
    }
    for modality, names in sorted(outputs.items()):
        needed = list(dict.fromkeys(k for k in keys[modality] if k is not None))
        for output in names:
            fid = feature_id(encoders[modality], output, precision)
            feats = FeatureStore(cache_dir, fid).load(needed)
            rows = [k for k, ok in zip(needed, feats.present, strict=True) if ok]
            vectors = feats.vectors[feats.present].astype(_SHIPPED_DTYPE)
            path = folder / f"{modality}-{output}.npz"
            atomic.write_npz(path, compressed=True, keys=np.asarray(rows, dtype=np.bytes_), vectors=vectors)
            entry = _file_entry(path, feature_id=fid, modality=modality, output=output)
            manifest["features"].append({**entry, "rows": len(rows), "dim": int(vectors.shape[1])})
    text = encoders.get("text")
    for modality, encoder in sorted(encoders.items()):
        names = bridge_class_names(encoder) if modality != "text" and text is not None else None
        source = class_text_cache_file(names, text, cache_dir, parents=bridge_parents(encoder)) if names else None
        if source is None or not source.is_file():
            continue
        with np.load(source, allow_pickle=False) as data:
            emb = np.asarray(data["embeddings"], dtype=_SHIPPED_DTYPE)
        path = folder / source.name
        atomic.write_npz(path, compressed=True, embeddings=emb)
        manifest["label_bridge"].append(_file_entry(path, rows=int(emb.shape[0]), dim=int(emb.shape[1])))
    return manifest


def export_transcripts(
    catalogue: Catalogue,
    transcriber_id: str,
    folder: Path,
    manifest: dict[str, Any],
    *,
    cache_dir: str | Path | None = None,
) -> int:
    """Ship the cached transcripts of the catalogue's clips (:class:`TranscriptStore`) made by ``transcriber_id``;
    returns how many (none cached: nothing written)."""
    needed = list(dict.fromkeys(k for k in content_keys(catalogue.items, "audio") if k is not None))
    found = TranscriptStore(cache_dir, transcriber_id).load(needed)
    if not found:
        return 0
    keys = sorted(found)
    path = folder / TRANSCRIPTS_FILE
    atomic.write_npz(
        path,
        compressed=True,
        keys=np.asarray(keys, dtype=np.str_),
        text=np.asarray([found[k].text for k in keys], dtype=np.str_),
        words=np.asarray([" ".join(found[k].words) for k in keys], dtype=np.str_),
    )
    manifest.setdefault("transcripts", []).append(_file_entry(path, transcriber_id=transcriber_id, rows=len(keys)))
    return len(keys)


def add_map(
    folder: Path,
    manifest: dict[str, Any],
    *,
    source: str,
    weights: Mapping[str, float] | None,
    params: ProjectionParams,
    vectors: np.ndarray,
    groups: Sequence[str] | None,
    map_file: Path,
) -> None:
    """Ship the map cache file ``map_file`` (drawn from ``vectors``) with a sketch of those vectors.

    Stored uncompressed: :func:`seed_map` copies it as is into the map cache.
    """
    with np.load(map_file, allow_pickle=False) as data:
        arrays = {name: np.asarray(data[name]) for name in data.files}
    arrays["sketch"] = sketch(vectors).astype(_SHIPPED_DTYPE)
    path = folder / f"map-{source}.npz"
    atomic.write_npz(path, **arrays)
    meta = {"source": source, "weights": dict(weights or {}), "params": asdict(params), "groups": groups_hash(groups)}
    manifest["maps"].append(_file_entry(path, rows=len(vectors), dim=int(np.shape(vectors)[1]), **meta))


def write_manifest(folder: Path, manifest: Mapping[str, Any]) -> Path:
    return atomic.write_json(folder / MANIFEST, manifest)
