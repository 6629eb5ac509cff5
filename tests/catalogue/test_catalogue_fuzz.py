"""Property: whatever CSV manifest a user writes (quotes, commas and newlines in cells, odd unicode,
duplicate or extra columns, stray quotes), loading it raises nothing but ``RecsysError``, every row
that loads is exactly what was written, and no row disappears silently: each is loaded, or reported
on its own line, or inside the line range of a reported unbalanced quote.
"""

from __future__ import annotations

import csv
import io
import os
import re
import tempfile
from pathlib import Path

import pytest
from fakes import write_square
from hypothesis import example, given
from hypothesis import strategies as st

from recsys.catalogue import COLUMNS, MAX_CELL_CHARS, _MediaLocator, load_catalogue
from recsys.catalogue.categories import normalize_category
from recsys.errors import CatalogueError, RecsysError


# Any character UTF-8 can carry (no lone surrogates), weighted towards the ones CSV cares about.
def _cells(specials: str) -> st.SearchStrategy[str]:
    return st.text(
        st.one_of(st.sampled_from(list(specials)), st.characters(exclude_categories=["Cs"], exclude_characters='"')),
        max_size=12,
    )


cell_text = _cells(',"\n\r ;\t\\/\0\ufeff\u2028é漢🙂')
#: Cells without quotes of their own: a stray quote next to quoted quotes ("" pairs) can pair up with
#: them so that no line betrays the merge; the detector covers quotes in otherwise quote-free files.
unquoted_text = _cells(",\n\r ;\t\\/\0\ufeff\u2028é漢🙂")
EXTRA = ["price", "ürl", "note,with comma", 'quo"te']


@st.composite
def manifests(draw, cell_text: st.SearchStrategy[str] = cell_text) -> tuple[list[str], list[dict[str, str]]]:
    """A header (required columns in any order, plus some extras) and rows with unique ids and a title."""
    extras = draw(st.lists(st.sampled_from(EXTRA), unique=True, max_size=2))
    columns = draw(st.permutations([*COLUMNS, *extras]))
    n = draw(st.integers(1, 6))
    # no NUL in ids and categories: no store keeps one (a row holding one is reported: see the last test)
    storable = cell_text.filter(lambda s: s.strip() and "\0" not in s)
    ids = draw(st.lists(storable, min_size=n, max_size=n, unique_by=str.strip))
    rows = []
    for item_id in ids:
        row = {c: draw(cell_text) for c in columns}
        row.update(id=item_id, title=draw(cell_text.filter(lambda s: s.strip())), image="", audio="")
        row["category"] = row["category"].replace("\0", "")
        rows.append(row)
    return list(columns), rows


def _write(root: Path, columns: list[str], rows: list[dict[str, str]]) -> list[int]:
    """Write the manifest with a standard CSV writer; returns each row's first line (header = 1; a
    carriage return inside a quoted cell starts a line, as for the CSV reader)."""
    buf = io.StringIO(newline="")
    writer = csv.writer(buf, lineterminator="\r\n")  # quotes cells holding "\r" (a "\n" terminator would not)
    writer.writerow(columns)
    starts = []
    for row in rows:
        starts.append(len(io.StringIO(buf.getvalue(), newline="").readlines()) + 1)  # lines as the reader counts
        writer.writerow([row[c] for c in columns])
    (root / "catalogue.csv").write_text(buf.getvalue(), encoding="utf-8", newline="")
    return starts


def _accounted(catalogue_or_error, rows: list[dict[str, str]], starts: list[int]) -> None:
    """Every written row is loaded as written, or reported by its line or an unbalanced-quote range."""
    if isinstance(catalogue_or_error, CatalogueError):
        return  # the whole manifest was refused with a message: nothing was loaded behind the user's back
    catalogue = catalogue_or_error
    loaded = {item.id: item for item in catalogue.items}
    ranges = _ranges(catalogue)
    reported = {b.line for b in catalogue.bad_rows}
    for row, line in zip(rows, starts, strict=True):
        item = loaded.get(row["id"].strip())
        if item is not None and item.title == row["title"].strip():
            assert item.description == row["description"].strip()
            assert item.category == "/".join(part for part in row["category"].strip().split("/") if part)
            assert normalize_category(item.category, allow_empty=True) == item.category  # as every store reads it
            continue
        assert line in reported or any(a <= line <= b for a, b in ranges), f"row on line {line} lost silently"


