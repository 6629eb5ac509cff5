"""Query files: many queries answered by one start of the engine.

Why: on a large catalogue a start (the catalogue, the engine's matrices, the vector store) takes
about a minute at 1M items and a query about 10 ms, so a user with a list of queries (a batch of
recommendations, an evaluation) should pay the start once. A query file is JSON Lines, one query
per line, e.g.::

    {"id": "q1", "text": "a red bicycle", "weights": {"text": 1, "image": 0.5}, "k": 5}
    {"image": "photos/lamp.jpg", "strategy": "rrf", "category": "home"}
    {"like": ["item-17"], "dislike": ["item-3"]}

Keys: ``id`` (text or number; the line number when absent), ``text``, ``image`` and ``audio``
(paths; relative ones are relative to the query file's folder), ``like`` and ``dislike`` (lists of
item ids), ``weights`` (an object, or ``"text=1,image=0.5"``), ``strategy``, ``similarity``,
``category`` and ``k``. A setting a line leaves out takes the command line's. Blank lines are
skipped. A bad line (not JSON, an unknown key, a wrong value, a missing file) is reported with its
line number and answered with an ``error`` record in its place; the other lines are answered.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from recsys import fusion
from recsys.errors import InputError, RecsysError
from recsys.paths import check_input_file
from recsys.recommend.query import Query, check_text

#: A longer line is refused (and read no further into memory).
MAX_LINE_BYTES = 1 << 20
#: The most results one query may ask for.
MAX_K = 100_000
#: Settings a line may give; the rest of its keys say what is asked.
SETTINGS = ("weights", "strategy", "similarity", "category", "k")
KEYS = ("id", "text", "image", "audio", "like", "dislike", *SETTINGS)


@dataclass(frozen=True)
class QueryLine:
    """One checked query of a file: what it asks (media as paths, decoded when answered) and the
    settings it gives."""

    line: int
    id: str
    text: str | None = None
    image: Path | None = None
    audio: Path | None = None
    likes: tuple[str, ...] = ()
    dislikes: tuple[str, ...] = ()
    settings: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class BadLine:
    """A line that is not a usable query, and why."""

    line: int
    id: str | None
    reason: str


def parse_line(text: str, line: int, base: Path) -> QueryLine:
    """The query on one line of a file in folder ``base``; :class:`InputError` says what is wrong."""
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise InputError(f"not a JSON object ({str(exc)[:80]})") from None
    if not isinstance(data, dict):
        raise InputError(f"not a JSON object but {_kind(data)}")
    unknown = sorted(str(k) for k in data if k not in KEYS)
    if unknown:
        raise InputError(f"unknown key {_quoted(unknown[0])}; a query's keys are {', '.join(KEYS)}")
    query = QueryLine(
        line=line,
        id=_query_id(data.get("id"), line),
        text=None if data.get("text") is None else check_text(data["text"], "'text'"),
        image=_media(data.get("image"), "image", base),
        audio=_media(data.get("audio"), "audio", base),
        likes=_ids(data.get("like"), "like"),
        dislikes=_ids(data.get("dislike"), "dislike"),
        settings=_settings(data),
    )
    asked = (query.text or "").strip(), query.image, query.audio, query.likes, query.dislikes
    if not any(part for part in asked):
        raise InputError("empty query: give text, image, audio, like or dislike")
    return query


def read_query_file(source: str | os.PathLike[str]) -> list[QueryLine | BadLine]:
    """Every non-blank line of a query file (``-``: standard input), in order, checked."""
    if os.fspath(source) == "-":
        import sys

        return list(_parsed(sys.stdin.buffer, Path.cwd()))
    path = check_input_file(source, "Query file")
    try:
        with open(path, "rb") as fh:
            return list(_parsed(fh, path.resolve().parent))
    except OSError as exc:
        raise InputError(f"Query file '{path}' cannot be read ({exc.strerror or exc}).") from None


def first_problem(lines: list[QueryLine | BadLine]) -> str | None:
    """Why no line of a file can be answered (so that nothing is loaded for it), else None."""
    if any(isinstance(q, QueryLine) for q in lines):
        return None
    if not lines:
        return "the query file holds no query (one JSON object per line)"
    bad = lines[0]
    assert isinstance(bad, BadLine)
    return f"no line of the query file is a usable query; line {bad.line}: {bad.reason}"


def _parsed(fh: IO[bytes], base: Path) -> Iterator[QueryLine | BadLine]:
    number = 0
    while True:
        raw = fh.readline(MAX_LINE_BYTES + 1)
        if not raw:
            return
        number += 1
        if len(raw) > MAX_LINE_BYTES and not raw.endswith(b"\n"):
            while raw and not raw.endswith(b"\n"):  # the rest of the line, a block at a time
                raw = fh.readline(MAX_LINE_BYTES)
            yield BadLine(number, None, f"longer than {MAX_LINE_BYTES // 1024} KiB")
            continue
        try:
            text = raw.decode("utf-8-sig" if number == 1 else "utf-8")  # a BOM may open the file
        except UnicodeDecodeError as exc:
            yield BadLine(number, None, f"byte {raw[exc.start]:#04x} at column {exc.start + 1} is not UTF-8")
            continue
        if not text.strip():
            continue
        try:
            yield parse_line(text, number, base)
        except RecsysError as exc:
            yield BadLine(number, _given_id(text), " ".join(str(exc).split()))


def _kind(value: Any) -> str:
    return {list: "a list", str: "a string", bool: "true or false", type(None): "null"}.get(type(value), "a number")


def _quoted(text: str, limit: int = 40) -> str:
    return repr(text if len(text) <= limit else text[: limit - 3] + "...")


def _query_id(value: Any, line: int) -> str:
    if value is None:
        return str(line)
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise InputError(f"'id' must be text or a whole number, got {_kind(value)}")
    return check_text(str(value), "'id'")


def _given_id(text: str) -> str | None:
    """The id a bad line gives, when it can be read, so its error record can be matched up."""
    try:
        data = json.loads(text)
        value = data.get("id") if isinstance(data, dict) else None
        return _query_id(value, 0) if value is not None else None
    except (ValueError, RecursionError, RecsysError):
        return None


def _media(value: Any, key: str, base: Path) -> Path | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise InputError(f"'{key}' must be a file path, got {_kind(value)}")
    if not value.strip():
        raise InputError(f"'{key}' is empty; give a file path or leave the key out")
    if "\0" in value:
        raise InputError(f"'{key}' path {_quoted(value)} contains a NUL byte")
    check_text(value, f"the '{key}' path")  # a lone surrogate cannot name a file
    path = Path(value).expanduser()
    return check_input_file(path if path.is_absolute() else base / path, f"The '{key}' file")


def _ids(value: Any, key: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InputError(f"'{key}' must be a list of item ids (text)")
    return tuple(check_text(v, f"an id in '{key}'") for v in value)


def _settings(data: Mapping[str, Any]) -> dict[str, Any]:
    settings: dict[str, Any] = {}
    weights = data.get("weights")
    if isinstance(weights, str):
        settings["weights"] = fusion.parse_weights(weights)
    elif isinstance(weights, dict):
        unknown = [str(m) for m in weights if m not in fusion.WEIGHT_MODALITIES]
        if unknown:
            raise InputError(f"'weights' names {_quoted(unknown[0])}; use {', '.join(fusion.WEIGHT_MODALITIES)}")
        if any(isinstance(v, bool | str) for v in weights.values()):
            raise InputError("'weights' must map modalities to numbers")
        settings["weights"] = fusion.check_weights(weights)
    elif weights is not None:
        raise InputError(f"'weights' must be an object or 'text=1,image=0.5', got {_kind(weights)}")
    for key, choices in (("strategy", fusion.STRATEGIES), ("similarity", fusion.SIMILARITIES)):
        value = data.get(key)
        if value is not None:
            if value not in choices:
                raise InputError(f"'{key}' must be one of {', '.join(choices)}")
            settings[key] = value
    category = data.get("category")
    if category is not None:
        settings["category"] = check_text(category, "'category'")
    k = data.get("k")
    if k is not None:
        if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= MAX_K:
            raise InputError(f"'k' must be a whole number from 1 to {MAX_K:,}")
        settings["k"] = k
    return settings


def to_query(spec: QueryLine) -> Query:
    """The engine's query for a checked line: its media files decoded now (:class:`InputError` for
    a file that is not a picture or a sound)."""
    from recsys import media

    return Query(
        text=spec.text,
        image=media.load_image(spec.image) if spec.image is not None else None,
        audio=media.load_audio(spec.audio) if spec.audio is not None else None,
        likes=spec.likes,
        dislikes=spec.dislikes,
    )


def answer(engine: Any, lines: list[QueryLine | BadLine], defaults: Mapping[str, Any], out: IO[str]) -> int:
    """Write one JSON record per line to ``out`` as it is answered (``results``, or ``error`` for a
    line that cannot be answered: a bad line, an unknown liked id, a file that does not decode);
    returns how many got an error."""
    from recsys.export import result_rows

    failed = 0
    for spec in lines:
        record: dict[str, Any] = {"line": spec.line, "id": spec.id}
        try:
            if isinstance(spec, BadLine):
                raise InputError(spec.reason)
            query = to_query(spec)
            results = engine.recommend(query, **{**defaults, **spec.settings})
            record["results"] = result_rows(results)
            note = engine.audio_note(query.audio)
            if note is not None:
                record["note"] = note.message
        except RecsysError as exc:
            failed += 1
            record["error"] = " ".join(str(exc).split())
        out.write(json.dumps(record, ensure_ascii=False) + "\n")
        out.flush()
    return failed
