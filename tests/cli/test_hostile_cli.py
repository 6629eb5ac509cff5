"""Hostile input through ``python -m recsys`` (issue 12): one line on stderr, exit 2, never a traceback.

One test per family of input; each case failed before the family was handled (a traceback, or
exit 0 with a wrong answer). The fake encoders of fakes.py stand in for the models.
"""

from __future__ import annotations

import os

import pytest

from recsys.cli import main


def refused(capsys, argv: list[str]) -> str:
    """Run the CLI in-process; it must exit 2 with one ``error:`` line and print no result."""
    code = main(argv)
    out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert code == 2, (code, out, err)
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err and not out
    return lines[0]


LATIN_1 = "text_encoder = 'caf\xe9'\n".encode("latin-1")
CONFIG = ["--config", "{tmp}/c.toml"]
CONFIG_CASES = {
    # name: (files to write {name: bytes}, environment, extra arguments, words the message must hold)
    "encoder is a number": ({"c.toml": b"image_encoder = 5\n"}, {}, CONFIG, ["c.toml", "image_encoder", "5"]),
    "pipeline is a number": ({"c.toml": b"pipeline = 5\n"}, {}, CONFIG, ["pipeline", "table"]),
    "catalogue recsys.toml": ({"cat/recsys.toml": b"[pipeline]\nbatch_size = '8'\n"}, {}, [], ["batch_size", "'8'"]),
    "not UTF-8": ({"c.toml": LATIN_1}, {}, CONFIG, ["c.toml", "UTF-8", "0xe9"]),
    "aligner JSON is a list": ({"a.json": b"[1, 2]"}, {"RECSYS_IMAGE_ALIGNER": "{tmp}/a.json"}, [], ["a.json", "list"]),
    "bogus device": ({}, {}, ["--device", "bogus"], ["--device", "bogus"]),
    "batch size text": ({}, {"RECSYS_BATCH_SIZE": "abc"}, [], ["RECSYS_BATCH_SIZE", "whole number", "abc"]),
    "batch size 0": ({}, {}, ["--batch-size", "0"], ["--batch-size", ">= 1", "0"]),
    "bogus precision": ({}, {}, ["--precision", "fp8"], ["--precision", "fp8", "bf16"]),
    "query threads text": ({}, {"RECSYS_QUERY_THREADS": "abc"}, [], ["RECSYS_QUERY_THREADS", "abc"]),
    "cache dir is a file": ({"f": b"x"}, {"RECSYS_CACHE_DIR": "{tmp}/f"}, [], ["RECSYS_CACHE_DIR", "not a folder"]),
    "cache dir is /dev/null": ({}, {"RECSYS_CACHE_DIR": "/dev/null"}, [], ["RECSYS_CACHE_DIR", "/dev/null"]),
    "cache dir under a file": ({"f": b"x"}, {"RECSYS_CACHE_DIR": "{tmp}/f/cache"}, [], ["RECSYS_CACHE_DIR"]),
    "missing --config": ({}, {}, ["--config", "{tmp}/nonexistent.toml"], ["nonexistent.toml", "does not exist"]),
}


@pytest.mark.parametrize("command", ["recommend", "index"])
@pytest.mark.parametrize("case", list(CONFIG_CASES))
def test_config(catalogue, tmp_path, monkeypatch, capsys, case, command):
    files, env, extra, words = CONFIG_CASES[case]
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    for var, value in env.items():
        monkeypatch.setenv(var, value.format(tmp=tmp_path))
    query = ["--text", "red apple"] if command == "recommend" else []
    extra = [arg.format(tmp=tmp_path) for arg in extra]
    message = refused(capsys, [command, "--catalogue", str(catalogue), *query, *extra])
    assert all(word in message for word in words), message


@pytest.mark.parametrize(
    "text, words",
    [
        (os.fsdecode(b"caf\xe9 racing car"), ["byte 0xe9", "UTF-8"]),  # how argv carries bytes that are not UTF-8
        ("car \ud800", ["surrogate", "U+D800"]),
    ],
)
def test_text(catalogue, capsys, text, words):
    message = refused(capsys, ["recommend", "--catalogue", str(catalogue), "--text", text])
    assert all(word in message for word in words), message


@pytest.mark.parametrize("strategy", ["early", "late", "rrf"])
@pytest.mark.parametrize("weights", ["text=nan", "text=inf", "text=1e309", "image=nan", "audio=-1", "text=1e-30"])
def test_weights(catalogue, capsys, weights, strategy):
    argv = ["recommend", "--catalogue", str(catalogue), "--text", "car", "--weights", weights, "--strategy", strategy]
    assert weights in refused(capsys, argv)


@pytest.mark.parametrize("flag", ["--image", "--audio"])
@pytest.mark.parametrize(
    "name, words",
    [
        ("x" * 300 + ".png", ["too long"]),
        ("a\x00b.png", ["NUL"]),
        ("{tmp}", ["is a folder"]),
        ("{tmp}/missing.png", ["does not exist"]),
    ],
)
def test_media_paths(catalogue, tmp_path, capsys, flag, name, words):
    message = refused(capsys, ["recommend", "--catalogue", str(catalogue), flag, name.format(tmp=tmp_path)])
    assert all(word in message for word in words), message


def test_output_paths_are_checked_before_any_work(catalogue, tmp_path, capsys, monkeypatch):
    (tmp_path / "file").write_text("x")
    from recsys import encoders

    def no_models(*args, **kwargs):
        raise AssertionError("a model was loaded before the output path was checked")

    monkeypatch.setattr(encoders, "create_encoder", no_models)
    for out in (tmp_path / "file", tmp_path / "file" / "heads"):
        message = refused(capsys, ["align", "--catalogue", str(catalogue), "--out", str(out)])
        assert "--out" in message
    message = refused(capsys, ["align", "--catalogue", str(catalogue), "--cache-dir", str(tmp_path / "file")])
    assert "--cache-dir" in message
    message = refused(capsys, ["evaluate", "--dataset", str(tmp_path / "none"), "--json", str(tmp_path)])
    assert "--json" in message and "folder" in message
