"""On-disk cache of what speech recognition heard in a clip, keyed by the clip's content and the transcriber.

Why: transcribing a speech clip costs ~0.5 s of one core (:mod:`recsys.transcribe`), so a rebuild
of the engine must never transcribe a clip twice. Keys are the content hashes the feature cache
uses (:func:`recsys.encoding.cache.content_key`: the media file's bytes), so renaming or reordering
a catalogue reuses every transcript, and the folder is named by the ``transcriber_id`` (model and
settings), so other settings never read stale words.

Layout and safety follow :class:`recsys.encoding.cache.FeatureStore`: append-only shards
``shard-<seq>-<token>.npz`` (keys, best hypothesis, n-best words), each written atomically and
checked when read (:mod:`recsys.cachefile`); a damaged or foreign shard is reported, removed and
its clips transcribed again. "Nothing heard" is a result and is cached too.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from recsys.cachefile import Spec, discard, load_npz, save_npz
from recsys.encoding.cache import ShardFolder, _slug, default_cache_dir
from recsys.transcribe import Transcript

FOLDER = "transcripts"
_SPECS = {
    "keys": Spec(("n",), kinds="U"),
    "text": Spec(("n",), kinds="U"),
    "words": Spec(("n",), kinds="U"),  # the n-best words joined by single spaces
    "transcriber_id": Spec((), kinds="U"),
}


def _unicode(values: Sequence[str]) -> np.ndarray:
    """A 1-d unicode array (``np.asarray([])`` would be float, which the reader rejects)."""
    return np.asarray(list(values), dtype=np.str_) if values else np.zeros(0, dtype="<U1")


class TranscriptStore:
    """The cached transcripts of one ``transcriber_id``: :meth:`load` any keys, :meth:`append` new ones."""

    def __init__(self, cache_dir: str | Path | None, transcriber_id: str) -> None:
        root = Path(cache_dir) if cache_dir else default_cache_dir()
        self.transcriber_id = transcriber_id
        self.folder = root / FOLDER / _slug(transcriber_id)
        self.writable = True  # False once a write failed: the rest of the run keeps transcripts in memory
        self._shards = ShardFolder(self.folder)

    def load(self, keys: Sequence[str]) -> dict[str, Transcript]:
        """The cached transcript of each of ``keys`` that has one (later shards win)."""
        wanted = set(keys)
        found: dict[str, Transcript] = {}
        what = f"transcript cache {self.transcriber_id}"
        for path in self._shards.files():
            arrays = load_npz(path, _SPECS, what=what)
            if arrays is None:
                continue
            if str(arrays["transcriber_id"]) != self.transcriber_id:
                discard(path, what, f"it holds {str(arrays['transcriber_id'])!r}")
                continue
            for key, text, words in zip(
                *(arrays[n].astype(str).tolist() for n in ("keys", "text", "words")), strict=True
            ):
                if key in wanted:
                    found[key] = Transcript(text=text, words=tuple(words.split()))
        return found

    def append(self, transcripts: Mapping[str, Transcript]) -> Path | None:
        """Write one new shard atomically; a cache that cannot be written is reported once (None returned)."""
        if not transcripts or not self.writable:
            return None
        path = self._shards.new_path()
        keys = list(transcripts)
        self.writable = save_npz(
            path,
            what=f"transcript cache {self.transcriber_id}",
            keys=_unicode(keys),
            text=_unicode([transcripts[k].text for k in keys]),
            words=_unicode([" ".join(transcripts[k].words) for k in keys]),
            transcriber_id=np.asarray(self.transcriber_id),
        )
        return path if self.writable else None
