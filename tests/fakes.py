"""Small deterministic stand-in encoders and an on-disk catalogue builder for fast engine tests.

The fakes are not models: they turn words, colours and tone pitches into vectors so that the
right answer of a query is known exactly. Real encoders are exercised in tests/encoders and in
the slow end-to-end checks on the demo catalogue.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf
from PIL import Image

from recsys.encoders.base import Encoder
from recsys.media import Audio
from recsys.vectors import unit_vectors

COLOURS = {"red": (220, 20, 20), "green": (20, 200, 20), "blue": (20, 20, 220), "yellow": (230, 230, 10)}


def _unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    n = np.linalg.norm(x, axis=-1, keepdims=True)
    return np.divide(x, n, out=np.zeros_like(x), where=n > 0)


class FakeEncoder:
    """Counts calls so tests can check that cached items are not encoded again."""

    def __init__(self, modality: str, dim: int) -> None:
        self.modality = modality
        self.dim = dim
        self.encoder_id = f"{modality}/fake-{dim}"
        self.space = self.encoder_id
        self.device = "cpu"
        self.calls = 0
        self.encoded = 0

    def encode(self, inputs: Sequence, batch_size: int = 32) -> np.ndarray:
        self.calls += 1
        self.encoded += len(inputs)
        return _unit(np.stack([self._vector(x) for x in inputs]))


class FakeTextEncoder(FakeEncoder):
    def __init__(self) -> None:
        super().__init__("text", 64)

    def _vector(self, text: str) -> np.ndarray:
        vec = np.zeros(self.dim)
        for word in text.lower().replace(".", " ").split():
            vec[int(hashlib.md5(word.encode()).hexdigest(), 16) % self.dim] += 1.0
        return vec


class FakeImageEncoder(FakeEncoder):
    def __init__(self) -> None:
        super().__init__("image", 3)

    def _vector(self, image: Image.Image) -> np.ndarray:
        arr = np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0
        return arr.reshape(-1, 3).mean(axis=0) - 0.3


class FakeAudioEncoder(FakeEncoder):
    def __init__(self) -> None:
        super().__init__("audio", 16)

    def _vector(self, audio: Audio) -> np.ndarray:
        spectrum = np.abs(np.fft.rfft(audio.samples))
        freq = np.fft.rfftfreq(len(audio.samples), 1 / audio.sample_rate)[int(np.argmax(spectrum))]
        vec = np.zeros(self.dim)
        vec[min(int(freq // 100), self.dim - 1)] = 1.0
        return vec


#: Registry name of each default encoder -> the modality of the fake that replaces it.
FAKE_NAMES = {"minilm": "text", "efficientnet-lite0": "image", "aisfx": "audio", "aisfx+yamnet": "audio"}


def fake_encoders() -> dict[str, FakeEncoder]:
    return {"text": FakeTextEncoder(), "image": FakeImageEncoder(), "audio": FakeAudioEncoder()}


def write_tone(path: Path, freq: float, seconds: float = 0.5, sr: int = 16000) -> Path:
    t = np.arange(int(seconds * sr)) / sr
    sf.write(path, 0.5 * np.sin(2 * np.pi * freq * t).astype(np.float32), sr)
    return path


def write_square(path: Path, colour: str, size: int = 32) -> Path:
    Image.new("RGB", (size, size), COLOURS[colour]).save(path)
    return path


ROWS = [
    # id, title, description, category, colour, tone Hz
    ("apple", "Apple", "a red apple fruit", "food/fruit", "red", 300),
    ("lime", "Lime", "a green lime fruit", "food/fruit", "green", 500),
    ("car", "Car", "a blue racing car", "vehicles/cars", "blue", 900),
    ("taxi", "Taxi", "a yellow taxi car", "vehicles/cars", "yellow", 1100),
    ("frog", "Frog", "a green frog that croaks", "animals/amphibians", "green", 1300),
    ("note", "Note", "a plain text note", "symbols", None, None),
]


def build_catalogue(root: Path) -> Path:
    """Write a six-item catalogue (images, tones and texts with known matches) under ``root``."""
    (root / "media").mkdir(parents=True, exist_ok=True)
    records = []
    for item_id, title, desc, cat, colour, tone in ROWS:
        image = f"media/{item_id}.png" if colour else ""
        audio = f"media/{item_id}.wav" if tone else ""
        if colour:
            write_square(root / image, colour)
        if tone:
            write_tone(root / audio, tone)
        records.append(
            {"id": item_id, "title": title, "description": desc, "category": cat, "image": image, "audio": audio}
        )
    pd.DataFrame(records).to_csv(root / "catalogue.csv", index=False)
    return root


class _FakeAligner:
    """What the engine asks of an aligner, for fakes that map a fake media embedding into fake text."""

    name = "fake"
    source_modality = ""
    source_encoder_id = ""
    input_kind = "embedding"
    input_dim = 0

    def features(self, encoder: FakeEncoder, inputs: Sequence) -> np.ndarray:
        return encoder.encode(inputs)

    def describe(self) -> str:
        return f"{self.name} ({self.source_modality} -> text)"


class FakeColourAligner(_FakeAligner):
    """Maps a fake image embedding to the fake text embedding of its nearest colour word."""

    name, source_modality, source_encoder_id, input_dim = "fake-colour", "image", "image/fake-3", 3

    def __init__(self, text_encoder: FakeTextEncoder) -> None:
        self.targets = text_encoder.encode(list(COLOURS))
        self.references = _unit(np.array([np.array(c) / 255.0 - 0.3 for c in COLOURS.values()]))

    def transform(self, features: np.ndarray) -> np.ndarray:
        return self.targets[np.argmax(_unit(features) @ self.references.T, axis=1)]


class FakeToneAligner(_FakeAligner):
    """Maps a fake sound embedding (a one-hot pitch bucket) to the fake text embedding of the
    description of the catalogue item with that tone (:data:`ROWS`); other pitches to "silence"."""

    name, source_modality, source_encoder_id, input_dim = "fake-tone", "audio", "audio/fake-16", 16

    def __init__(self, text_encoder: FakeTextEncoder) -> None:
        table = np.repeat(text_encoder.encode(["silence"]), self.input_dim, axis=0)
        for _, _, desc, _, _, tone in ROWS:
            if tone:
                table[min(tone // 100, self.input_dim - 1)] = text_encoder.encode([desc])[0]
        self.table = table

    def transform(self, features: np.ndarray) -> np.ndarray:
        return _unit(np.asarray(features, dtype=np.float32) @ self.table)


class MeanColour:
    """Preprocessor of :class:`TinyImageEncoder`: a picture's mean RGB (picklable, as workers need)."""

    def __call__(self, image: Image.Image) -> np.ndarray:
        return np.asarray(image.convert("RGB"), dtype=np.float32).reshape(-1, 3).mean(axis=0) / 255.0

    def collate(self, items: list[np.ndarray]) -> np.ndarray:
        return np.stack(items)


