"""Is a query sound speech? A logistic head on the audio encoder's clip embedding.

Why: sound matching compares how things sound, so a spoken "woof woof" is matched to whatever
catalogue clip sounds like a voice (the demo's spoken letter names), never to a dog. The product
cannot understand the words, but it can notice that a clip is speech and say so, pointing the user
to the text box. The head reads the embedding the engine already computes for the query (the
encoder's L2-normalised clip vector), so detection costs one dot product.

The head is a small JSON file (``data/speech/``, built by ``scripts/build_speech_detector.py``)
holding the weights, the decision threshold chosen on validation clips and the id of the encoder
it was trained on. A head trained on another encoder is refused (:class:`SpeechDetectorError`);
the engine then logs one line and gives no note, it never fails a query.
"""

from __future__ import annotations

import functools
import logging
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from recsys.atomic import write_json
from recsys.errors import RecsysError
from recsys.paths import read_format_json

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[1]
#: The shipped head for the default audio encoder (aisfx).
DEFAULT_DETECTOR = REPO_ROOT / "data" / "speech" / "aisfx-speech.json"
FORMAT = "recsys-speech-detector/1"
REBUILD = "python scripts/build_speech_detector.py"


def clear_cache() -> None:
    """Forget the heads read so far (tests, or a head rebuilt while the app runs)."""
    _cached_detector.cache_clear()


class SpeechDetectorError(RecsysError):
    """A speech head that cannot be used: missing, damaged, or trained on another encoder."""


@dataclass(frozen=True)
class SpeechNote:
    """What the app says about a speech-like query sound."""

    probability: float
    threshold: float
    #: What speech recognition heard (:mod:`recsys.alignment.spoken`): the words the clip was matched
    #: by, "" when it heard nothing, None when the clip was not transcribed.
    heard: str | None = None

    @property
    def message(self) -> str:
        if self.heard:
            return f"This clip sounds like speech; heard: '{self.heard}'. Matched by its words."
        advice = "Sound matching compares how things sound, not the words: type the words as text instead."
        if self.heard == "":
            return f"This clip sounds like speech (p = {self.probability:.2f}), but no words were recognised. {advice}"
        return f"This clip sounds like speech (p = {self.probability:.2f}). {advice}"


@dataclass(frozen=True)
class SpeechDetector:
    """``p(speech) = sigmoid(w . x + b)`` on an encoder's unit clip embedding ``x``."""

    encoder_id: str
    weights: np.ndarray
    bias: float
    threshold: float = 0.5
    meta: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)

    def __post_init__(self) -> None:
        w = np.asarray(self.weights, dtype=np.float64)
        if w.ndim != 1 or w.size == 0 or not np.all(np.isfinite(w)):
            raise SpeechDetectorError("A speech detector needs a non-empty vector of finite weights.")
        if not math.isfinite(self.bias) or not 0.0 < self.threshold < 1.0:
            raise SpeechDetectorError(
                f"A speech detector needs a finite bias and a threshold in (0, 1), got {self.bias}, {self.threshold}."
            )
        object.__setattr__(self, "weights", w)

    @property
    def dim(self) -> int:
        return int(self.weights.size)

    def probability(self, embedding: Any) -> float:
        """p(speech) of one clip embedding; :class:`SpeechDetectorError` for a vector it cannot read."""
        try:
            x = np.asarray(embedding, dtype=np.float64).reshape(-1)
        except (TypeError, ValueError) as exc:
            what = type(embedding).__name__
            raise SpeechDetectorError(f"A speech detector takes a vector of numbers, got {what}.") from exc
        if x.size != self.dim:
            raise SpeechDetectorError(f"A speech detector for {self.dim}-d embeddings got a {x.size}-d vector.")
        if not np.all(np.isfinite(x)):
            raise SpeechDetectorError("A speech detector got an embedding with NaN or infinite values.")
        with np.errstate(over="ignore", invalid="ignore"):
            z = float(np.dot(self.weights, x) + self.bias)
        if math.isnan(z):  # huge finite inputs overflow the product into inf - inf
            raise SpeechDetectorError("A speech detector got an embedding too large to score.")
        return 1.0 / (1.0 + math.exp(-z)) if z >= 0 else math.exp(z) / (1.0 + math.exp(z))

    def is_speech(self, embeddings: Any) -> np.ndarray:
        """Which rows of a (clips, dim) matrix of embeddings are speech (p at or above the threshold), in
        one product: a catalogue's clips are flagged at index time. Rows with NaN or infinite values are
        not speech; a matrix of the wrong width is a :class:`SpeechDetectorError`."""
        x = np.asarray(embeddings, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != self.dim:
            raise SpeechDetectorError(f"A speech detector for {self.dim}-d embeddings got an array of shape {x.shape}.")
        finite = np.isfinite(x).all(axis=1)
        with np.errstate(over="ignore", invalid="ignore"):
            z = np.where(finite[:, None], x, 0.0) @ self.weights + self.bias
        # p >= threshold  <=>  z >= logit(threshold); a NaN from overflowing products is not speech
        return finite & (z >= math.log(self.threshold / (1.0 - self.threshold)))

    def note(self, embedding: Any) -> SpeechNote | None:
        """A :class:`SpeechNote` when the clip is speech (p at or above the threshold), else None."""
        p = self.probability(embedding)
        return SpeechNote(p, self.threshold) if p >= self.threshold else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "encoder_id": self.encoder_id,
            "threshold": self.threshold,
            "bias": self.bias,
            "weights": [float(f"{w:.6g}") for w in self.weights],
            "meta": self.meta,
        }


def save_detector(detector: SpeechDetector, path: str | os.PathLike[str]) -> Path:
    return write_json(path, detector.to_dict())


def read_detector(path: str | os.PathLike[str], encoder_id: str | None = None) -> SpeechDetector:
    """The head at ``path``; refused when it is missing, damaged or (given ``encoder_id``) for another encoder."""
    path = Path(path)
    data = read_format_json(
        path,
        FORMAT,
        SpeechDetectorError,
        missing=f"No speech detector at {{path}}; build it with: {REBUILD}",
        unreadable=f"The speech detector {{path}} cannot be read ({{exc}}); rebuild: {REBUILD}",
        wrong=f"{{path}} is not a speech detector ({{fmt}}); rebuild it with: {REBUILD}",
    )
    try:
        detector = SpeechDetector(
            encoder_id=str(data["encoder_id"]),
            weights=np.asarray(data["weights"], dtype=np.float64),
            bias=float(data["bias"]),
            threshold=float(data["threshold"]),
            meta=dict(data.get("meta") or {}),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise SpeechDetectorError(f"The speech detector {path} is damaged ({exc}); rebuild: {REBUILD}") from None
    if encoder_id is not None and detector.encoder_id != encoder_id:
        raise SpeechDetectorError(
            f"The speech detector {path} was trained on the audio encoder {detector.encoder_id}, not "
            f"{encoder_id}; rebuild it for this encoder with: {REBUILD}"
        )
    return detector


def detector_for(encoder_id: str, path: str | os.PathLike[str] | None = None) -> SpeechDetector | None:
    """The head for ``encoder_id`` (from ``path``, default :data:`DEFAULT_DETECTOR`), read once per process;
    None, and one log line, when there is none or it is for another encoder."""
    return _cached_detector(encoder_id, str(path or DEFAULT_DETECTOR))


@functools.lru_cache(maxsize=8)
def _cached_detector(encoder_id: str, path: str) -> SpeechDetector | None:
    try:
        return read_detector(path, encoder_id)
    except SpeechDetectorError as exc:
        log.warning("No speech detection for query sounds: %s", exc)
        return None
