from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from recsys.catalogue import Catalogue, Item, load_catalogue, write_manifest
from recsys.errors import CatalogueError, InputError

REPO = Path(__file__).resolve().parents[2]
HEADER = "id,title,description,category,image,audio"


def _write_csv(root: Path, lines: list[str]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "catalogue.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return root


def test_tiny_catalogue_loads(tiny_catalogue: Path) -> None:
    cat = load_catalogue(tiny_catalogue)
    assert len(cat) == 6 and cat.bad_rows == []
    assert cat.ids[0] == "red-circle" and [it.id for it in cat] == cat.ids
    assert cat.categories == [
        "animals/birds",
        "animals/mammals",
        "shapes/pointy",
        "shapes/round",
        "shapes/square",
    ]
    assert cat.top_categories == ["animals", "shapes"]
    assert cat.category_paths == ["animals", "animals/birds", "animals/mammals", "shapes", *cat.categories[2:]]
    assert cat.has_modality("image").tolist() == [True, True, True, True, False, False]
    assert cat.has_modality("audio").sum() == 3 and cat.has_modality("text").all()
    red = cat.item("red-circle")
    assert red.image == tiny_catalogue.absolute() / "images/red-circle.png" and red.image.is_file()
    assert red.text == "Red circle. A red ball." and red.extra == {"price": "1"}
    assert cat.item("yellow-circle").text == "Yellow circle"
    assert re.fullmatch(r"[0-9a-f]{64}", cat.fingerprint)
    with pytest.raises(InputError, match="unknown modality"):
        cat.has_modality("video")


def test_frame_roundtrip_and_fingerprint(tiny_catalogue: Path) -> None:
    cat = load_catalogue(tiny_catalogue)
    frame = cat.to_frame()
    assert list(frame.columns)[:6] == ["id", "title", "description", "category", "image", "audio"]
    assert frame.loc[0, "image"] == "images/red-circle.png" and frame.loc[4, "image"] == ""
    write_manifest(tiny_catalogue, frame)
    again = load_catalogue(tiny_catalogue)
    assert again.fingerprint == cat.fingerprint
    frame.loc[5, "title"] = "Puppy"
    write_manifest(tiny_catalogue, frame)
    assert load_catalogue(tiny_catalogue).fingerprint != cat.fingerprint


def test_parquet_manifest(tiny_catalogue: Path) -> None:
    frame = load_catalogue(tiny_catalogue).to_frame()
    (tiny_catalogue / "catalogue.csv").unlink()
    write_manifest(tiny_catalogue, frame, fmt="parquet")
    cat = load_catalogue(tiny_catalogue / "catalogue.parquet")
    assert len(cat) == 6 and cat.item("dog").extra == {"price": "6"}


def test_unknown_id_suggests_close_matches(tiny_catalogue: Path) -> None:
    cat = load_catalogue(tiny_catalogue)
    with pytest.raises(InputError, match=r"unknown item id 'red-circel'; did you mean 'red-circle'"):
        cat.index_of("red-circel")
    with pytest.raises(InputError, match=r"unknown item id 'zzz'; the catalogue has 6 items"):
        cat.item("zzz")
    assert cat.index_of("dog") == 5


def test_rows_of_many_ids_match_index_of(tiny_catalogue: Path) -> None:
    cat = load_catalogue(tiny_catalogue)
    ids = [item.id for item in cat.items][::-1]
    assert cat.rows_of(ids).tolist() == [cat.index_of(i) for i in ids]
    assert cat.rows_of(ids[:1]).tolist() == [cat.index_of(ids[0])]
    assert cat.rows_of([]).dtype == np.int64 and len(cat.rows_of([])) == 0
    with pytest.raises(InputError, match=r"unknown item id 'red-circel'"):
        cat.rows_of(["dog", "red-circel"])


def test_every_bad_row_reason(tmp_path: Path, media_factory) -> None:
    root = tmp_path / "cat"
    outside = tmp_path / "outside"
    media_factory.shape_png(root / "ok.png", "circle", (1, 2, 3))
    media_factory.write_sound(root / "ok.ogg", media_factory.tone(500))
    (root / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 10)
    (root / "text.wav").write_text("not audio at all\n" * 10)
    media_factory.shape_png(outside / "secret.png", "square", (9, 9, 9))
    os.symlink(outside / "secret.png", root / "link.png")
    _write_csv(
        root,
        [
            HEADER + ",note",
            "good,Good,Fine row,a/b,ok.png,ok.ogg,kept",  # line 2
            ",No id,,,,,",  # 3
            "good,Again,,,,,",  # 4: duplicate
            "empty,,,,,,",  # 5: nothing at all
            "missing,M,,,nope.png,,",  # 6
            "corrupt,C,,,corrupt.png,,",  # 7
            "badaudio,B,,,,text.wav,",  # 8
            f"absolute,A,,,{outside / 'secret.png'},,",  # 9
            "dotdot,D,,,../outside/secret.png,,",  # 10
            "symlink,S,,,link.png,,",  # 11
            "toomany,T,,,,,,extra,field",  # 12
            "",  # blank lines are skipped, not reported
            "text-only,Text only,,,,,",  # 14
            "deep,Deep,," + "a/" * 33 + ",,,",  # 15: more levels than a store keeps
            "slashes,Slashes,,/food//fruit/,,,",  # 16: read as the filter path food/fruit
            "x" * 1025 + ",Long id,,,,,",  # 17: longer than a store keeps
            "both,Both,,,corrupt.png,nope.ogg,",  # 18: a file's verdict and a refused cell, in column order
            "again,Again,,,corrupt.png,,",  # 19: a file another row shares, and its verdict
            "missing2,M,,,nope.png,ok.ogg,",  # 20: a refused cell another row had
        ],
    )
    cat = load_catalogue(root)
    assert cat.ids == ["good", "text-only", "slashes"] and cat.item("good").extra == {"note": "kept"}
    assert cat.item("slashes").category == "food/fruit"
    reasons = {b.line: (b.id, b.reason) for b in cat.bad_rows}
    expected = {
        3: (None, "empty id"),
        4: ("good", "duplicate id 'good' (first used on line 2)"),
        5: ("empty", "no title, description, image or audio"),
        6: ("missing", "image file 'nope.png' not found"),
        7: ("corrupt", "image file 'corrupt.png' is corrupt"),
        8: ("badaudio", "audio file 'text.wav' could not be decoded"),
        9: ("absolute", "is absolute; use a path relative to the catalogue folder"),
        10: ("dotdot", "outside the catalogue folder ('..' leading outside it)"),
        11: ("symlink", "outside the catalogue folder (a symlink pointing outside it)"),
        12: ("toomany", "9 fields but the header has 7 columns"),
        15: ("deep", "is too long (at most 1024 characters, 32 levels)"),
        17: ("x" * 1025, "the id is 1,025 characters; the limit is 1,024"),
        18: ("both", "audio file 'nope.ogg' not found"),
        19: ("again", "image file 'corrupt.png' is corrupt"),
        20: ("missing2", "image file 'nope.png' not found"),
    }
    assert sorted(reasons) == sorted(expected)
    for line, (item_id, fragment) in expected.items():
        assert reasons[line][0] == item_id
        assert fragment in reasons[line][1], (line, reasons[line][1])
    assert "line 6 (id 'missing'): image file" in str(cat.bad_rows[3])
    assert reasons[18][1].startswith("image file 'corrupt.png' is corrupt") and reasons[18][1].count(";") == 1


def test_oversized_media_is_a_bad_row(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, media_factory) -> None:
    from recsys import media

    root = tmp_path / "cat"
    media_factory.shape_png(root / "big.png", "circle", (1, 2, 3), size=(300, 300))
    _write_csv(root, [HEADER, "big,Big,,,big.png,", "fine,Fine,,,,"])
    monkeypatch.setattr(media.check_image_file, "__kwdefaults__", {"max_bytes": 100})
    cat = load_catalogue(root)
    assert cat.ids == ["fine"] and "the limit is" in cat.bad_rows[0].reason


def test_ids_stay_text_and_paths_may_use_subfolders(tmp_path: Path, media_factory) -> None:
    root = tmp_path / "cat"
    media_factory.shape_png(root / "media" / "a.png", "circle", (1, 2, 3))
    _write_csv(root, [HEADER, "007,Bond,,spy/,media/a.png,", "8,Eight,,,media/../media/a.png,"])
    cat = load_catalogue(root)
    assert cat.ids == ["007", "8"] and cat.item("007").category == "spy"
    assert cat.has_modality("image").all()


def test_catalogue_errors(tmp_path: Path) -> None:
    with pytest.raises(CatalogueError, match="does not exist"):
        load_catalogue(tmp_path / "nowhere")
    with pytest.raises(CatalogueError, match="No manifest"):
        load_catalogue(tmp_path)
    _write_csv(tmp_path / "no-id", ["title,image", "A,"])
    with pytest.raises(CatalogueError, match="no 'id' column"):
        load_catalogue(tmp_path / "no-id")
    _write_csv(tmp_path / "no-content", ["id,category,price", "a,b,1"])
    with pytest.raises(CatalogueError, match="none of the columns title, description, image, audio"):
        load_catalogue(tmp_path / "no-content")
    for lookalike in ("Image", "images", "IMAGE", "img"):
        _write_csv(tmp_path / lookalike, [f"id,title,{lookalike}", "a,A,"])
        with pytest.raises(CatalogueError, match=f"no 'image' column but has '{lookalike}'"):
            load_catalogue(tmp_path / lookalike)
    _write_csv(tmp_path / "bad", [HEADER, ",x,,,,", "y,,,,missing.png,"])
    with pytest.raises(CatalogueError, match="No valid rows.*empty id.*missing.png"):
        load_catalogue(tmp_path / "bad")
    _write_csv(tmp_path / "header-only", [HEADER])
    with pytest.raises(CatalogueError, match="no data rows"):
        load_catalogue(tmp_path / "header-only")
    (tmp_path / "latin1").mkdir()
    (tmp_path / "latin1" / "catalogue.csv").write_bytes((HEADER + "\ncafé,Café,,,,\n").encode("latin-1"))
    with pytest.raises(CatalogueError, match="not UTF-8"):
        load_catalogue(tmp_path / "latin1")
    _write_csv(tmp_path / "both", [HEADER, "a,A,,,,"])
    (tmp_path / "both" / "catalogue.parquet").write_bytes(b"")
    with pytest.raises(CatalogueError, match="keep only one"):
        load_catalogue(tmp_path / "both")


def test_write_manifest_fills_columns_and_is_deterministic(tmp_path: Path) -> None:
    rows = [{"id": "a", "title": "A", "colour": "red"}, {"id": "b", "description": "B", "size": 3}]
    path = write_manifest(tmp_path, rows)
    first = path.read_bytes()
    assert first.decode().splitlines()[0] == HEADER + ",colour,size"
    write_manifest(tmp_path, pd.DataFrame(rows))
    assert path.read_bytes() == first
    assert load_catalogue(tmp_path).item("b").extra == {"colour": "", "size": "3"}
    assert not list(tmp_path.glob(".*.tmp"))


def test_item_text_and_catalogue_construction(tmp_path: Path) -> None:
    item = Item("x", "Hello!", "World", "", None, None, {})
    assert item.text == "Hello! World" and len({item, item}) == 1
    assert Item("y", "", "Only description", "", None, None).text == "Only description"
    cat = Catalogue(tmp_path, [item], [])
    assert cat.has_modality("image").dtype == np.bool_ and len(cat.fingerprint) == 64
    with pytest.raises(CatalogueError, match="unique ids"):
        Catalogue(tmp_path, [item, item], [])


def test_an_item_is_the_frozen_dataclass_its_fields_say() -> None:
    """Item writes its fields itself (for speed): it must still take them by name and position, in
    field order, default ``extra``, refuse changes, compare, hash, copy and pickle as a dataclass."""
    import copy
    import dataclasses
    import inspect
    import pickle

    names = [f.name for f in dataclasses.fields(Item)]
    assert list(inspect.signature(Item).parameters) == names
    values = ("i", "T", "D", "c/d", Path("/a.png"), None, {"k": "v"})
    item, by_name = Item(*values), Item(**dict(zip(names, values, strict=True)))
    assert item == by_name and hash(item) == hash(by_name) and dataclasses.astuple(item) == values
    assert Item(*values[:6]).extra == {} and Item(*values[:6]).extra is not Item(*values[:6]).extra
    assert dataclasses.replace(item, title="U").title == "U" and item.title == "T"
    assert pickle.loads(pickle.dumps(item)) == item == copy.deepcopy(item)
    assert hash(Item(*values[:6], {"other": "extra"})) == hash(item)  # extra is not hashed
    with pytest.raises(dataclasses.FrozenInstanceError):
        item.title = "changed"  # type: ignore[misc]


def test_demo_catalogue_is_valid() -> None:
    cat = load_catalogue(REPO / "data" / "tuxpaint")
    assert cat.bad_rows == []
    assert len(cat) > 700
    assert cat.has_modality("audio").sum() > 100
    assert cat.has_modality("image").all() and cat.has_modality("text").all()
    assert len(cat.top_categories) >= 10 and "animals" in cat.top_categories
    assert all(it.description for it in cat)


def test_demo_catalogue_media_decode() -> None:
    """Every demo sound (and a sample of images) passes the full decode the encoders run."""
    from recsys.media import load_audio, load_image

    cat = load_catalogue(REPO / "data" / "tuxpaint")
    for item in cat.items[::10]:
        assert load_image(item.image).mode == "RGB"
    clips = [load_audio(item.audio) for item in cat if item.audio is not None]
    assert len(clips) > 100 and all(c.note is None and 0.1 < c.seconds < 30 for c in clips)


def _titled(titles: list[str]) -> Catalogue:
    items = [Item(f"id-{i}", t, "", "", None, None) for i, t in enumerate(titles)]
    return Catalogue(Path("."), items, [], fingerprint="titles")


def test_find_matches_titles_and_ids_ignoring_case_and_spacing_in_catalogue_order() -> None:
    cat = _titled(["Red  Apple", "Green apple", "Car", "Pineapple slice"])
    assert cat.find("apple") == ["id-0", "id-1", "id-3"]
    assert cat.find("RED apple") == ["id-0"]  # runs of spaces count as one
    assert cat.find("apple", limit=2) == ["id-0", "id-1"]
    assert cat.find("id-2") == ["id-2"]
    assert cat.find("  ") == cat.ids  # nothing typed: the first items
    assert cat.find("zebra") == []


@given(st.text(max_size=30), st.integers(min_value=0, max_value=10))
@example("0", 0)  # a match with no room for it (found at 10,000 examples)
def test_find_takes_any_text(text: str, limit: int) -> None:
    cat = _titled(["Ünïcode Ápple", "a\tb", "", "ß"])
    found = cat.find(text, limit=limit)
    assert len(found) <= limit and all(i in cat for i in found)
    assert found == [i for i in cat.ids if i in found]  # catalogue order


def test_left_out_columns_read_as_empty(tmp_path: Path, media_factory) -> None:
    """A product-photo catalogue needs no audio (or category) column: the same catalogue as with
    those columns present and empty, fingerprint included."""
    short = tmp_path / "short"
    media_factory.shape_png(short / "images" / "a.png", "circle", (200, 0, 0), size=(40, 40))
    _write_csv(short, ["id,title,image,price", "a,Red ball,images/a.png,3", "b,Just words,,"])
    full = tmp_path / "full"
    media_factory.shape_png(full / "images" / "a.png", "circle", (200, 0, 0), size=(40, 40))
    _write_csv(full, [HEADER + ",price", "a,Red ball,,,images/a.png,,3", "b,Just words,,,,,"])
    got, want = load_catalogue(short), load_catalogue(full)
    assert [(i.id, i.title, i.description, i.category, i.audio, i.extra) for i in got.items] == [
        (i.id, i.title, i.description, i.category, i.audio, i.extra) for i in want.items
    ]
    assert got.has_modality("image").tolist() == [True, False] and not got.has_modality("audio").any()
    assert got.fingerprint == want.fingerprint