class TinyImageEncoder(Encoder):
    """A real :class:`~recsys.encoders.Encoder` (preprocessor + forward_batch, two outputs) that counts
    its forward passes and the items they saw; after ``fail_after`` forward calls it raises.

    ``forward_log``: a file each forward pass appends its batch size to, so passes run in other
    processes (Ray actors) can be counted too."""

    modality, encoder_id, space, dim, device = "image", "image/tiny@1", "image/tiny@1", 3, "cpu"
    outputs = ("embedding", "class_proba")
    preprocessor = MeanColour()

    def __init__(self, fail_after: int | None = None, forward_log: Path | None = None) -> None:
        self.forward_calls = 0
        self.forwarded = 0
        self.fail_after = fail_after
        self.forward_log = forward_log

    def output_dims(self) -> dict[str, int]:
        return {"embedding": 3, "class_proba": 4}

    def forward_batch(self, batch) -> dict[str, np.ndarray]:
        if self.fail_after is not None and self.forward_calls >= self.fail_after:
            raise RuntimeError("simulated crash")
        x = np.asarray(batch, dtype=np.float32)
        self.forward_calls += 1
        self.forwarded += len(x)
        if self.forward_log is not None:
            with open(self.forward_log, "a", encoding="utf-8") as fh:
                fh.write(f"{len(x)}\n")
        logits = np.concatenate([x, 1.0 - x.mean(axis=1, keepdims=True)], axis=1) * 5
        proba = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
        return {"embedding": unit_vectors(x - 0.3), "class_proba": proba.astype(np.float32)}

    def _encode_batch(self, batch) -> np.ndarray:
        return self.forward_batch(batch)["embedding"]


def build_image_catalogue(root: Path, n: int) -> Path:
    """``n`` items with distinct solid-colour pictures (and descriptions)."""
    (root / "media").mkdir(parents=True, exist_ok=True)
    records = []
    for i in range(n):
        Image.new("RGB", (16, 16), (10 * i % 256, 255 - 7 * i % 256, 3 * i % 256)).save(root / "media" / f"{i}.png")
        records.append(
            {
                "id": f"i{i}",
                "title": f"Item {i}",
                "description": f"item {i}",
                "category": "c",
                "image": f"media/{i}.png",
                "audio": "",
            }
        )
    pd.DataFrame(records).to_csv(root / "catalogue.csv", index=False)
    return root
