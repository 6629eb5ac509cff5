"""Shared fixtures: a tiny, valid on-disk catalogue with real media, built in a temp folder."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from hypothesis import settings

# Property tests run a fixed, repeatable budget in CI; `pytest --hypothesis-profile long` runs
# 10,000 random examples per property (or HYPOTHESIS_PROFILE=long).
settings.register_profile("ci", max_examples=50, deadline=None, derandomize=True)
settings.register_profile("long", max_examples=10_000, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

TINY_RATE = 16_000
REPO = Path(__file__).resolve().parents[1]
DEMO_CATALOGUE = REPO / "data" / "tuxpaint"

# Tests never reach the Hugging Face hub, and share one embedding cache so that the demo
# catalogue is encoded once per machine rather than once per test.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("RECSYS_CACHE_DIR", str(REPO / ".cache" / "test-embeddings"))



def tone(freq: float, seconds: float = 0.5, rate: int = TINY_RATE, chirp: bool = False) -> np.ndarray:
    """A quiet-enough sine (or rising chirp) as float32 mono samples."""
    t = np.arange(int(seconds * rate)) / rate
    phase = 2 * np.pi * (freq * t + (freq * t * t / seconds if chirp else 0.0))
    return (0.5 * np.sin(phase)).astype(np.float32)


def shape_png(path: Path, shape: str, color: tuple[int, int, int], size: tuple[int, int] = (64, 48)) -> Path:
    """A transparent RGBA PNG with one filled shape, like a clip-art stamp."""
    from PIL import Image, ImageDraw

    img = Image.new("RGBA", size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(img)
    box = (4, 4, size[0] - 4, size[1] - 4)
    if shape == "circle":
        draw.ellipse(box, fill=(*color, 255))
    elif shape == "triangle":
        draw.polygon([(size[0] // 2, 4), (4, size[1] - 4), (size[0] - 4, size[1] - 4)], fill=(*color, 255))
    else:
        draw.rectangle(box, fill=(*color, 255))
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path, format="PNG")
    return path


def write_sound(path: Path, samples: np.ndarray, rate: int = TINY_RATE) -> Path:
    """WAV or OGG/Vorbis by the file extension."""
    import soundfile as sf

    path.parent.mkdir(parents=True, exist_ok=True)
    fmt, subtype = ("OGG", "VORBIS") if path.suffix == ".ogg" else ("WAV", "PCM_16")
    sf.write(path, samples, rate, format=fmt, subtype=subtype)
    return path


def build_tiny_catalogue(root: Path) -> Path:
    """Six items over two top categories; every modality mix (image+audio, image, audio, text only)."""
    from recsys.catalogue import write_manifest

    shape_png(root / "images/red-circle.png", "circle", (220, 30, 30))
    shape_png(root / "images/blue-square.png", "square", (30, 60, 220), size=(48, 64))
    shape_png(root / "images/green-triangle.png", "triangle", (30, 180, 60))
    shape_png(root / "images/yellow-circle.png", "circle", (240, 210, 20))
    write_sound(root / "sounds/red-circle.wav", tone(440))
    write_sound(root / "sounds/blue-square.ogg", tone(880))
    write_sound(root / "sounds/bird-song.wav", tone(2000, seconds=0.8, chirp=True))
    rows = [
        (
            "red-circle",
            "Red circle",
            "A red ball.",
            "shapes/round",
            "images/red-circle.png",
            "sounds/red-circle.wav",
        ),
        (
            "blue-square",
            "Blue square",
            "A blue box.",
            "shapes/square",
            "images/blue-square.png",
            "sounds/blue-square.ogg",
        ),
        (
            "green-triangle",
            "Green triangle",
            "A green pointy shape.",
            "shapes/pointy",
            "images/green-triangle.png",
            "",
        ),
        ("yellow-circle", "Yellow circle", "", "shapes/round", "images/yellow-circle.png", ""),
        ("bird-song", "Bird song", "A small bird singing.", "animals/birds", "", "sounds/bird-song.wav"),
        ("dog", "Dog", "A friendly dog that barks.", "animals/mammals", "", ""),
    ]
    keys = ("id", "title", "description", "category", "image", "audio")
    write_manifest(root, [{**dict(zip(keys, r, strict=True)), "price": str(i + 1)} for i, r in enumerate(rows)])
    return root


class MediaFactory:
    """The helpers above, for tests: ``media_factory.tone(440)``, ``media_factory.shape_png(path, ...)``."""

    tone = staticmethod(tone)
    shape_png = staticmethod(shape_png)
    write_sound = staticmethod(write_sound)


@pytest.fixture
def media_factory() -> type[MediaFactory]:
    """Makers of real media files (PNG stamps, WAV/OGG tones) for tests, without import-path tricks."""
    return MediaFactory


@pytest.fixture
def tiny_catalogue(tmp_path: Path) -> Path:
    """Folder of a valid 6-item catalogue (``catalogue.csv`` + real PNG/WAV/OGG files); zero bad rows."""
    return build_tiny_catalogue(tmp_path / "tiny_catalogue")


@pytest.fixture(scope="session")
def demo_catalogue():
    """The committed demo catalogue (data/tuxpaint), loaded once."""
    from recsys.catalogue import load_catalogue

    return load_catalogue(DEMO_CATALOGUE)


@pytest.fixture(scope="session")
def demo_engine(demo_catalogue):
    """The real offline pipeline over the demo catalogue (embeddings cached across runs)."""
    from recsys.pipeline import PipelineConfig, build_engine

    return build_engine(demo_catalogue, PipelineConfig.layered(DEMO_CATALOGUE))


@pytest.fixture
def patched_encoders(monkeypatch):
    """The fake encoders of tests/fakes.py stand in for the registry's default encoders."""
    from fakes import FAKE_NAMES, fake_encoders

    from recsys import pipeline

    encs = fake_encoders()
    monkeypatch.setattr(pipeline, "_create_encoder", lambda name, device: encs[FAKE_NAMES[name]])
    return encs


@pytest.fixture
def fake_engine(tmp_path, patched_encoders):
    """An unaligned engine over the six-item fake catalogue, with its own embedding cache."""
    from fakes import build_catalogue

    from recsys import pipeline
    from recsys.catalogue import load_catalogue

    root = build_catalogue(tmp_path / "cat")
    config = pipeline.PipelineConfig(cache_dir=str(tmp_path / "cache"), image_aligner=None, audio_aligner=None)
    return pipeline.build_engine(load_catalogue(root), config)


@pytest.fixture
def aligned_fake_engine(tmp_path, patched_encoders, monkeypatch):
    """The fake catalogue with its images aligned onto colour words (fakes.FakeColourAligner)."""
    from fakes import FakeColourAligner, build_catalogue

    from recsys import pipeline
    from recsys.catalogue import load_catalogue

    monkeypatch.setattr(pipeline, "_build_aligner", lambda spec, source, text, *_: FakeColourAligner(text))
    root = build_catalogue(tmp_path / "cat")
    config = pipeline.PipelineConfig(cache_dir=str(tmp_path / "cache"), image_aligner="fake", audio_aligner=None)
    return pipeline.build_engine(load_catalogue(root), config)
