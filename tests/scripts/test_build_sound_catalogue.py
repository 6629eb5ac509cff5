"""``scripts/build_sound_catalogue.py``: file name -> text rules (examples and a property), and a build
from a tiny hand-made .deb (no network) that must load with zero bad rows and leave out speech, unnamed,
duplicate, silent and demo clips."""

from __future__ import annotations

import importlib.util
import io
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from recsys.catalogue import load_catalogue
from recsys.errors import RecsysError

REPO = Path(__file__).resolve().parents[2]


def _load_script():
    path = REPO / "scripts" / "build_sound_catalogue.py"
    spec = importlib.util.spec_from_file_location("build_sound_catalogue", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


bsc = _load_script()


@pytest.mark.parametrize(
    ("path", "text"),
    [
        ("sounds/animals/dog_bark_02.ogg", "dog bark"),
        ("Animal/HorseGallop.wav", "horse gallop"),
        ("mods/default/sounds/default_dig_choppy.1.ogg", "dig choppy"),
        ("beep3.ogg", "beep"),
        ("sfx12.wav", None),
        ("sounds/sound042.wav", None),
        ("ambient/custom1.ogg", "ambient"),  # the name says nothing: its folder does
        ("stereo/sfx.oga", None),
        ("", None),
        ("///", None),
        ("SOUND/THUNDER.WAV", "thunder"),
    ],
)
def test_clip_text_examples(path: str, text: str | None) -> None:
    assert bsc.clip_text(path) == text


def test_clip_text_renames_by_stem_and_drops_empty_renames() -> None:
    renames = {"lrgexpl": "large explosion", "wakeup": ""}
    assert bsc.clip_text("stdsounds/LrgExpl.ogg", renames) == "large explosion"
    assert bsc.clip_text("stdsounds/wakeup.ogg", renames) is None
    assert bsc.clip_text("stdsounds/Splash.ogg", renames) == "splash"


@given(st.text(max_size=80), st.dictionaries(st.text(max_size=10), st.text(max_size=10), max_size=3))
def test_clip_text_never_fails(path: str, renames: dict[str, str]) -> None:
    try:
        text = bsc.clip_text(path, renames)
    except RecsysError:
        return
    assert text is None or isinstance(text, str)
    if text is not None and bsc.rename_key(path) not in renames:
        words = text.split(" ")
        assert text == text.lower() and 1 <= len(words) <= bsc.MAX_WORDS and all(words)


def _wav(freq: float, amplitude: float = 0.5) -> bytes:
    import soundfile as sf

    t = np.arange(8000) / 8000.0
    buf = io.BytesIO()
    sf.write(buf, (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32), 8000, format="WAV")
    return buf.getvalue()


@pytest.mark.skipif(shutil.which("dpkg-deb") is None, reason="needs dpkg-deb")
def test_build_from_a_fake_deb(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tree = tmp_path / "pkg"
    files = {
        "usr/share/fake/animals/dog_bark_02.wav": _wav(440),
        "usr/share/fake/animals/dog_bark_03.wav": _wav(440),  # same bytes as _02: a duplicate
        "usr/share/fake/animals/CatMeow.wav": _wav(660),
        "usr/share/fake/voice_hello.wav": _wav(330),  # speech: the package rule skips it
        "usr/share/fake/sfx12.wav": _wav(550),  # says nothing
        "usr/share/fake/quiet_hum.wav": _wav(220, amplitude=1e-5),  # silent: refused by recsys.media
        "usr/share/fake/bell.wav": _wav(880),  # identical to a demo clip
        "usr/share/fake/readme.txt": b"not audio",
        "usr/share/doc/fake-sfx/copyright": b"License: CC0-1.0\n",
    }
    for rel, data in files.items():
        (tree / rel).parent.mkdir(parents=True, exist_ok=True)
        (tree / rel).write_bytes(data)
    (tree / "DEBIAN").mkdir()
    (tree / "DEBIAN" / "control").write_text(
        "Package: fake-sfx\nVersion: 1.0-1\nArchitecture: all\nMaintainer: t <t@example.org>\nDescription: test\n"
    )
    deb = tmp_path / "fake-sfx_1.0-1_all.deb"
    subprocess.run(["dpkg-deb", "--build", "--root-owner-group", str(tree), str(deb)], check=True, capture_output=True)
    monkeypatch.setattr(bsc, "PACKAGES", {"fake-sfx": bsc.Package("CC0-1.0", "usr/share/fake", skip=r"/voice_")})
    out = tmp_path / "out"
    excluded = {bsc._sha(files["usr/share/fake/bell.wav"])}
    rows = bsc.build(out, {"fake-sfx": deb}, excluded, log=lambda _: None)
    assert [(r["id"], r["description"]) for r in rows] == [
        ("fake-sfx-animals-catmeow", "cat meow"),
        ("fake-sfx-animals-dog-bark-02", "dog bark"),
    ]
    assert rows[0]["source"] == "fake-sfx 1.0-1: usr/share/fake/animals/CatMeow.wav"
    catalogue = load_catalogue(out)
    assert len(catalogue) == 2 and not catalogue.bad_rows
    assert (out / "licenses" / "fake-sfx.copyright").read_bytes() == b"License: CC0-1.0\n"
    licences = (out / "LICENSES.md").read_text()
    assert "| `fake-sfx` | 1.0-1 | CC0-1.0 | 2 |" in licences and "identical to a demo clip 1" in licences
    first = {p: p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}
    bsc.build(out, {"fake-sfx": deb}, excluded, log=lambda _: None)  # idempotent
    assert {p: p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()} == first


def test_a_folder_it_did_not_build_is_refused_and_a_missing_demo_folder_is_an_error(tmp_path):
    other = tmp_path / "other"
    (other / "sounds").mkdir(parents=True)
    (other / "sounds" / "keep.ogg").write_bytes(b"not ours")
    (other / "catalogue.csv").write_text("id,title,description,category,image,audio\n")
    with pytest.raises(SystemExit, match="not built by this script"):
        bsc.build(other, {}, set(), log=lambda _: None)
    assert (other / "sounds" / "keep.ogg").read_bytes() == b"not ours"
    with pytest.raises(SystemExit, match="no sound files there"):
        bsc.demo_digests(tmp_path / "missing")


def test_an_unreadable_deb_is_a_clear_error(tmp_path):
    bad = tmp_path / "broken_1.0_all.deb"
    bad.write_bytes(b"!<arch>\nnot really a deb")
    with pytest.raises(SystemExit, match="delete it and run this again"):
        list(bsc.deb_members(bad))
