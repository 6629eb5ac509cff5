"""On-disk cache of per-item features, keyed by content hash and feature id, append-only in shards.

Keys are hashes of the item's *content* (the text, or the media file's bytes), so renaming or
reordering a catalogue reuses everything, editing one item recomputes one item, and a new
encoder (new ``feature_id``) never reads stale vectors.

Layout: one folder per feature id holding ``shard-<seq>-<token>.npz`` files, each the keys and
vectors of one chunk, written atomically (:mod:`recsys.atomic`) and never rewritten. Appending a
chunk costs the chunk alone (rewriting one file with everything was quadratic in the catalogue
size), a ``kill -9`` loses at most the chunk being encoded, and a rerun encodes only the keys no
shard holds. Every shard is checked when read (:mod:`recsys.cachefile`: CRC, dtype, shape, the
encoder's width, finite values, the feature id it was written for); one that fails is reported in
one line, removed and its items recomputed. The single ``<feature id>.npz`` file of earlier
versions is still read, so existing caches stay valid.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import mmap
import os
import re
import secrets
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from recsys import media
from recsys.cachefile import Spec, discard, load_npz, save_npz
from recsys.catalogue import Item
from recsys.errors import InputError
from recsys.stamps import ListMemo, Stamp, StampMemo, StampRows, changed_lately, list_digest, memo_file, stamp
from recsys.workers import map_in_processes

log = logging.getLogger(__name__)

#: Age after which a temporary file of an interrupted shard write is removed (a live write takes ms).
STALE_TMP_S = 3600.0

#: Media files' content hashes are remembered per catalogue folder and modality under this folder of
#: the cache (:func:`catalogue_keys`); FORMAT is bumped if what is hashed ever changes.
DIGEST_FOLDER = "file-digests"
DIGEST_FORMAT = 1
#: A hash is not remembered for a file changed this recently (ns): rewritten again within the same
#: timestamp tick at the same size, it would keep a stale hash (see :mod:`recsys.stamps`).
RACY_NS = 2_000_000_000
#: From this many items a catalogue's whole list of content keys per modality is also kept, under
#: this folder of the cache, and read back while every item's input is unchanged (:func:`catalogue_keys`).
#: FORMAT is bumped if what a key is made of ever changes (:func:`content_key`; DIGEST_FORMAT too).
WHOLE_KEYS_FROM = 10_000
KEYS_FOLDER = "catalogue-keys"
KEYS_FORMAT = 1
#: A per-item feature array of at least this many bytes is kept in a scratch file, not in RAM
#: (:func:`feature_array`): 1 GiB is 210k items of 1,280-d image embeddings.
SCRATCH_MIN_BYTES = 1 << 30


@dataclass(frozen=True)
class Features:
    """Per-item features in catalogue order; rows of items lacking the modality are zero."""

    vectors: np.ndarray
    present: np.ndarray


def feature_array(rows: int, width: int, folder: Path) -> np.ndarray:
    """A zeroed float32 ``(rows, width)`` array for one output's features of every item.

    Why: a build holds each output's features of every item from planning until its matrices are
    derived; at 1M items that is ~11 GB of RAM (image embeddings, class probabilities, text). From
    :data:`SCRATCH_MIN_BYTES` on, the array is a shared mapping of an unlinked file in ``folder`` (the
    cache folder), whose pages the kernel writes back and drops under memory pressure, so the
    build's own memory stays flat in the number of items; the file is gone when the array is, or
    when the process dies. Its space is reserved first, because a write to a mapping on a full disk
    kills the process (SIGBUS); without the space, or on a file system that cannot map it, the
    array stays in RAM with a warning (and quietly on systems without ``posix_fallocate``).
    """
    nbytes = rows * width * 4
    reserve = getattr(os, "posix_fallocate", None)  # not on macOS or Windows: RAM, as before
    if nbytes < SCRATCH_MIN_BYTES or reserve is None:
        return np.zeros((rows, width), dtype=np.float32)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder, prefix=".features-") as fh:
            reserve(fh.fileno(), 0, nbytes)
            mapping = mmap.mmap(fh.fileno(), nbytes)  # keeps its own handle on the file
    except (OSError, ValueError) as exc:
        log.warning(
            "keeping %.1f GB of features in memory: no scratch file in %s (%s)",
            nbytes / 1e9, folder, getattr(exc, "strerror", None) or exc,
        )  # fmt: skip
        return np.zeros((rows, width), dtype=np.float32)
    return np.ndarray((rows, width), dtype=np.float32, buffer=mapping)


def default_cache_dir() -> Path:
    """``RECSYS_CACHE_DIR`` if set, else ``~/.cache/recsys``."""
    env = os.environ.get("RECSYS_CACHE_DIR")
    return Path(env) if env else Path.home() / ".cache" / "recsys"


def key_positions(keys: Sequence[str | None]) -> dict[str, list[int]]:
    """Each key and the positions holding it (None: no key)."""
    positions: dict[str, list[int]] = {}
    for i, key in enumerate(keys):
        if key is not None:
            positions.setdefault(key, []).append(i)
    return positions


def content_key(item: Item, modality: str) -> str | None:
    """Hash of what the encoder of ``modality`` would see for ``item``; None if it has none."""
    if modality == "text":
        text = item.text.strip()
        return hashlib.sha256(text.encode("utf-8")).hexdigest() if text else None
    path = getattr(item, modality)
    return None if path is None else _file_digest(path)


#: Files hashed per task when a catalogue's media files are hashed in worker processes.
HASH_CHUNK = 256


def _file_digest(path: str | os.PathLike[str]) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def content_keys(items: Sequence[Item], modality: str, processes: int = 1) -> list[str | None]:
    """:func:`content_key` of every item, in order.

    With ``processes`` > 1 and more than one chunk of files, media files are hashed in that many
    DataLoader worker processes: per file the work is mostly interpreter overhead, which threads
    cannot share (16 threads on an H100 host hashed 94,900 catalogue pictures in 8.1 s, a quarter
    of the whole indexing pass, while the model ran). Text is hashed in-process.
    """
    if modality == "text" or processes < 2 or len(items) <= HASH_CHUNK:
        return [content_key(item, modality) for item in items]
    paths = [None if getattr(item, modality) is None else str(getattr(item, modality)) for item in items]
    return map_in_processes(_digest_or_none, paths, processes, HASH_CHUNK)


def _digest_or_none(path: str | None) -> str | None:
    return None if path is None else _file_digest(path)


def catalogue_keys(
    items: Sequence[Item],
    modality: str,
    root: str | os.PathLike[str],
    *,
    cache_dir: str | os.PathLike[str] | None = None,
    processes: int = 1,
    stamps: np.ndarray | None = None,
) -> list[str | None]:
    """:func:`content_keys`, with each media file hashed only when its stat stamp changed since a
    pass over catalogue folder ``root`` last hashed it.

    Why: hashing reads every byte of every file on every start (index, app, CLI query): 0.29 ms for a
    313 KB photo here, ~5 minutes of reading at 1M photos, against ~2 us for a ``stat``. The hashes
    live under ``<cache dir>/file-digests/`` (:mod:`recsys.stamps`); a file is stat'ed before it is
    hashed, so one that changes in between is hashed again next time. ``stamps`` (one row per item,
    -1 where it has no file: :meth:`recsys.catalogue.Catalogue.file_stamps`) are those read when the
    items were loaded, also before any hashing: at 1M items a second ``stat`` of each file took ~4 s.

    From :data:`WHOLE_KEYS_FROM` items the whole list is also kept (:class:`recsys.stamps.ListMemo`,
    under ``<cache dir>/catalogue-keys/``), keyed by a digest of every item's text, or of every
    item's file name and its stamp (which ``stamps`` must then give): an unchanged catalogue's keys
    are read back at once.
    """
    cache = cache_dir or default_cache_dir()
    resolved = Path(root).resolve()
    digest = _inputs_digest(items, modality, stamps) if len(items) >= WHOLE_KEYS_FROM else None
    where = memo_file(cache, KEYS_FOLDER, resolved, f"-{modality}")
    whole = ListMemo(where, f"the {modality} content keys of {resolved}", KEYS_FORMAT)
    kept = whole.recall(digest, len(items)) if digest is not None else None
    if kept is not None:
        return kept
    if modality == "text":
        keys = content_keys(items, modality, processes)
    else:
        keys = _media_keys(items, modality, resolved, cache, processes, stamps)
    if digest is not None and (stamps is None or not changed_lately(stamps, RACY_NS)):
        whole.keep(digest, keys)
    return keys


def _inputs_digest(items: Sequence[Item], modality: str, stamps: np.ndarray | None) -> bytes | None:
    """A digest of what every item's ``modality`` key is computed from: its title and description,
    or its file's name and stamp (None without the stamps the load read)."""
    kind = f"{modality}:{DIGEST_FORMAT}".encode()  # a media file's hash, as the per-file memo makes it
    if modality == "text":
        titles, descriptions = [it.title for it in items], [it.description for it in items]
        return list_digest(kind, *_packed(titles), *_packed(descriptions))
    if stamps is None or len(stamps) != len(items):
        return None
    names = ["" if (path := getattr(item, modality)) is None else os.fspath(path) for item in items]
    return list_digest(kind, *_packed(names), np.ascontiguousarray(stamps, dtype=np.int64).tobytes())


