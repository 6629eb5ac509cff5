"""Hostile catalogues through ``python -m recsys`` (issue 12): manifests, damaged caches, media that
pass the load-time check but fail to decode.

A catalogue that is unusable as a whole exits 2 with one ``error:`` line; bad rows, damaged caches and
undecodable files cost only those rows, files or vectors: exit 0, one line each, never a traceback,
and the answer of a clean run. The fake encoders of fakes.py stand in for the models.
"""

from __future__ import annotations

import io
import json
import logging
import os
import shutil
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from fakes import FAKE_NAMES, TinyImageEncoder, fake_encoders, write_square
from PIL import Image

from recsys import pipeline, snapshot
from recsys.cli import main


def run(capsys, caplog, argv: list[str]) -> tuple[int, str, list[str]]:
    """Exit code, stdout, and the warning lines (CLI ``warning:`` lines and logged warnings)."""
    caplog.clear()
    code = main(argv)
    out, err = capsys.readouterr()
    assert "Traceback" not in err + out
    warnings = [line for line in err.splitlines() if line.startswith(("warning:", "error:"))]
    warnings += [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    return code, out, warnings


def edit_manifest(root: Path, old: str, new: str) -> None:
    manifest = root / "catalogue.csv"
    text = manifest.read_text(encoding="utf-8")
    assert old in text
    manifest.write_text(text.replace(old, new, 1), encoding="utf-8")


def _swap_lime_image(root: Path, name: str) -> None:
    edit_manifest(root, "media/lime.png", name)


# -- manifests ---------------------------------------------------------------------------------------
ROW_CASES = {
    # name: (how to spoil the lime row, words its one warning line must hold)
    "unbalanced quote": (lambda r: edit_manifest(r, "Lime,", '"Lime,'), ["row 3", "unbalanced quote", "swallows"]),
    "1 MB title": (lambda r: edit_manifest(r, "Lime,", "L" * 1_000_000 + ","), ["row 3", "title", "limit"]),
    "300-char media name": (lambda r: _swap_lime_image(r, "media/" + "x" * 300 + ".png"), ["row 3", "too long"]),
    "NUL in media path": (lambda r: _swap_lime_image(r, "media/li\0me.png"), ["row 3", "NUL byte"]),
    "folder as media": (lambda r: ((r / "media/d.png").mkdir(), _swap_lime_image(r, "media/d.png")), ["folder"]),
    "FIFO as media": (lambda r: (os.mkfifo(r / "media/f.png"), _swap_lime_image(r, "media/f.png")), ["FIFO"]),
    "symlink loop as media": (
        lambda r: (os.symlink("l.png", r / "media/l.png"), _swap_lime_image(r, "media/l.png")),
        ["symlink loop"],
    ),
}


@pytest.mark.parametrize("case", list(ROW_CASES))
def test_bad_manifest_rows_are_skipped_and_reported(catalogue, capsys, caplog, case):
    spoil, words = ROW_CASES[case]
    spoil(catalogue)
    for argv in (["index"], ["recommend", "--text", "green lime fruit", "--json"]):
        code, out, warnings = run(capsys, caplog, [argv[0], "--catalogue", str(catalogue), *argv[1:]])
        assert code == 0, warnings
        assert len(warnings) == 1 and warnings[0].startswith("warning: skipped row"), warnings
        assert all(word in warnings[0] for word in words), warnings[0]
        if argv[0] == "recommend":
            assert "lime" not in {row["id"] for row in json.loads(out)}


HEADER = "id,title,description,category,image,audio\n"
UNUSABLE_CASES = {
    # name: (how to spoil the whole manifest, words the one error line must hold)
    "two id columns": (lambda r: edit_manifest(r, ",audio\n", ",id\n"), ["duplicate column", "'id'"]),
    "quote swallowing every row": (lambda r: edit_manifest(r, "Apple,", '"Apple,'), ["No valid rows", "quote"]),
    "every media path hostile": (
        lambda r: (r / "catalogue.csv").write_text(
            HEADER + "a,,,,media/" + "x" * 300 + ".png,\nb,,,,media/a\0.png,\n", encoding="utf-8"
        ),
        ["No valid rows", "too long", "NUL"],
    ),
}


@pytest.mark.parametrize("command", ["index", "recommend"])
@pytest.mark.parametrize("case", list(UNUSABLE_CASES))
def test_unusable_manifest_exits_2_with_one_line(catalogue, capsys, caplog, case, command):
    spoil, words = UNUSABLE_CASES[case]
    spoil(catalogue)
    query = ["--text", "car"] if command == "recommend" else []
    code, out, warnings = run(capsys, caplog, [command, "--catalogue", str(catalogue), *query])
    assert code == 2 and not out
    assert len(warnings) == 1 and warnings[0].startswith("error: "), warnings
    assert all(word in warnings[0] for word in words), warnings[0]


# -- caches ------------------------------------------------------------------------------------------
CLASSES = ["red apple", "green lime", "blue car", "yellow taxi"]


class ClassifierImageEncoder(TinyImageEncoder):
    """TinyImageEncoder with class names, so that the label bridge (and its caches) is used."""

    class_names = CLASSES

    def predict_proba(self, images, batch_size: int = 32) -> np.ndarray:
        batch = self.preprocessor.collate([self.preprocessor(image) for image in images])
        return self.forward_batch(batch)["class_proba"]


@pytest.fixture
def bridged(catalogue, monkeypatch):
    """The fake catalogue with its images on the label bridge: text, embedding, class-probability and
    label-bridge caches are all written by ``index``."""
    encoders = {**fake_encoders(), "image": ClassifierImageEncoder()}
    monkeypatch.setattr(pipeline, "_create_encoder", lambda name, device: encoders[FAKE_NAMES[name]])
    monkeypatch.setenv("RECSYS_IMAGE_ALIGNER", "label-bridge")
    return catalogue


def _one(cache: Path, pattern: str) -> Path:
    found = sorted(cache.glob(pattern))
    assert len(found) == 1, (pattern, found)
    return found[0]


def _flip_middle_bit(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x10
    path.write_bytes(bytes(data))


def _wider(path: Path) -> None:
    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files}
    arrays["vectors"] = np.concatenate([arrays["vectors"], arrays["vectors"][:, :1]], axis=1)
    with open(path, "wb") as fh:
        np.savez(fh, **arrays)


def _folder(path: Path) -> None:
    path.unlink()
    path.mkdir()


CACHE_CASES = {
    # name: (file pattern under the cache folder, damage)
    "text cache truncated to half": (
        "text_fake-64-*/shard-*.npz",
        lambda p: p.write_bytes(p.read_bytes()[: p.stat().st_size // 2]),
    ),
    "zero-byte label-bridge cache": ("label-bridge-*.npz", lambda p: p.write_bytes(b"")),
    "bit-flipped class-probability cache": ("image_tiny_1_class_proba-*/shard-*.npz", _flip_middle_bit),
    "image cache of the wrong dimension": ("image_tiny_1-*/shard-*.npz", _wider),
    "text cache path is a folder": ("text_fake-64-*/shard-*.npz", _folder),
    "label-bridge cache path is a folder": ("label-bridge-*.npz", _folder),
}


@pytest.mark.parametrize("case", list(CACHE_CASES))
def test_damaged_cache_is_rebuilt_with_one_warning(bridged, tmp_path, capsys, caplog, case):
    pattern, spoil = CACHE_CASES[case]
    query = ["recommend", "--catalogue", str(bridged), "--text", "red apple", "--json"]
    assert run(capsys, caplog, ["index", "--catalogue", str(bridged)])[0] == 0
    code, clean, warnings = run(capsys, caplog, query)
    assert code == 0 and not warnings, warnings
    spoil(_one(tmp_path / "cache", pattern))
    # the engine snapshot spares a start reading the feature cache; a changed catalogue would read it
    shutil.rmtree(tmp_path / "cache" / snapshot.FOLDER)

    code, _, index_warnings = run(capsys, caplog, ["index", "--catalogue", str(bridged)])
    assert code == 0
    assert "rebuilding" in index_warnings[0], index_warnings
    # one line; a folder where the label-bridge file goes also cannot be written: a second line says so
    assert len(index_warnings) == (2 if case == "label-bridge cache path is a folder" else 1), index_warnings
    code, out, warnings = run(capsys, caplog, query)
    assert code == 0
    if "folder" not in case:  # a folder is not ours to delete: it is reported on each run, never used
        assert not warnings, warnings
    got, want = json.loads(out), json.loads(clean)
    assert [r["id"] for r in got] == [r["id"] for r in want]
    assert [r["score"] for r in got] == pytest.approx([r["score"] for r in want], abs=1e-6)


# -- media the load-time check accepts but decoding rejects ------------------------------------------
def _truncated_jpeg(path: Path) -> None:
    """Cut inside the scan data (noise makes it long): the headers ``verify`` reads are whole."""
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (128, 128, 3), dtype=np.uint8)).save(buf, "JPEG")
    path.write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])


