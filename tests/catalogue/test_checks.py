"""The media check cache: a warm load opens no file, a changed file is checked again, a damaged
cache is rebuilt, and whatever happens the rows and reasons equal those of an uncached load."""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path

import numpy as np
import pytest
from fakes import write_square
from hypothesis import given
from hypothesis import strategies as st

from recsys import media
from recsys.catalogue import Catalogue, load_catalogue
from recsys.catalogue.checks import FOLDER, FORMAT, cache_file

HEADER = "id,title,description,category,image,audio"
CORRUPT = b"\x89PNG\r\n\x1a\n" + b"garbage" * 10


@pytest.fixture
def opened(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Every media file the checks open, in order (the real checks still run)."""
    calls: list[Path] = []
    for name in ("check_image_file", "check_audio_file"):
        real = getattr(media, name)

        def counting(path: Path, *args: object, _real=real, **kwargs: object) -> object:
            calls.append(Path(path))
            return _real(path, *args, **kwargs)

        monkeypatch.setattr(media, name, counting)
    return calls


def _catalogue(root: Path, media_factory) -> Path:
    """Good and bad media of every kind the checks tell apart, one file used by two rows."""
    outside = root.parent / "outside"
    write_square(_mkdir(root / "img") / "ok.png", "red")
    write_square(root / "img" / "also.png", "blue")
    media_factory.write_sound(root / "ok.ogg", media_factory.tone(500))
    (root / "corrupt.png").write_bytes(CORRUPT)
    (root / "text.wav").write_text("not audio at all\n" * 10)
    write_square(_mkdir(outside) / "secret.png", "green")
    os.symlink(outside / "secret.png", root / "link-out.png")
    os.symlink(root / "img" / "ok.png", root / "link-in.png")
    os.symlink(root / "img", root / "pictures")
    lines = [
        HEADER,
        "good,Good,,a,img/ok.png,ok.ogg",
        "twice,Twice,,a,img/ok.png,",
        "blue,Blue,,a,./img//also.png,",
        "corrupt,C,,,corrupt.png,",
        "corrupt-too,C,,,corrupt.png,text.wav",
        "badaudio,B,,,img/ok.png,text.wav",
        "missing,M,,,nope.png,",
        "out,O,,,link-out.png,",
        "in,I,,,link-in.png,",
        "folder-link,F,,,pictures/also.png,",
        "dotdot-in,D,,,img/../img/ok.png,",
        "dotdot-out,D,,,../outside/secret.png,",
        "folder,F,,,img,",
        "text,Just text,,,,",
    ]
    (root / "catalogue.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return root


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def _outcome(cat: Catalogue) -> tuple[list, list[str]]:
    return [(it.id, it.image, it.audio) for it in cat], [str(b) for b in cat.bad_rows]


def _age(path: Path, seconds: int = 100) -> None:
    """Move a file's mtime ``seconds`` into the past (a change the cache must notice)."""
    info = os.stat(path)
    os.utime(path, ns=(info.st_atime_ns, info.st_mtime_ns - seconds * 10**9))


def test_cached_loads_equal_the_uncached_one_and_a_warm_load_opens_nothing(
    tmp_path: Path, media_factory, opened: list[Path]
) -> None:
    root = _catalogue(tmp_path / "cat", media_factory)
    plain = _outcome(load_catalogue(root))
    assert {i for i, _, _ in plain[0]} == {"good", "twice", "blue", "in", "folder-link", "dotdot-in", "text"}
    checked_without_cache = len(opened)
    opened.clear()
    cache = tmp_path / "cache"
    assert _outcome(load_catalogue(root, cache_dir=cache)) == plain  # cold: every file checked, once
    assert len(opened) == checked_without_cache
    written = cache_file(cache, root.resolve())
    before = written.stat().st_mtime_ns
    opened.clear()
    assert _outcome(load_catalogue(root, cache_dir=cache)) == plain  # warm
    assert opened == []
    assert written.stat().st_mtime_ns == before  # nothing changed, nothing written


def test_a_changed_file_is_checked_again(tmp_path: Path, media_factory, opened: list[Path]) -> None:
    root = _catalogue(tmp_path / "cat", media_factory)
    cache = tmp_path / "cache"
    load_catalogue(root, cache_dir=cache)
    _age(root / "img" / "also.png")  # same bytes, other mtime: checked again, still fine
    (root / "corrupt.png").write_bytes((root / "img" / "ok.png").read_bytes())  # repaired
    write_square(root / "img" / "ok.png", "red", size=33)  # rewritten, still an image
    opened.clear()
    cat = load_catalogue(root, cache_dir=cache)
    # every name of the three changed files (links and other spellings are names of their own), no other file
    assert {p.resolve().name for p in opened} == {"also.png", "corrupt.png", "ok.png"}
    assert len(opened) == 6
    assert _outcome(cat) == _outcome(load_catalogue(root))
    assert {"corrupt", "blue", "good"} <= set(cat.ids)
    (root / "img" / "also.png").write_bytes(CORRUPT)  # broken after being cached as fine
    cat = load_catalogue(root, cache_dir=cache)
    assert "blue" not in cat.ids and _outcome(cat) == _outcome(load_catalogue(root))


@pytest.mark.parametrize("damage", ["truncate", "flip", "garbage", "foreign", "folder"])
def test_a_damaged_cache_is_rebuilt_in_one_log_line(
    tmp_path: Path, media_factory, opened: list[Path], caplog: pytest.LogCaptureFixture, damage: str
) -> None:
    root = _catalogue(tmp_path / "cat", media_factory)
    cache = tmp_path / "cache"
    plain = _outcome(load_catalogue(root, cache_dir=cache))
    written = cache_file(cache, root.resolve())
    data = written.read_bytes()
    if damage == "truncate":
        written.write_bytes(data[: len(data) // 2])
    elif damage == "flip":  # one bit of a stored path
        at = data.index(b"img/ok.png")
        written.write_bytes(data[:at] + bytes([data[at] ^ 0x01]) + data[at + 1 :])
    elif damage == "garbage":
        written.write_bytes(b"\0" * 64)
    elif damage == "foreign":  # a valid archive whose names do not match its counts
        np.savez(written, format=np.array([FORMAT]), keys=np.frombuffer(b"a", np.uint8),
                 stats=np.zeros((2, 4), np.int64), problems=np.frombuffer(b"", np.uint8))  # fmt: skip
    else:
        written.unlink()
        written.mkdir()
    opened.clear()
    with caplog.at_level(logging.WARNING):
        assert _outcome(load_catalogue(root, cache_dir=cache)) == plain
    assert len(opened) > 0  # every file checked again
    rebuilt = [r for r in caplog.records if "media check cache" in r.getMessage()]
    assert len(rebuilt) == 1 + (damage == "folder"), [r.getMessage() for r in caplog.records]
    if damage != "folder":  # a folder in the way is not ours to remove: the cache stays in memory only
        opened.clear()
        assert _outcome(load_catalogue(root, cache_dir=cache)) == plain and opened == []


def test_an_unwritable_cache_folder_costs_speed_only(tmp_path: Path, media_factory) -> None:
    root = _catalogue(tmp_path / "cat", media_factory)
    blocker = tmp_path / "file"
    blocker.write_text("a file where the cache folder would be")
    assert _outcome(load_catalogue(root, cache_dir=blocker)) == _outcome(load_catalogue(root))


def test_rows_removed_from_the_manifest_leave_the_cache(tmp_path: Path, media_factory) -> None:
    root = _catalogue(tmp_path / "cat", media_factory)
    cache = tmp_path / "cache"
    load_catalogue(root, cache_dir=cache)
    size = cache_file(cache, root.resolve()).stat().st_size
    (root / "catalogue.csv").write_text(f"{HEADER}\ngood,Good,,a,img/ok.png,\n", encoding="utf-8")
    assert load_catalogue(root, cache_dir=cache).ids == ["good"]
    assert cache_file(cache, root.resolve()).stat().st_size < size
    assert [p.name for p in (cache / FOLDER).iterdir()] == [cache_file(cache, root.resolve()).name]


ACTIONS = st.lists(
    st.tuples(st.sampled_from(["corrupt", "repair", "delete", "touch", "load"]), st.integers(0, 3)), max_size=8
)


@given(actions=ACTIONS)
def test_whatever_happens_to_the_files_cached_loads_equal_uncached_ones(actions) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root, cache = Path(tmp) / "cat", Path(tmp) / "cache"
        _mkdir(root)
        names = [f"{i}.png" for i in range(4)]
        for i, name in enumerate(names):
            write_square(root / name, ["red", "green", "blue", "yellow"][i])
        rows = [f"i{i},Item {i},,,{name}," for i, name in enumerate(names)]
        (root / "catalogue.csv").write_text("\n".join([HEADER, *rows, "t,Text,,,,"]) + "\n", encoding="utf-8")
        load_catalogue(root, cache_dir=cache)
        for action, i in actions:
            path = root / names[i]
            if action == "corrupt":
                path.write_bytes(CORRUPT)
            elif action == "repair":
                write_square(path, "red")
            elif action == "delete" and path.exists():
                path.unlink()
            elif action == "touch" and path.exists():
                _age(path, seconds=i + 1)
            assert _outcome(load_catalogue(root, cache_dir=cache)) == _outcome(load_catalogue(root))


def test_verdicts_of_an_older_format_are_dropped_quietly(tmp_path: Path, media_factory, opened, caplog) -> None:
    """A cache written before stamps held the inode (format 1, three stamp fields) is not an error."""
    root = _catalogue(tmp_path / "cat", media_factory)
    cache = tmp_path / "cache"
    plain = _outcome(load_catalogue(root, cache_dir=cache))
    written = cache_file(cache, root.resolve())
    np.savez(written, format=np.array([1]), keys=np.frombuffer(b"image:a.png", np.uint8),
             stats=np.zeros((1, 3), np.int64), problems=np.frombuffer(b"", np.uint8))  # fmt: skip
    opened.clear()
    with caplog.at_level(logging.WARNING):
        assert _outcome(load_catalogue(root, cache_dir=cache)) == plain
    assert opened and "media check cache" not in caplog.text


def test_many_files_are_checked_in_worker_processes_with_the_same_verdicts(
    tmp_path: Path, media_factory, opened: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past PARALLEL_CHECKS_FROM files the checks run in worker processes (which the parent's record
    of opened files does not see), with the same rows, reasons and remembered verdicts."""
    import recsys.catalogue as catalogue_module

    root = _catalogue(tmp_path / "cat", media_factory)
    plain = _outcome(load_catalogue(root))
    opened.clear()
    monkeypatch.setattr(catalogue_module, "PARALLEL_CHECKS_FROM", 1)
    monkeypatch.setattr(catalogue_module, "CHECK_CHUNK", 2)
    monkeypatch.setattr(catalogue_module, "check_processes", lambda: 2)
    cache = tmp_path / "cache"
    assert _outcome(load_catalogue(root, cache_dir=cache)) == plain
    assert opened == []  # every check ran in a worker
    monkeypatch.setattr(catalogue_module, "PARALLEL_CHECKS_FROM", 10**9)
    assert _outcome(load_catalogue(root, cache_dir=cache)) == plain  # the workers' verdicts were remembered
    assert opened == []