def _packed(texts: list[str]) -> tuple[bytes, bytes]:
    """``texts`` as two byte strings that tell them apart: the texts joined, and their lengths."""
    lengths = np.fromiter(map(len, texts), dtype=np.int64, count=len(texts))
    return "".join(texts).encode("utf-8", "surrogatepass"), lengths.tobytes()


def _media_keys(
    items: Sequence[Item],
    modality: str,
    resolved: Path,
    cache_dir: str | os.PathLike[str],
    processes: int,
    stamps: np.ndarray | None,
) -> list[str | None]:
    """Each item's media file hash, through the per-file memo of remembered hashes."""
    where = memo_file(cache_dir, DIGEST_FOLDER, resolved, f"-{modality}")
    memo = StampMemo.load(where, f"the {modality} content hashes of {resolved}", DIGEST_FORMAT, RACY_NS)
    names = [None if (path := getattr(item, modality)) is None else _absolute(path) for item in items]
    first: dict[str, int] = {}  # each file -> the first item using it
    for i, name in enumerate(names):
        if name is not None and name not in first:
            first[name] = i
    if stamps is None:
        stamps = _stamps_now(first)
    else:
        stamps = np.asarray(stamps, dtype=np.int64)[np.fromiter(first.values(), dtype=np.int64, count=len(first))]
    # a file without a stamp (one that cannot be stat'ed) raises when it is hashed, as without the memo
    found = stamps[:, 0] >= 0
    files = list(first)
    stamped = [name for name, ok in zip(files, found.tolist(), strict=True) if ok]
    known = memo.lookup_many([(modality, name) for name in stamped], stamps[found])
    key_of = {name: key for name, key in zip(stamped, known, strict=True) if key is not None}
    row_of = {name: row for row, name in enumerate(files) if name not in key_of}
    todo = list(row_of)
    for name, key in zip(todo, content_keys([items[first[n]] for n in todo], modality, processes), strict=True):
        key_of[name] = key
        if key is not None and found[row_of[name]]:
            memo.remember(modality, name, stamps[row_of[name]], key)
    memo.save()
    return [None if name is None else key_of[name] for name in names]


