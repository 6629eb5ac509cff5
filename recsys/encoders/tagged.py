"""An audio encoder that pairs one model's embeddings with another model's class scores.

Why: the product's audio embedding (aisfx) has no named classes, and the AudioSet tagger (YAMNet)
has classes but weaker embeddings for a learned head. The audio aligner mixes a head on the
first with a label bridge on the second (docs/AUDIO-TAGGERS.md), and the pipeline gives every
modality one encoder whose single pass fills every cache. So this encoder runs both models on each
batch: ``embedding`` from the embedder, ``class_proba`` from the tagger.

Its ``encoder_id`` and ``space`` are the embedder's (the embedding is the embedder's, so its cached
vectors, speech detector and trained heads stay valid); the class scores are cached under the
tagger's id (:meth:`feature_source`, read by :func:`recsys.encoding.feature_id`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from recsys.encoders.base import Encoder, Preprocessor


class PairedPreprocessor(Preprocessor):
    """Each clip through both models' preprocessors; a batch collated per model."""

    def __init__(self, first: Preprocessor, second: Preprocessor) -> None:
        self.first = first
        self.second = second

    def __call__(self, item: Any) -> tuple[Any, Any]:
        return self.first(item), self.second(item)

    def collate(self, items: list[Any]) -> tuple[Any, Any]:
        return self.first.collate([a for a, _ in items]), self.second.collate([b for _, b in items])


class TaggedEncoder(Encoder):
    """``embedding`` of ``embedder`` plus ``class_proba`` (and the class names) of ``tagger``."""

    outputs = ("embedding", "class_proba")

    def __init__(self, embedder: Encoder, tagger: Encoder) -> None:
        if embedder.modality != tagger.modality:
            raise ValueError(f"{embedder.encoder_id} and {tagger.encoder_id} encode different modalities.")
        self.embedder = embedder
        self.tagger = tagger
        self.modality = embedder.modality
        self.encoder_id = embedder.encoder_id
        self.space = embedder.space
        self.dim = embedder.dim
        self.device = embedder.device
        self.class_names: list[str] = list(tagger.class_names)  # type: ignore[attr-defined]
        self.class_synonyms: list[str] = list(getattr(tagger, "class_synonyms", self.class_names))
        self.preprocessor = PairedPreprocessor(embedder.preprocessor, tagger.preprocessor)

    def feature_source(self, output: str) -> Encoder:
        """The model that computes ``output`` (its id keys that output's cache)."""
        return self.tagger if output == "class_proba" else self.embedder

    def forward_batch(self, batch: tuple[Any, Any]) -> dict[str, np.ndarray]:
        return self.launch_batch(batch)()

    def launch_batch(self, batch: tuple[Any, Any]) -> Callable[[], dict[str, np.ndarray]]:
        """The embedder's batch started (on a GPU it computes while the tagger runs and the pipeline
        fetches the next batch), the tagger's computed."""
        first, second = batch
        embedded = self.embedder.launch_batch(first)
        tagged = self.tagger.forward_batch(second)["class_proba"]
        return lambda: {"embedding": embedded()["embedding"], "class_proba": tagged}

    def _encode_batch(self, batch: tuple[Any, Any]) -> np.ndarray:
        return self.embedder.forward_batch(batch[0])["embedding"]

    def output_dims(self) -> dict[str, int]:
        return {"embedding": self.dim, "class_proba": len(self.class_names)}

    def predict_proba(self, inputs: Sequence[Any], batch_size: int = 32) -> np.ndarray:
        """The tagger's class scores of ``inputs`` (the embedder does not run)."""
        return self.tagger.predict_proba(inputs, batch_size)  # type: ignore[attr-defined]
