"""``python -m recsys recommend`` / ``index``: output formats and one-line errors.

Fast tests patch in the fake encoders of fakes.py; the ``slow`` ones run the real offline
encoders on the committed demo catalogue (the acceptance checks of the foundation issue).
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from recsys.cli import main
from recsys.cli.recommend import parse_weights
from recsys.errors import InputError

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "data" / "tuxpaint"


def test_parse_weights():
    assert parse_weights("text=1,image=0.5") == {"text": 1.0, "image": 0.5}
    for bad in ("text", "smell=1", "text=abc", "text=-1", "text=nan,text=1"):
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


def test_index_takes_batch_size_and_precision(catalogue, capsys, monkeypatch):
    from recsys import pipeline

    seen = []
    real = pipeline.build_engine
    monkeypatch.setattr(pipeline, "build_engine", lambda cat, config, *a: seen.append(config) or real(cat, config, *a))
    assert main(["index", "--catalogue", str(catalogue), "--batch-size", "2", "--precision", "bf16"]) == 0
    assert (seen[0].batch_size, seen[0].precision) == (2, "bf16")
    assert main(["index", "--catalogue", str(catalogue)]) == 0
    assert (seen[1].batch_size, seen[1].precision) == (None, "fp32")  # None: the device's default


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
    spoken = _run("recommend", "--catalogue", str(DEMO), "--audio", str(DEMO / "sounds" / "A_filled.ogg"), "--json")
    assert spoken.returncode == 0 and "sounds like speech" in spoken.stderr
    json.loads(spoken.stdout)  # the note leaves the JSON on stdout intact

    empty = _run("recommend", "--catalogue", str(DEMO))
    assert empty.returncode == 2 and "Traceback" not in empty.stderr


@given(st.text(alphabet=st.characters(exclude_categories=()), max_size=40))
def test_any_weight_string_parses_to_usable_weights_or_an_input_error(spec):
    """--weights text (lone surrogates included): only InputError, and nothing non-finite or negative."""
    try:
        weights = parse_weights(spec)
    except InputError:
        return
    assert set(weights) <= {"text", "image", "audio"}
    assert all(math.isfinite(w) and w >= 0 for w in weights.values())


NAMES = st.sampled_from(["text", "image", "audio"])
VALUES = st.sampled_from(["1", "0.5", "nan", "inf", "-1", "1e309"])


@given(st.lists(st.tuples(NAMES, VALUES), min_size=1, max_size=3, unique_by=lambda part: part[0]))
def test_generated_weight_specs(parts):
    spec = ",".join(f"{name}={value}" for name, value in parts)
    if all(value in ("1", "0.5") for _, value in parts):
        assert parse_weights(spec) == {name: float(value) for name, value in parts}
    else:
        with pytest.raises(InputError, match="bad weight"):
            parse_weights(spec)


def test_a_query_file_is_answered_in_one_start(catalogue, tmp_path, capsys, monkeypatch):
    from recsys import pipeline

    starts = []
    real = pipeline.build_engine
    monkeypatch.setattr(pipeline, "build_engine", lambda *a, **k: starts.append(1) or real(*a, **k))
    queries = tmp_path / "queries.jsonl"
    queries.write_text(
        '{"id": "cars", "text": "racing car", "k": 1}\n'
        '{"text": "green", "strategy": "rrf"}\n'
        '{"like": ["nope"]}\n'
        '{"txt": "typo"}\n'
    )
    args = ["recommend", "--catalogue", str(catalogue), "--queries", str(queries), "-k", "2"]
    assert main(args) == 1  # two lines got error records
    out, err = capsys.readouterr()
    records = [json.loads(line) for line in out.splitlines()]
    assert [r["line"] for r in records] == [1, 2, 3, 4] and starts == [1]
    assert records[0]["id"] == "cars" and [r["id"] for r in records[0]["results"]] == ["car"]
    assert len(records[1]["results"]) == 2 and "pair_ranks" in records[1]["results"][0]  # -k 2, rrf
    assert "nope" in records[2]["error"] and "unknown key 'txt'" in records[3]["error"]
    assert "query line 4: unknown key 'txt'" in err and "2 of 4 queries got an error record" in err
    queries.write_text('{"text": "racing car"}\n')
    assert main(args) == 0


def test_a_query_file_on_stdin(catalogue, capsys, monkeypatch):
    import io

    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b'{"text": "a blue car", "k": 1}\n')))
    assert main(["recommend", "--catalogue", str(catalogue), "--queries", "-"]) == 0
    assert json.loads(capsys.readouterr().out)["results"][0]["id"] == "car"


@pytest.mark.parametrize(
    ("content", "extra", "message"),
    [
        ('{"text": "a"}\n', ["--text", "b"], "either --queries or a query (--text)"),
        ('{"txt": "a"}\n', [], "no line of the query file is a usable query; line 1: unknown key 'txt'"),
        ("\n", [], "holds no query"),
    ],
)
def test_a_query_file_that_cannot_be_used_exits_2_before_loading(catalogue, tmp_path, capsys, monkeypatch,
                                                                  content, extra, message):  # fmt: skip
    from recsys import pipeline

    monkeypatch.setattr(pipeline, "build_engine", lambda *a, **k: pytest.fail("the engine was built"))
    queries = tmp_path / "q.jsonl"
    queries.write_text(content)
    assert main(["recommend", "--catalogue", str(catalogue), "--queries", str(queries), *extra]) == 2
    assert message in capsys.readouterr().err