def _stamps_now(files: Iterable[str]) -> np.ndarray:
    """The stamps of ``files`` as one ``(n, 4)`` array, a row of -1 for a file that cannot be stat'ed."""
    stamps = StampRows()
    for name in files:
        stamps.add(_stamp_or_none(name))
    return stamps.rows()


def _stamp_or_none(name: str) -> Stamp | None:
    """The file's stamp; None where it cannot be stat'ed."""
    try:
        return stamp(os.stat(name))
    except OSError:
        return None


def _absolute(path: str | os.PathLike[str]) -> str:
    """``os.path.abspath(path)``, without its work for a path that already is absolute and normal
    (a catalogue's media paths are: ~1.2 s of a 1M-item start). Normal: none of what ``normpath``
    changes in an absolute POSIX path, ``//`` (but a leading one, which it keeps), ``/./``, ``/../``,
    a trailing ``/``, ``/.`` or ``/..`` (plain string tests: a regular expression took 3.4 s at 1M)."""
    name = os.fspath(path)
    if (
        os.sep == "/"
        and name.startswith("/")
        and "//" not in name[1:]
        and "/./" not in name
        and "/../" not in name
        and not name.endswith(("/.", "/.."))
        and not (len(name) > 1 and name.endswith("/"))
    ):
        return name
    return os.path.abspath(name)


