"""``python -m recsys recommend`` / ``index``: output formats and one-line errors.

Fast tests patch in the fake encoders of fakes.py; the ``slow`` ones run the real offline
encoders on the committed demo catalogue (the acceptance checks of the foundation issue).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from fakes import build_catalogue

from recsys.cli import main
from recsys.cli.recommend import parse_weights
from recsys.errors import InputError

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "data" / "tuxpaint"


@pytest.fixture
def catalogue(tmp_path, monkeypatch, patched_encoders):
    monkeypatch.setenv("RECSYS_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("RECSYS_IMAGE_ALIGNER", "none")  # the fake encoders have no trained aligner
    monkeypatch.setenv("RECSYS_AUDIO_ALIGNER", "none")
    return build_catalogue(tmp_path / "cat")


def test_parse_weights():
    assert parse_weights("text=1,image=0.5") == {"text": 1.0, "image": 0.5}
    for bad in ("text", "smell=1", "text=abc", "text=-1"):
        with pytest.raises(InputError):
            parse_weights(bad)


def test_json_output(catalogue, capsys):
    assert main(["recommend", "--catalogue", str(catalogue), "--text", "racing car", "-k", "2", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["id"] for r in rows][0] == "car"
    assert set(rows[0]) >= {"id", "title", "category", "score", "contributions"}
    assert sum(rows[0]["contributions"].values()) == pytest.approx(rows[0]["score"], abs=1e-6)


def test_table_output(catalogue, capsys):
    assert main(["recommend", "--catalogue", str(catalogue), "--text", "green", "--strategy", "rrf"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split()[:5] == ["#", "id", "title", "category", "score"]
    assert len(out) == 1 + 6


def test_index_reports_counts(catalogue, capsys):
    assert main(["index", "--catalogue", str(catalogue)]) == 0
    assert "indexed 6 items (text: 6, image: 5, audio: 5)" in capsys.readouterr().out


@pytest.mark.parametrize(
    "args, message",
    [
        ([], "empty query"),
        (["--text", "car", "--like", "zebra"], "unknown item id"),
        (["--text", "car", "--weights", "taste=1"], "bad weight"),
        (["--image", "missing.png"], ""),
    ],
)
def test_bad_input_exits_2_with_one_line(catalogue, capsys, args, message):
    assert main(["recommend", "--catalogue", str(catalogue), *args]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and message in err and "\n" not in err


def test_bad_media_files(catalogue, tmp_path, capsys):
    corrupt = tmp_path / "corrupt.png"
    corrupt.write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 10)
    fake_wav = tmp_path / "notes.wav"
    fake_wav.write_text("this is a text file, not audio")
    for flag, path in (("--image", corrupt), ("--audio", fake_wav)):
        assert main(["recommend", "--catalogue", str(catalogue), flag, str(path)]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("error: ") and "\n" not in err


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "recsys", *args], capture_output=True, text=True, cwd=REPO, timeout=600
    )


@pytest.mark.slow
def test_demo_catalogue_acceptance(demo_catalogue):
    """The foundation issue's checks with the real offline encoders on data/tuxpaint."""
    text = _run("recommend", "--catalogue", str(DEMO), "--text", "a red apple", "-k", "5", "--json")
    assert text.returncode == 0, text.stderr
    rows = json.loads(text.stdout)
    assert sum("apple" in (r["title"] + r["id"]).lower() for r in rows) >= 3
    for r in rows:
        assert sum(r["contributions"].values()) == pytest.approx(r["score"], abs=1e-6)

    with_sound = next(it for it in demo_catalogue.items if it.audio is not None and it.image is not None)
    image = _run("recommend", "--catalogue", str(DEMO), "--image", str(with_sound.image), "-k", "3", "--json")
    assert json.loads(image.stdout)[0]["id"] == with_sound.id
    audio = _run("recommend", "--catalogue", str(DEMO), "--audio", str(with_sound.audio), "-k", "3", "--json")
    assert json.loads(audio.stdout)[0]["id"] == with_sound.id

    empty = _run("recommend", "--catalogue", str(DEMO))
    assert empty.returncode == 2 and "Traceback" not in empty.stderr