def _ranges(catalogue) -> list[tuple[int, int]]:
    """The line ranges reported as swallowed by an unbalanced quote, or spanned by a bad row."""
    found = (re.findall(r"(?:swallows|spans) lines (\d+)-(\d+)", b.reason) for b in catalogue.bad_rows)
    return [(int(a), int(b)) for pairs in found for a, b in pairs]


def _load(root: Path):
    try:
        return load_catalogue(root)
    except CatalogueError as exc:
        return exc


@given(manifest=manifests())
def test_a_well_formed_manifest_loads_every_row_as_written(manifest):
    columns, rows = manifest
    with tempfile.TemporaryDirectory() as tmp:
        starts = _write(Path(tmp), columns, rows)
        result = _load(Path(tmp))
        assert not isinstance(result, CatalogueError), result
        _accounted(result, rows, starts)
        assert {r["id"].strip() for r in rows} >= {item.id for item in result.items}


STRAYS = st.sampled_from(['"', '"x', ',"', '""" ', "\n"])


@given(manifest=manifests(unquoted_text), where=st.integers(0, 10_000), stray=STRAYS)
def test_a_stray_quote_or_newline_is_reported_never_a_silent_loss(manifest, where, stray):
    columns, rows = manifest
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        _write(root, columns, rows)
        text = (root / "catalogue.csv").read_text(encoding="utf-8")
        header_end = text.index("\n") + 1 if not any("\n" in c for c in columns) else len(text)
        at = header_end + where % max(1, len(text) - header_end)
        (root / "catalogue.csv").write_text(text[:at] + stray + text[at:], encoding="utf-8", newline="")
        try:
            result = _load(root)
        except RecsysError:
            return
        if isinstance(result, CatalogueError):
            return
        # The damage may change what a row says, but no row may vanish: every written row is an item,
        # a reported bad row, or inside a reported unbalanced-quote line range.
        reported = {b.line for b in result.bad_rows} | {n for a, b in _ranges(result) for n in range(a, b + 1)}
        assert len(result.items) + len(reported) >= len(rows)


@given(name=st.sampled_from([*COLUMNS, *EXTRA]))
def test_a_column_named_twice_is_refused_naming_it(name):
    with tempfile.TemporaryDirectory() as tmp:
        columns = [*COLUMNS, *([] if name in COLUMNS else [name]), name]
        _write(Path(tmp), columns, [dict.fromkeys(columns, "x")])
        with pytest.raises(CatalogueError, match=f"duplicate column names: '{re.escape(name)}' in columns"):
            load_catalogue(tmp)


def test_an_unclosed_quote_reports_the_rows_it_swallowed(tmp_path):
    header = ",".join(COLUMNS)
    (tmp_path / "catalogue.csv").write_text(
        f'{header}\na,"Apple,red,fruit,,\nb,Banana,yellow,fruit,,\nc,Cherry,red,fruit,,\n', encoding="utf-8"
    )
    with pytest.raises(CatalogueError, match="line 2 .*unbalanced quote in title swallows lines 3-4"):
        load_catalogue(tmp_path)


def test_a_huge_title_fails_its_row_only(tmp_path):
    header = ",".join(COLUMNS)
    (tmp_path / "catalogue.csv").write_text(f"{header}\na,{'x' * 1_000_000},d,c,,\nb,Banana,,,,\n", encoding="utf-8")
    catalogue = load_catalogue(tmp_path)
    assert catalogue.ids == ["b"]
    assert f"title is 1,000,000 characters; the limit is {MAX_CELL_CHARS:,}" in str(catalogue.bad_rows[0])


