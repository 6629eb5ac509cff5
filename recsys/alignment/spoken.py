"""Speech matched by its words: a clip the speech detector flags sits at the text embedding of what it says.

Why: no sound encoder tells one spoken word from another, so on the demo catalogue the aligner
matches its 121 speech clips (spoken letters, digits, rules) near chance. For those clips, and for
a spoken query, the shared-space audio vector becomes the unit text-encoder embedding of the
words speech recognition hears (:attr:`recsys.transcribe.Transcript.search_text`), so a spoken
"seven" meets the description "Seven." and a spoken "dog" the dog's picture. The rule, for items
and queries alike:

* flagged: the speech head for the audio encoder (:mod:`recsys.speech`) gives p >= its threshold;
* heard: the transcript has at least one word;
* flagged and heard: the aligner's vector blended with the unit text embedding of the words,
  ``unit(w * words + (1 - w) * aligner)`` at :data:`WORDS_WEIGHT`; otherwise the aligner's vector.

Why a blend and not the words alone: a text embedding of a transcript (even a wrong one, "that's s.
best bash s pets") has higher cosines with every description than the aligner's outputs do, so
speech clips replaced outright crowded the other queries' results (held out on the demo, non-speech
text->audio R@10 0.299 -> 0.243 for the head alone). The weight is chosen on the dev half of the
demo's descriptions (``benchmarks/alignment.py`` reports the choice and the test half).

No head for the audio encoder, or no recogniser installed: :func:`spoken_rule` is None and every
vector stays the aligner's. The engine build (:func:`recsys.pipeline.build_engine`) and the
held-out benchmark (``benchmarks/alignment.py``) both go through :meth:`SpokenWords.items`, so
what is measured is what ships. Catalogue transcripts are cached by clip content and transcriber
(:class:`recsys.encoding.transcripts.TranscriptStore`), seeded from the catalogue's prebuilt data.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from recsys import speech
from recsys.alignment.base import mix
from recsys.errors import RecsysError
from recsys.transcribe import Transcript
from recsys.vectors import unit_vectors

log = logging.getLogger(__name__)

#: The progress stage of transcribing catalogue clips (``progress(STAGE, done, total)``).
STAGE = "audio transcripts"
#: Clips transcribed between two cache writes: a kill loses at most these.
CHUNK = 16
#: Clips left to transcribe before worker processes pay for their start (each loads the ~30 MB model,
#: ~1 s): the recogniser is single-threaded C, so a speech-heavy catalogue is spread over processes.
POOL_MIN_CLIPS = 32
#: Weight of the words' embedding against the aligner's vector for a speech clip (module docstring):
#: on the dev half of the demo's descriptions (80), over the shipped ensemble's held-out vectors,
#: R@10 text->audio / audio->text was 0.425 / 0.458 at 0.25, 0.469 / 0.551 at 0.5, 0.456 / 0.551 at
#: 0.75 and 0.431 / 0.514 at 1 (``benchmarks/alignment.py --modalities audio``, 2026-11-26).
WORDS_WEIGHT = 0.5


def blend(aligner: np.ndarray, words: np.ndarray, weight: float = WORDS_WEIGHT) -> np.ndarray:
    """Unit rows of ``weight * words + (1 - weight) * aligner`` (both unit rows): where a speech clip sits."""
    return mix(words, aligner, weight)


def replace_spoken(
    shared: np.ndarray, flagged: np.ndarray, texts: Sequence[str], text_encoder: Any, weight: float = WORDS_WEIGHT
) -> np.ndarray:
    """``shared`` with each flagged row that has words in ``texts`` moved to their unit text embedding
    (:func:`blend` at ``weight``; 1 puts it at the words).

    Rows not flagged, with empty (or blank) text, or whose embedding is not a finite non-zero vector
    keep their aligner vector. Returns a new float32 array; ``shared`` is not changed.
    """
    out = np.array(shared, dtype=np.float32, copy=True)
    flagged = np.asarray(flagged, dtype=bool).reshape(-1)
    if len(flagged) != len(out) or len(texts) != len(out):
        raise ValueError(f"{len(out)} vectors, {len(flagged)} flags and {len(texts)} texts must be as many")
    rows = np.asarray([i for i in np.flatnonzero(flagged).tolist() if str(texts[i]).strip()], dtype=np.int64)
    if not len(rows):
        return out
    vectors, usable = _embed(text_encoder, [str(texts[i]) for i in rows], out.shape[1])
    out[rows[usable]] = blend(out[rows[usable]], vectors[usable], weight)
    return out


def _embed(text_encoder: Any, texts: Sequence[str], dim: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(unit text embeddings of ``texts``, which of them are finite and non-zero)."""
    vectors = np.asarray(text_encoder.encode([t.strip() for t in texts]), dtype=np.float32)
    if vectors.ndim != 2 or len(vectors) != len(texts) or (dim is not None and vectors.shape[1] != dim):
        raise RecsysError(
            f"The text encoder gave vectors of shape {vectors.shape} for {len(texts)} texts of a {dim}-d space."
        )
    usable = np.isfinite(vectors).all(axis=1)
    vectors = np.where(usable[:, None], vectors, 0.0)
    usable &= np.linalg.norm(vectors, axis=1) > 0
    return unit_vectors(vectors), usable