def _garbage_png(path: Path) -> None:
    """A PNG whose IDAT holds random bytes under a valid CRC: ``verify`` passes, decoding fails."""
    data = write_square(path, "green").read_bytes()
    start = data.index(b"IDAT") - 4
    length = struct.unpack(">I", data[start : start + 4])[0]
    garbage = np.random.default_rng(0).bytes(length)
    chunk = struct.pack(">I", length) + b"IDAT" + garbage + struct.pack(">I", zlib.crc32(b"IDAT" + garbage))
    path.write_bytes(data[:start] + chunk + data[start + 12 + length :])


def _float_wav(path: Path, samples: np.ndarray) -> None:
    sf.write(path, samples.astype(np.float32), 16_000, format="WAV", subtype="FLOAT")


def test_undecodable_media_are_reported_in_one_summary_line_per_modality(catalogue, capsys, caplog):
    media = catalogue / "media"
    _truncated_jpeg(media / "apple.jpg")
    _garbage_png(media / "lime-bad.png")
    _float_wav(media / "apple.wav", np.zeros(8000))
    _float_wav(media / "lime.wav", np.full(8000, np.nan))
    edit_manifest(catalogue, "media/apple.png", "media/apple.jpg")
    edit_manifest(catalogue, "media/lime.png", "media/lime-bad.png")

    code, out, warnings = run(capsys, caplog, ["index", "--catalogue", str(catalogue)])
    assert code == 0
    assert "indexed 6 items (text: 6, image: 3, audio: 3)" in out
    assert len(warnings) == 2, warnings
    image, audio = sorted(warnings, key=lambda w: "audio" in w)
    assert image.startswith("2 item(s) have no image vector") and "apple:" in image and "lime:" in image
    assert audio.startswith("2 item(s) have no audio vector") and "apple:" in audio and "lime:" in audio
    assert "silent" in audio and "NaN" in audio

    code, out, _ = run(capsys, caplog, ["recommend", "--catalogue", str(catalogue), "--text", "green", "--json"])
    assert code == 0 and all(np.isfinite(row["score"]) for row in json.loads(out))


def test_a_catalogue_whose_only_image_fails_to_decode(catalogue, capsys, caplog):
    (catalogue / "catalogue.csv").write_text(HEADER + "a,Apple,,,media/a.jpg,\n", encoding="utf-8")
    _truncated_jpeg(catalogue / "media" / "a.jpg")
    for _ in range(2):  # a fresh cache, then a warm one: the same answer
        code, out, warnings = run(capsys, caplog, ["index", "--catalogue", str(catalogue)])
        assert code == 0 and "indexed 1 items (text: 1, image: 0)" in out, (out, warnings)
        assert len(warnings) == 1 and "1 item(s) have no image vector" in warnings[0], warnings
        code, out, _ = run(capsys, caplog, ["recommend", "--catalogue", str(catalogue), "--text", "apple", "--json"])
        assert code == 0 and [row["id"] for row in json.loads(out)] == ["a"]