@pytest.mark.parametrize("path, words", [
    ("m/" + "y" * 300 + ".png", "file name of 304 bytes"),
    ("m/o\0k.png", "contains a NUL byte"),
    ("m", "is a folder, not a file"),
    ("m/fifo.png", "named pipe"),
    ("m/loop.png", "symlink loop"),
    ("m/missing.png", "not found"),
])  # fmt: skip
def test_media_paths_that_are_not_files_fail_their_row_with_the_reason(tmp_path, path, words):
    (tmp_path / "m").mkdir()
    os.mkfifo(tmp_path / "m" / "fifo.png")
    (tmp_path / "m" / "loop.png").symlink_to(tmp_path / "m" / "loop.png")
    header = ",".join(COLUMNS)
    (tmp_path / "catalogue.csv").write_text(f"{header}\na,Apple,,,{path},\nb,Banana,,,,\n", encoding="utf-8")
    catalogue = load_catalogue(tmp_path)
    assert catalogue.ids == ["b"] and catalogue.bad_rows[0].line == 2
    assert words in catalogue.bad_rows[0].reason


@given(path=st.sampled_from(["../x.png", "m/../../x.png", "/etc/passwd", "C:/x.png", "\\\\server\\x.png", "out/x.png",
                             "m/inner/../../../x.png", "./out/../out/x.png"]))  # fmt: skip
def test_media_paths_never_escape_the_catalogue_folder(path):
    with tempfile.TemporaryDirectory() as tmp:
        outside, root = Path(tmp) / "outside", Path(tmp) / "cat"
        (root / "m").mkdir(parents=True)
        outside.mkdir()
        write_square(outside / "x.png", "red")
        (root / "out").symlink_to(outside)  # a symlinked folder inside that points outside
        header = ",".join(COLUMNS)
        (root / "catalogue.csv").write_text(f"{header}\na,Apple,,,{path},\nb,Banana,,,,\n", encoding="utf-8")
        catalogue = load_catalogue(root)
        assert catalogue.ids == ["b"]
        reason = catalogue.bad_rows[0].reason
        assert "absolute" in reason or "outside the catalogue folder" in reason


class _GeneralLocator(_MediaLocator):
    """Every cell through the general path, as before the short way for plain cells existed."""

    def _locate_plain(self, rel):
        return None


@pytest.fixture(scope="module")
def media_tree(tmp_path_factory):
    """A catalogue folder with every kind of entry a media cell can name, and a folder outside it."""
    base = tmp_path_factory.mktemp("locate")
    root, outside = base / "cat", base / "outside"
    (root / "m" / "deep").mkdir(parents=True)
    outside.mkdir()
    (root / "\n:").mkdir()  # a name whose second character is a drive letter's colon
    for folder in (root, root / "m", root / "m" / "deep", root / "\n:", outside):
        write_square(folder / "x.png", "red")
    (root / "out").symlink_to(outside)  # a folder inside pointing outside
    (root / "in").symlink_to(root / "m")  # a folder inside pointing inside
    (root / "m" / "link.png").symlink_to(root / "x.png")
    (root / "m" / "away.png").symlink_to(outside / "x.png")
    (root / "m" / "loop.png").symlink_to(root / "m" / "loop.png")
    os.mkfifo(root / "m" / "fifo.png")
    return root


NAMES = ["m", "deep", "x.png", "out", "in", "link.png", "away.png", "loop.png", "fifo.png", "missing.png",
         "..", ".", "", "..x", "a\\b", "C:", "\n:", "x.png\n", "..\n", "o\0k"]  # fmt: skip