@dataclass(frozen=True)
class SpokenWords:
    """The rule for one audio encoder: its speech head, the text encoder, and the transcriber (built on first need)."""

    detector: speech.SpeechDetector
    text_encoder: Any
    transcriber_id: str
    make_transcriber: Callable[[], Any]
    #: Worker processes for transcribing a catalogue (past :data:`POOL_MIN_CLIPS` clips); 1: in this process.
    processes: int = 1

    def describe(self) -> str:
        """Names everything the replaced vectors depend on (the vector store's fingerprint)."""
        text_id = getattr(self.text_encoder, "encoder_id", type(self.text_encoder).__name__)
        return (
            f"spoken words: {self.transcriber_id} -> {text_id} on speech p >= {self.detector.threshold:g}, "
            f"words weight {WORDS_WEIGHT:g}"
        )

    def flags(self, embeddings: np.ndarray, present: np.ndarray | None = None) -> np.ndarray:
        """Which rows of the audio encoder's embeddings the head calls speech (absent rows never)."""
        embeddings = np.asarray(embeddings)
        present = np.ones(len(embeddings), dtype=bool) if present is None else np.asarray(present, dtype=bool)
        try:
            return present & self.detector.is_speech(embeddings)
        except speech.SpeechDetectorError as exc:
            log.warning("No speech detection for the catalogue's clips: %s", exc)
            return np.zeros(len(embeddings), dtype=bool)

    # -- catalogue side ------------------------------------------------------------------------------
    def items(
        self,
        shared: np.ndarray,
        embeddings: np.ndarray,
        present: np.ndarray,
        keys: Sequence[str | None],
        sources: Sequence[Any],
        *,
        catalogue_root: str | Path | None = None,
        cache_dir: str | Path | None = None,
        progress: Callable[[int, int], None] | None = None,
        weight: float = WORDS_WEIGHT,
    ) -> tuple[np.ndarray, np.ndarray]:
        """(``shared`` with every flagged clip that says something moved to its words at ``weight``, the flags).

        ``keys``: each row's clip content key (:func:`recsys.encoding.cache.content_key`) and ``sources``
        what the transcriber reads for it (a path); only flagged clips are transcribed, once per content.
        """
        flagged = self.flags(embeddings, present) & np.array([k is not None for k in keys], dtype=bool)
        wanted = {str(keys[i]): sources[i] for i in np.flatnonzero(flagged).tolist()}
        heard = self.transcripts(wanted, catalogue_root=catalogue_root, cache_dir=cache_dir, progress=progress)
        texts = [heard[str(k)].search_text if f and str(k) in heard else "" for k, f in zip(keys, flagged, strict=True)]
        return replace_spoken(shared, flagged, texts, self.text_encoder, weight), flagged

    def transcripts(
        self,
        clips: dict[str, Any],
        *,
        catalogue_root: str | Path | None = None,
        cache_dir: str | Path | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> dict[str, Transcript]:
        """Content key -> transcript for ``clips`` (key -> source): from the cache, then the catalogue's
        prebuilt data, and the rest transcribed (and cached). A clip that cannot be read is left out."""
        from recsys.encoding.transcripts import TranscriptStore
        from recsys.prebuilt import seed_transcripts

        store = TranscriptStore(cache_dir, self.transcriber_id)
        found = store.load(list(clips))
        lacking = [k for k in clips if k not in found]
        if lacking and catalogue_root is not None and seed_transcripts(catalogue_root, store, lacking):
            found = store.load(list(clips))
        todo = [k for k in clips if k not in found]
        if not todo:
            return found
        if progress:
            progress(0, len(todo))
        try:
            heard = self._heard_in_order([clips[k] for k in todo])
            fresh: dict[str, Transcript] = {}
            for done, (key, (transcript, problem)) in enumerate(zip(todo, heard, strict=True), start=1):
                if transcript is not None:
                    fresh[key] = transcript
                else:  # an unreadable clip keeps its sound vector (and is tried again next build)
                    log.warning("Cannot transcribe %s: %s", clips[key], problem)
                if len(fresh) >= CHUNK or done == len(todo):
                    store.append(fresh)
                    found.update(fresh)
                    fresh = {}
                if progress:
                    progress(done, len(todo))
        except RecsysError as exc:  # no recogniser (or a worker could not start one)
            log.warning("%d speech clips keep their sound vectors: %s", len(todo) - len(found), exc)
        return found

    def _heard_in_order(self, sources: Sequence[Any]) -> Iterator[tuple[Transcript | None, str | None]]:
        """(transcript or None, the problem) per source, in order: in this process, or spread over
        :attr:`processes` worker processes (each with its own recogniser) past :data:`POOL_MIN_CLIPS`."""
        processes = min(self.processes, len(sources) // POOL_MIN_CLIPS)
        if processes <= 1:
            transcriber = self.make_transcriber()
            yield from (_transcribe(transcriber, source) for source in sources)
            return
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor
        from concurrent.futures.process import BrokenProcessPool

        # The platform's default start method, as the encoding DataLoader's workers: fork on Linux (the
        # workers call only the recogniser and the audio decoder), spawn where fork is unsafe.
        context = multiprocessing.get_context()
        start = {"initializer": _start_worker, "initargs": (self.make_transcriber,)}
        try:
            with ProcessPoolExecutor(processes, context, **start) as pool:
                yield from pool.map(_worker_transcribe, sources, chunksize=4)
        except BrokenProcessPool as exc:  # e.g. a worker could not load the recogniser
            raise RecsysError(f"the speech recognition workers stopped: {exc}") from exc

    # -- query side ----------------------------------------------------------------------------------
    def hear(self, audio: Any, embedding: Any) -> tuple[speech.SpeechNote | None, np.ndarray | None]:
        """(the speech note, the query's shared-space vector by its words or None) for one query sound.

        Not speech: (None, None). Speech: the note says what was heard (``heard``, "" for nothing);
        the vector is the unit text embedding of the words, None when nothing was heard or the clip
        could not be transcribed (the note then keeps the advice to type the words).
        """
        try:
            note = self.detector.note(embedding)
        except speech.SpeechDetectorError as exc:
            speech.log.warning("No speech detection for this query sound: %s", exc)
            return None, None
        if note is None:
            return None, None
        try:
            transcript = self.make_transcriber().transcribe(audio)
        except RecsysError as exc:
            log.warning("Cannot transcribe the query sound: %s", exc)
            return note, None
        words = transcript.search_text
        if not words.strip():
            return dataclasses.replace(note, heard=""), None
        vector, usable = _embed(self.text_encoder, [words])
        if not usable[0]:
            return dataclasses.replace(note, heard=""), None
        return dataclasses.replace(note, heard=(transcript.text or words).strip()), vector[0]


def _transcribe(transcriber: Any, source: Any) -> tuple[Transcript | None, str | None]:
    try:
        return transcriber.transcribe(source), None
    except RecsysError as exc:
        return None, str(exc)


_WORKER_TRANSCRIBER: Any = None


def _start_worker(make_transcriber: Callable[[], Any]) -> None:
    """A worker process's recogniser, built once (its thread count: one, the recogniser's own)."""
    global _WORKER_TRANSCRIBER
    _WORKER_TRANSCRIBER = make_transcriber()


def _worker_transcribe(source: Any) -> tuple[Transcript | None, str | None]:
    return _transcribe(_WORKER_TRANSCRIBER, source)


def spoken_rule(audio_encoder: Any, text_encoder: Any) -> SpokenWords | None:
    """The rule for ``audio_encoder``; None (one log line) without a speech head for it or a recogniser."""
    from recsys.errors import MissingWeightsError
    from recsys.transcribe import shared_transcriber, transcriber_id

    detector = speech.detector_for(str(getattr(audio_encoder, "encoder_id", "")))
    if detector is None:
        return None
    try:
        tid = transcriber_id()
    except MissingWeightsError as exc:
        log.warning("Speech clips are matched by how they sound, not their words: %s", exc)
        return None
    from recsys.threads import thread_count

    return SpokenWords(detector, text_encoder, tid, shared_transcriber, processes=thread_count("batch"))
