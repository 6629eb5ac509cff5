"""Picking an item: a list for a short catalogue, a search for a long one."""

from __future__ import annotations

from pathlib import Path

from recsys.catalogue import Catalogue, Item
from recsys.ui import picker


def _catalogue(n: int) -> Catalogue:
    items = [Item(f"item-{i}", f"{'Dog' if i % 3 == 0 else 'Cat'} {i}", "", "", None, None) for i in range(n)]
    return Catalogue(Path("."), items, [], fingerprint="pick")


def test_a_short_catalogue_is_listed_whole(monkeypatch):
    monkeypatch.setattr(picker, "LIST_ALL_MAX", 10)
    cat = _catalogue(10)
    assert not picker.needs_search(cat)
    assert picker.choices(cat, "dog") == cat.ids


def test_a_long_catalogue_offers_the_matches_with_the_preset_first(monkeypatch):
    monkeypatch.setattr(picker, "LIST_ALL_MAX", 10)
    monkeypatch.setattr(picker, "MATCHES_SHOWN", 3)
    cat = _catalogue(30)
    assert picker.needs_search(cat)
    assert picker.choices(cat, "dog") == ["item-0", "item-3", "item-6"]
    assert picker.choices(cat, "dog", preset="item-1") == ["item-1", "item-0", "item-3"]
    assert picker.choices(cat, "dog", preset="item-3") == ["item-0", "item-3", "item-6"]  # already offered
    assert picker.choices(cat, "horse") == []
    assert picker.choices(cat, "horse", preset="gone") == []  # an id no longer in the catalogue is dropped


def test_a_long_category_tree_offers_the_matching_paths_with_the_filter_in_force_first(monkeypatch):
    monkeypatch.setattr(picker, "LIST_ALL_MAX", 4)
    monkeypatch.setattr(picker, "MATCHES_SHOWN", 2)
    short = ["animals", "animals/birds", "food"]
    assert picker.category_choices(short, "bird") == short  # listed whole
    paths = ["animals", "animals/Birds", "animals/birds/owls", "food", "food/fruit"]
    assert picker.category_choices(paths, "  BIRDS ") == ["animals/Birds", "animals/birds/owls"]
    assert picker.category_choices(paths, "") == ["animals", "animals/Birds"]
    assert picker.category_choices(paths, "birds", current="food") == ["food", "animals/Birds"]
    assert picker.category_choices(paths, "fruit", current="food/fruit") == ["food/fruit"]  # already offered
    assert picker.category_choices(paths, "fish", current="gone") == []  # a path no longer in the tree is dropped