@given(names=st.lists(st.sampled_from(NAMES), min_size=1, max_size=5), leading=st.sampled_from(["", "/", "./"]))
@example(names=["out", "x.png"], leading="")
@example(names=["\n:", "x.png"], leading="")
@example(names=["in", "deep", "x.png"], leading="")
@example(names=["m", "link.png"], leading="")
@example(names=["m", "deep", "x.png"], leading="")
def test_a_plain_media_cell_is_located_as_the_general_path_locates_it(media_tree, names, leading):
    """The short way for plain cells (recsys.catalogue._MediaLocator._locate_plain) must give the same
    path, refusal and stat as the general path for any cell, symlinks and escapes included."""
    rel = leading + "/".join(names)
    fast, general = _MediaLocator(media_tree).locate(rel, "image"), _GeneralLocator(media_tree).locate(rel, "image")
    assert (fast[0], fast[1]) == (general[0], general[1])
    assert (fast[2] is None) == (general[2] is None)
    if fast[2] is not None:
        assert (fast[2].st_ino, fast[2].st_mode) == (general[2].st_ino, general[2].st_mode)
        assert str(fast[0]) == str(general[0])


def test_write_manifest_round_trips_carriage_returns(tmp_path):
    from recsys.catalogue import write_manifest

    write_manifest(tmp_path, [{"id": "a\rb", "title": "one\rtwo\r\nthree"}, {"id": "c", "title": "C"}])
    catalogue = load_catalogue(tmp_path)
    assert catalogue.ids == ["a\nb", "c"] and catalogue.items[0].title == "one\ntwo\nthree"


@given(
    kept=st.lists(st.sampled_from(COLUMNS[1:]), unique=True),
    extras=st.lists(st.sampled_from([*EXTRA, "Image", "images", "Title", "categories", "sound"]), unique=True),
    order=st.randoms(use_true_random=False),
)
def test_any_subset_of_the_columns_loads_with_the_rest_empty_or_is_refused_with_a_message(kept, extras, order):
    """Only ``id`` is required: a header with any other columns left out loads them as empty
    cells, or is refused with a CatalogueError (no content column; a left-out column misspelt)."""
    columns = ["id", *kept, *extras]
    order.shuffle(columns)
    row = {c: ("x" if c in ("title", "description", "category") else "") for c in columns} | {"id": "a"}
    with tempfile.TemporaryDirectory() as tmp:
        _write(Path(tmp), columns, [row])
        try:
            cat = load_catalogue(tmp)
        except CatalogueError:
            return
        item = cat.items[0]
        assert (item.title, item.description) == tuple("x" if c in kept else "" for c in ("title", "description"))
        assert item.image is None and item.audio is None and item.category == ("x" if "category" in kept else "")
        assert set(item.extra) == {c for c in extras}


# ids and category paths around the stores' limits (1,024 characters, 32 levels, no NUL), with "//" and outer slashes
long_ids = st.one_of(
    st.text(alphabet="ab\0", min_size=1, max_size=4), st.integers(1000, 1100).map(lambda n: "i" * n)
).filter(lambda s: s.strip())
category_cells = st.lists(st.sampled_from(["a", "", "bb", " c", "d\0"]), max_size=36).map("/".join) | st.integers(
    1000, 1100
).map(lambda n: "c" * n)


@given(rows=st.lists(st.tuples(long_ids, category_cells), min_size=1, max_size=6, unique_by=lambda r: r[0].strip()))
def test_every_row_that_loads_can_be_stored(rows):
    """What the loader accepts, every vector store accepts (ids and categories are checked alike):
    a row past a store's limits is reported by the loader, not refused by a large catalogue's first sync."""
    from recsys.store import open_store

    columns = ["id", "title", "description", "category"]
    written = [{"id": i, "title": "t", "description": "", "category": c} for i, c in rows]
    with tempfile.TemporaryDirectory() as tmp:
        starts = _write(Path(tmp), columns, written)
        catalogue = _load(Path(tmp))
    _accounted(catalogue, written, starts)
    if isinstance(catalogue, CatalogueError):  # every row was reported
        return
    store = open_store("memory://", fields={"text": 2})
    store.upsert([it.id for it in catalogue.items], [it.category for it in catalogue.items], {})
    assert len(store) == len(catalogue.items)
