"""Query files (recsys.query_file): every line checked on its own, answered in order, bad ones in their place."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from fakes import write_square
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from recsys import query_file
from recsys.errors import InputError
from recsys.query_file import KEYS, BadLine, QueryLine, answer, first_problem, parse_line, read_query_file


def test_a_line_gives_a_query_and_its_settings(tmp_path):
    (tmp_path / "pics").mkdir()
    write_square(tmp_path / "pics" / "red.png", "red")
    line = json.dumps({
        "id": 7, "text": "a red fruit", "image": "pics/red.png", "like": ["apple"], "dislike": "car",
        "weights": {"text": 1, "image": 0.5}, "strategy": "rrf", "similarity": "pearson", "category": "food", "k": 3,
    })  # fmt: skip
    q = parse_line(line, 4, tmp_path)
    assert (q.line, q.id, q.text, q.image) == (4, "7", "a red fruit", tmp_path / "pics" / "red.png")
    assert (q.likes, q.dislikes, q.audio) == (("apple",), ("car",), None)
    assert q.settings == {"weights": {"text": 1.0, "image": 0.5}, "strategy": "rrf", "similarity": "pearson",
                          "category": "food", "k": 3}  # fmt: skip
    assert parse_line('{"text": "x", "weights": "text=2,audio=0"}', 9, tmp_path).settings == {
        "weights": {"text": 2.0, "audio": 0.0}
    }
    assert parse_line('{"like": ["apple"]}', 2, tmp_path).id == "2"  # no id: the line number


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("not json", "not a JSON object"),
        ("[1, 2]", "not a JSON object but a list"),
        ('{"txt": "a"}', "unknown key 'txt'"),
        ("{}", "empty query"),
        ('{"text": "   "}', "empty query"),
        ('{"text": 5}', "'text' must be text"),
        ('{"text": "a", "id": [1]}', "'id' must be text or a whole number"),
        ('{"image": ""}', "'image' is empty"),
        ('{"image": 3}', "'image' must be a file path"),
        ('{"image": "missing.png"}', "missing.png"),
        ('{"audio": "a\\u0000b.wav"}', "NUL byte"),
        ('{"image": "\\ud800.png"}', "the 'image' path contains an unpaired surrogate"),
        ('{"like": [1]}', "'like' must be a list of item ids"),
        ('{"text": "a", "k": 0}', "'k' must be a whole number"),
        ('{"text": "a", "k": true}', "'k' must be a whole number"),
        ('{"text": "a", "k": 2.5}', "'k' must be a whole number"),
        ('{"text": "a", "strategy": "best"}', "'strategy' must be one of early, late, rrf"),
        ('{"text": "a", "similarity": 1}', "'similarity' must be one of"),
        ('{"text": "a", "weights": {"smell": 1}}', "'weights' names 'smell'"),
        ('{"text": "a", "weights": {"text": -1}}', "bad weight text=-1"),
        ('{"text": "a", "weights": {"text": "1"}}', "must map modalities to numbers"),
        ('{"text": "a", "weights": "text=abc"}', "not a number"),
        ('{"text": "a", "weights": [1]}', "'weights' must be an object"),
        ('{"text": "a", "weights": {"text": NaN}}', "bad weight"),
        ('{"text": "a", "category": {}}', "'category' must be text"),
    ],
)
def test_a_bad_line_says_what_is_wrong(tmp_path, line, message):
    with pytest.raises(InputError, match=None) as caught:
        parse_line(line, 1, tmp_path)
    assert message in str(caught.value)


def test_a_file_is_read_line_by_line_and_bad_lines_keep_their_place(tmp_path, monkeypatch):
    monkeypatch.setattr(query_file, "MAX_LINE_BYTES", 64)
    path = tmp_path / "queries.jsonl"
    path.write_bytes(
        b'\xef\xbb\xbf{"text": "a red fruit"}\n'  # a BOM first
        b"\n"
        b'{"id": "q3", "text": 5}\n'
        b'{"text": "\xff"}\n'
        b'{"text": "' + b"x" * 200 + b'"}\n'
        b'{"like": ["apple"]}'  # no newline at the end
    )
    lines = read_query_file(path)
    assert [type(q).__name__ for q in lines] == ["QueryLine", "BadLine", "BadLine", "BadLine", "QueryLine"]
    assert [q.line for q in lines] == [1, 3, 4, 5, 6]
    assert lines[1].id == "q3" and "must be text" in lines[1].reason
    assert "byte 0xff at column 11 is not UTF-8" in lines[2].reason
    assert "longer than 0 KiB" in lines[3].reason
    assert first_problem(lines) is None


def test_a_file_with_no_usable_query_is_refused_before_anything_loads(tmp_path):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n\n")
    assert "holds no query" in first_problem(read_query_file(empty))
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"txt": 1}\n')
    assert "line 1: unknown key 'txt'" in first_problem(read_query_file(bad))
    with pytest.raises(InputError, match="Query file"):
        read_query_file(tmp_path / "missing.jsonl")


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)

#: Values a key might well hold, and lone surrogates (which no file name can hold).
_VALUES = ["early", "rrf", "apple", "x.png", "\ud800", "\udcff.png"]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.dictionaries(st.sampled_from(KEYS), _JSON | st.sampled_from(_VALUES)))
def test_any_object_of_known_keys_is_a_query_or_an_input_error(tmp_path, data):
    try:
        q = parse_line(json.dumps(data), 1, tmp_path)
    except InputError:
        return
    assert isinstance(q, QueryLine) and (q.text or q.likes or q.dislikes or q.image or q.audio)


@settings(max_examples=300, deadline=None)
@given(text=st.text(max_size=200))
def test_any_line_is_a_query_or_an_input_error(text):
    try:
        q = parse_line(text, 1, Path("/nonexistent-folder"))
    except InputError:
        return
    assert (q.text or "").strip() or q.likes or q.dislikes  # no media can exist there: text or ids


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(blob=st.binary(max_size=400))
def test_any_bytes_read_as_lines_never_raise(tmp_path, blob):
    path = tmp_path / "q.jsonl"
    path.write_bytes(blob)
    for q in read_query_file(path):
        assert isinstance(q, QueryLine | BadLine)


def test_answers_come_in_line_order_with_errors_in_place(fake_engine, tmp_path):
    (tmp_path / "broken.png").write_bytes(b"not a picture")
    lines = [
        parse_line('{"id": "fruit", "text": "a green fruit", "k": 2}', 1, tmp_path),
        BadLine(2, None, "not a JSON object"),
        parse_line('{"like": ["no-such-item"]}', 3, tmp_path),
        parse_line('{"image": "broken.png"}', 4, tmp_path),
        parse_line('{"text": "a car", "category": "vehicles"}', 5, tmp_path),
    ]
    out = io.StringIO()
    failed = answer(fake_engine, lines, {"k": 3, "strategy": "early"}, out)
    records = [json.loads(r) for r in out.getvalue().splitlines()]
    assert failed == 3 and [r["line"] for r in records] == [1, 2, 3, 4, 5]
    assert len(records[0]["results"]) == 2 and records[0]["id"] == "fruit"
    assert records[1]["error"] == "not a JSON object"
    assert "no-such-item" in records[2]["error"]
    assert "broken.png" in records[3]["error"]
    assert len(records[4]["results"]) == 2  # k from the defaults, two cars in the category
    assert {r["category"] for r in records[4]["results"]} == {"vehicles/cars"}
    expected = fake_engine.recommend(query_file.to_query(lines[0]), k=2)
    assert [r["id"] for r in records[0]["results"]] == [r.item.id for r in expected]


def test_weights_that_switch_everything_off_get_an_error_record(fake_engine, tmp_path):
    lines = [parse_line('{"text": "a", "weights": {"text": 0, "image": 0, "audio": 0}}', 1, tmp_path)]
    out = io.StringIO()
    assert answer(fake_engine, lines, {}, out) == 1
    assert "error" in json.loads(out.getvalue())
