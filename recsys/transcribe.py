"""Offline speech recognition: the words of a spoken clip, as text the text encoder can match.

Why: no sound encoder tells one spoken word from another, so a catalogue clip that *says*
"seven" (the speech detector flags 121 of the demo's 234 clips: spoken letters, digits, rules) is matched by
how a voice sounds, never by what it says. Turned into words, such a clip (or a spoken query)
meets descriptions in the text encoder's space, where "seven" is near "Seven.".

The recogniser is PocketSphinx with the US English acoustic model, language model and
dictionary that its PyPI wheel ships (``pocketsphinx==5.1.1``, BSD-2-Clause, ~30 MB; no
download). It is weak on isolated words, so :class:`Transcript` keeps the distinct words of the
``n_best`` best hypotheses besides the single best one: on the demo's speech clips the 10-best
words gave text->audio R@10 0.43 against 0.11 for the best hypothesis alone (held-out half of
the descriptions; chance 0.08), and half a second of silence around a clip is part of that
setting (``benchmarks/transcribe.py``).

Decoding is single-threaded C: a :class:`Transcriber` holds one decoder, built once (~1 s, it
reads a 27 MB language model) and used under a lock; a batch is decoded clip after clip.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from recsys.errors import InputError, MissingWeightsError
from recsys.media import Audio, Source, load_audio, resampled

PACKAGE = "pocketsphinx==5.1.1"
#: The acoustic model's rate: every clip is resampled to it.
SAMPLE_RATE = 16_000
#: Chosen on half of the demo's descriptions (benchmarks/transcribe.py); see the module docstring.
N_BEST = 10
PAD_SECONDS = 0.5
#: Files of the model folder (inside the pocketsphinx package) that decoding needs.
MODEL_FILES = ("en-us/mdef", "en-us/means", "en-us.lm.bin", "cmudict-en-us.dict")


@dataclass(frozen=True)
class Transcript:
    """What a clip says: ``text`` (the best hypothesis) and ``words`` (distinct words of the n best, best first).

    ``words`` is what to embed for matching: one wrong best guess still leaves the right word
    among the alternatives. Both are empty when nothing was recognised.
    """

    text: str
    words: tuple[str, ...]

    @property
    def search_text(self) -> str:
        """The words as one string, for the text encoder."""
        return " ".join(self.words)

    @property
    def heard(self) -> bool:
        return bool(self.words)


def model_folder() -> Path:
    """The US English model inside the pocketsphinx package; :class:`MissingWeightsError` when absent."""
    try:
        import pocketsphinx
    except ImportError as exc:
        raise MissingWeightsError(f"Speech recognition needs the pocketsphinx package: pip install {PACKAGE}") from exc
    folder = Path(pocketsphinx.get_model_path()) / "en-us"
    missing = [name for name in MODEL_FILES if not (folder / name).is_file()]
    if missing:
        raise MissingWeightsError(
            f"The speech recognition model in {folder} is incomplete (missing {', '.join(missing)}); "
            f"reinstall it: pip install --force-reinstall {PACKAGE}"
        )
    return folder


def pcm16(audio: Audio, pad_seconds: float = PAD_SECONDS) -> bytes:
    """Mono 16-bit PCM at :data:`SAMPLE_RATE`, with ``pad_seconds`` of silence on both sides."""
    y = resampled(audio.samples, audio.sample_rate, SAMPLE_RATE)
    pad = np.zeros(int(round(pad_seconds * SAMPLE_RATE)), dtype=np.float32)
    y = np.concatenate([pad, y, pad])
    return (np.clip(y, -1.0, 1.0) * 32767.0).astype("<i2").tobytes()


class Transcriber:
    """A PocketSphinx decoder, built once; :meth:`transcribe` a clip, :meth:`transcribe_batch` many."""

    def __init__(self, *, n_best: int = N_BEST, pad_seconds: float = PAD_SECONDS) -> None:
        if isinstance(n_best, bool) or not isinstance(n_best, int) or n_best < 1:
            raise InputError(f"n_best must be a whole number of at least 1, got {n_best!r}.")
        if not 0.0 <= float(pad_seconds) <= 5.0:
            raise InputError(f"pad_seconds must be between 0 and 5 seconds, got {pad_seconds!r}.")
        folder = model_folder()
        import pocketsphinx

        try:
            self._decoder = pocketsphinx.Decoder(
                hmm=str(folder / "en-us"),
                lm=str(folder / "en-us.lm.bin"),
                dict=str(folder / "cmudict-en-us.dict"),
                loglevel="FATAL",
            )
        except (RuntimeError, ValueError) as exc:
            raise MissingWeightsError(
                f"The speech recognition model in {folder} cannot be loaded ({exc}); "
                f"reinstall it: pip install --force-reinstall {PACKAGE}"
            ) from exc
        self.n_best = n_best
        self.pad_seconds = float(pad_seconds)
        #: Names the model and the settings, so cached transcripts are never reused across them.
        self.transcriber_id = transcriber_id(n_best=n_best, pad_seconds=self.pad_seconds)
        self._lock = threading.Lock()

    def transcribe(self, clip: Audio | Source) -> Transcript:
        """The words of one clip (an :class:`Audio`, a path or bytes; decoded by :mod:`recsys.media`)."""
        audio = clip if isinstance(clip, Audio) else load_audio(clip)
        if audio.samples.ndim != 1 or audio.samples.size == 0:
            raise InputError("Speech recognition needs a mono clip with at least one sample.")
        data = pcm16(audio, self.pad_seconds)
        with self._lock:
            dec = self._decoder
            dec.start_utt()
            dec.process_raw(data, full_utt=True)
            dec.end_utt()
            best = dec.hyp()
            text = best.hypstr if best is not None and best.hypstr else ""
            hypotheses = [h.hypstr for h in itertools.islice(dec.nbest(), self.n_best) if h is not None and h.hypstr]
        return Transcript(text=text, words=_distinct_words([text, *hypotheses]))

    def transcribe_batch(self, clips: Sequence[Audio | Source]) -> list[Transcript]:
        """:meth:`transcribe` for each clip, in order (one decoder: clip after clip)."""
        if isinstance(clips, str | bytes) or not isinstance(clips, Sequence):
            raise InputError(f"transcribe_batch expects a list of clips, got {type(clips).__name__}.")
        return [self.transcribe(clip) for clip in clips]


def transcriber_id(*, n_best: int = N_BEST, pad_seconds: float = PAD_SECONDS) -> str:
    """The id a :class:`Transcriber` with these settings has, without loading its model (~1 s): a
    rebuild whose transcripts are all cached never builds the decoder. :class:`MissingWeightsError`
    when pocketsphinx is not installed."""
    version = _package_version()
    if version is None:
        raise MissingWeightsError(f"Speech recognition needs the pocketsphinx package: pip install {PACKAGE}")
    return f"asr/pocketsphinx-en-us@{version}/n{n_best}/pad{float(pad_seconds):g}"


def _distinct_words(hypotheses: Sequence[str]) -> tuple[str, ...]:
    """Every word of the hypotheses once, in the order first seen (best hypothesis first)."""
    seen: dict[str, None] = {}
    for hypothesis in hypotheses:
        for word in hypothesis.split():
            seen.setdefault(word, None)
    return tuple(seen)


def _package_version() -> str | None:
    """The installed pocketsphinx's version; None when it is not installed."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("pocketsphinx")
    except PackageNotFoundError:
        return None


_SHARED: dict[tuple[Any, ...], Transcriber] = {}
_SHARED_LOCK = threading.Lock()


def shared_transcriber(*, n_best: int = N_BEST, pad_seconds: float = PAD_SECONDS) -> Transcriber:
    """One :class:`Transcriber` per setting per process (the app and the engine share it)."""
    key = (n_best, float(pad_seconds))
    with _SHARED_LOCK:
        if key not in _SHARED:
            _SHARED[key] = Transcriber(n_best=n_best, pad_seconds=pad_seconds)
        return _SHARED[key]