def decode(item: Item, modality: str, *, min_image_side: int | None = None) -> Any:
    """The decoded input an encoder of ``modality`` takes for ``item`` (``min_image_side``: see
    :attr:`recsys.encoders.base.Preprocessor.min_image_side`)."""
    return decode_source(item_source(item, modality), modality, min_image_side=min_image_side)


def item_source(item: Item, modality: str) -> str:
    """What :func:`decode_source` needs for ``item``: its text, or its media file's path (picklable)."""
    if modality == "text":
        return item.text
    if modality in ("image", "audio"):
        return str(getattr(item, modality))
    raise InputError(f"unknown modality '{modality}'; expected text, image or audio")


def decode_source(source: str, modality: str, *, min_image_side: int | None = None) -> Any:
    """Text as is, media files through :mod:`recsys.media` (which raises ``InputError`` on bad files)."""
    if modality == "text":
        return source
    if modality == "image":
        return media.load_image(source, min_side=min_image_side)
    if modality == "audio":
        return media.load_audio(source)
    raise InputError(f"unknown modality '{modality}'; expected text, image or audio")


def _slug(feature_id: str) -> str:
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", feature_id).strip("_")[:80]
    digest = hashlib.sha256(feature_id.encode("utf-8")).hexdigest()[:12]
    return f"{slug}-{digest}"


def _sequence(shard: Path) -> int:
    """``shard-000123-1f2e3d4c.npz`` -> 123 (-1 for a name we did not write)."""
    part = shard.name.split("-")[1] if shard.name.count("-") >= 2 else ""
    return int(part) if part.isdigit() else -1


