"""Selecting training / evaluation sources by the catalogue's ``source`` column."""

from __future__ import annotations

import pytest

from recsys.alignment.sources import item_text, load_sources, select_source, source_matches
from recsys.catalogue import load_catalogue
from recsys.errors import InputError

CLIP_A = "openclipart-png 1: usr/share/openclipart/png/a.png"
CLIP_B = "openclipart-png 1: usr/share/openclipart/png/b.png"


def _catalogue(folder, sources):
    folder.mkdir(parents=True, exist_ok=True)
    rows = ["id,title,description,category,image,audio,source"]
    rows += [f"i{i},Item {i},,things,,,{src}" for i, src in enumerate(sources)]
    (folder / "catalogue.csv").write_text("\n".join(rows) + "\n")
    return folder


def test_names_match_whole_tokens_of_the_origin_only():
    assert source_matches("openclipart-png 1:0.18: usr/share/openclipart/png/x.png", "openclipart")
    assert source_matches("@iconify/json 2.2.535: mdi:home", "iconify")
    assert source_matches("@iconify/json 2.2.535: bitcoin-icons:key", "bitcoin-icons")
    assert not source_matches("@iconify/json 2.2.535: bitcoin-icons:key", "bi")
    assert source_matches("@iconify/json 2.2.535: bi:key", "BI")
    assert not source_matches("anything", "  ")
    # the item's own name is not where it came from
    assert not source_matches("@iconify/json 2.2.535: bi:emoji-neutral-fill", "emoji")
    assert source_matches("@iconify/json 2.2.535: bi:emoji-neutral-fill", "bi")
    assert not source_matches("openclipart-png 1: usr/share/openclipart/png/animals/cat.png", "cat")
    assert source_matches("openclipart-png 1: usr/share/openclipart/png/animals/cat.png", "animals")
    assert source_matches("tuxpaint", "tuxpaint")
    assert not source_matches("@iconify/json 2.2.535: mdi-light:home", "mdi")
    assert source_matches("@iconify/json 2.2.535: mdi-light:home", "mdi-light")


def test_select_source_keeps_matching_items_in_order(tmp_path):
    values = [CLIP_A, "@iconify/json 2: mdi:a", CLIP_B]
    catalogue = load_catalogue(_catalogue(tmp_path / "big", values))
    src = select_source(catalogue, "openclipart")
    assert src.name == "openclipart" and [it.id for it in src.catalogue.items] == ["i0", "i2"]
    whole = select_source(catalogue)
    assert whole.name == "big" and len(whole.catalogue) == 3


def test_missing_or_empty_sources_are_input_errors(tmp_path):
    catalogue = load_catalogue(_catalogue(tmp_path / "big", [CLIP_A, "@iconify/json 2: mdi:a"]))
    with pytest.raises(InputError, match="matches no item.*openclipart-png"):
        select_source(catalogue, "emoji")
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "catalogue.csv").write_text("id,title,description,category,image,audio\na,A,,x,,\n")
    with pytest.raises(InputError, match="no 'source' column"):
        select_source(load_catalogue(plain), "iconify")
    with pytest.raises(InputError, match="No training source"):
        load_sources([])


def test_load_sources_reads_each_catalogue_once_per_spec(tmp_path):
    folder = _catalogue(tmp_path / "big", [CLIP_A, "@iconify/json 2: mdi:a"])
    sources = load_sources([(str(folder), ["openclipart", "iconify"])])
    assert [(s.name, len(s.catalogue)) for s in sources] == [("openclipart", 1), ("iconify", 1)]
    assert sources[0].catalogue.root == sources[1].catalogue.root


def test_item_text_falls_back_and_rejects_unknown_fields(tmp_path):
    catalogue = load_catalogue(_catalogue(tmp_path / "c", ["x"]))
    item = catalogue.items[0]
    assert item_text(item, "title") == "Item 0" and item_text(item, "description") == "Item 0"
    with pytest.raises(InputError, match="Unknown training text"):
        item_text(item, "keywords")