class ShardFolder:
    """The shard files of one cache folder, oldest first, and the name of the next one.

    The folder is listed once for naming: per append it would cost a listing of every shard so far
    (a million items make ~4,000 shards per output). Another process appending to the same folder
    may then pick the same sequence number; the random token keeps the names apart, and both hold
    vectors of the same contents, so which of them counts as later does not matter.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._next_sequence: int | None = None

    def files(self) -> list[Path]:
        found = self.folder.glob("shard-*.npz") if self.folder.is_dir() else []
        return sorted(found, key=lambda p: (_sequence(p), p.name))

    def new_path(self) -> Path:
        if self._next_sequence is None:
            existing = self.files()
            self._next_sequence = _sequence(existing[-1]) + 1 if existing else 0
        seq = self._next_sequence
        self._next_sequence += 1
        return self.folder / f"shard-{seq:06d}-{secrets.token_hex(4)}.npz"


class FeatureStore:
    """The cached vectors of one feature id: append chunks, load the rows of any keys in any order."""

    def __init__(self, cache_dir: str | os.PathLike[str] | None, feature_id: str, dim: int | None = None) -> None:
        """``dim``: the width every cached vector must have (the encoder's); None trusts the first shard."""
        root = Path(cache_dir) if cache_dir else default_cache_dir()
        self.feature_id = feature_id
        self.dim = dim
        self.root = root
        self.folder = root / _slug(feature_id)
        self.legacy_file = root / f"{_slug(feature_id)}.npz"
        self.writable = True  # False once a write failed: the rest of the run keeps vectors in memory
        self._shards = ShardFolder(self.folder)

    def shards(self) -> list[Path]:
        """Cache files oldest first: the legacy single file, then shards by sequence number."""
        return ([self.legacy_file] if os.path.lexists(self.legacy_file) else []) + self._shards.files()

    def _load(self, path: Path, width: int | None) -> tuple[np.ndarray, np.ndarray] | None:
        """Keys and vectors of one shard, or None (reported and removed) when it is not exactly ours."""
        specs = {
            "keys": Spec(("n",), kinds="U"),
            "vectors": Spec(("n", width if width is not None else "d")),
            "feature_id": Spec((), kinds="U", optional=True),  # absent from shards of earlier versions
        }
        arrays = load_npz(path, specs, what=f"feature cache {self.feature_id}")
        if arrays is None:
            return None
        if "feature_id" in arrays and str(arrays["feature_id"]) != self.feature_id:
            discard(path, f"feature cache {self.feature_id}", f"it holds {str(arrays['feature_id'])!r}")
            return None
        return arrays["keys"].astype(str), arrays["vectors"].astype(np.float32, copy=False)

    def _remove_stale_temporaries(self) -> None:
        """A ``kill -9`` mid-write leaves ``.shard-*.tmp`` behind (never a shard); clear old ones."""
        if not self.folder.is_dir():
            return
        cutoff = time.time() - STALE_TMP_S
        for tmp in self.folder.glob(".shard-*.tmp"):
            with contextlib.suppress(OSError):  # gone already, or another process's
                if tmp.stat().st_mtime < cutoff:
                    tmp.unlink()

    def append(self, keys: Sequence[str], vectors: np.ndarray) -> Path | None:
        """Write one new shard atomically; the random token keeps concurrent writers apart. A cache
        that cannot be written is reported once and the vectors stay in memory (None returned)."""
        vectors = np.asarray(vectors, dtype=np.float32)
        if len(keys) != len(vectors):
            raise ValueError(f"{len(keys)} keys for {len(vectors)} vectors")
        if not self.writable:
            return None
        path = self._shards.new_path()
        arrays = {"keys": np.asarray(list(keys), dtype=str), "vectors": vectors}
        self.writable = save_npz(
            path, what=f"feature cache {self.feature_id}", **arrays, feature_id=np.asarray(self.feature_id)
        )
        return path if self.writable else None

    def blank(self, rows: int, width: int) -> np.ndarray:
        """Zeroed rows to load or fill features into (a large array is a scratch file: :func:`feature_array`)."""
        return feature_array(rows, width, self.root)

    def load(self, keys: Sequence[str | None], positions: Mapping[str, list[int]] | None = None) -> Features:
        """Rows for ``keys`` in order (later shards win), reading every shard once; memory is the
        result plus one shard. Vectors are ``dim`` wide (zero-wide when unknown and nothing is cached).
        ``positions`` (:func:`key_positions` of ``keys``) saves working them out again."""
        rows = key_positions(keys) if positions is None else positions
        present = np.zeros(len(keys), dtype=bool)
        out = self.blank(len(keys), self.dim or 0)
        width = self.dim
        self._remove_stale_temporaries()
        for path in self.shards():
            loaded = self._load(path, width)
            if loaded is None:
                continue
            shard_keys, vectors = loaded
            if width is None:  # no expected width: the first readable shard sets it
                width = vectors.shape[1]
                out = self.blank(len(keys), width)
            for row, key in enumerate(shard_keys.tolist()):
                targets = rows.get(key)
                if targets:
                    out[targets] = vectors[row]
                    present[targets] = True
        return Features(out, present)
