"""Onboarding choices picked from whatever catalogue is loaded."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from fakes import build_catalogue

from recsys.catalogue import Catalogue, Item, load_catalogue
from recsys.ui import examples


def test_fake_catalogue_examples_come_from_its_items(tmp_path):
    catalogue = load_catalogue(build_catalogue(tmp_path / "cat"))
    queries = examples.example_queries(catalogue)
    titles = {it.title.lower() for it in catalogue.items}
    assert queries and set(queries) <= titles and len(set(queries)) == len(queries)
    # the largest top-level categories come first: food and vehicles hold two items each
    assert {q for q in queries[:2]} <= {"apple", "lime", "car", "taxi"}
    assert examples.example_queries(catalogue) == queries  # deterministic
    image, sound = examples.sample_item(catalogue, "image"), examples.sample_item(catalogue, "audio")
    assert image.image is not None and sound.audio is not None
    summary = examples.catalogue_summary(catalogue)
    assert summary.startswith("the catalogue 'cat': 6 items in 4 categories")
    assert "5 with a picture, 5 with a sound" in summary
    tops = {it.category.split("/")[0] for it in catalogue.items if it.category}
    assert ("..." in summary) == (len(tops) > 4)  # "..." only when some top categories go unnamed


def test_readme_heading_names_the_catalogue_and_odd_titles_are_skipped(tmp_path):
    root = build_catalogue(tmp_path / "cat")
    (root / "README.md").write_text("intro\n# Garden birds\n\nmore\n", encoding="utf-8")
    frame = pd.read_csv(root / "catalogue.csv", dtype=str, keep_default_na=False)
    frame.loc[frame["id"] == "apple", "title"] = "A1"
    frame.loc[frame["id"] == "lime", "title"] = "X"
    frame.to_csv(root / "catalogue.csv", index=False)
    catalogue = load_catalogue(root)
    assert examples.catalogue_summary(catalogue).startswith("Garden birds: 6 items")
    queries = examples.example_queries(catalogue, n=10)
    assert "a1" not in queries and "x" not in queries and "car" in queries or "taxi" in queries


def test_no_sample_without_media(tmp_path):
    root = build_catalogue(tmp_path / "cat")
    frame = pd.read_csv(root / "catalogue.csv", dtype=str, keep_default_na=False)
    frame["audio"] = ""
    frame.to_csv(root / "catalogue.csv", index=False)
    assert examples.sample_item(load_catalogue(root), "audio") is None


def test_intro_is_chosen_once_per_loaded_catalogue(monkeypatch):
    catalogue = Catalogue(Path("."), [Item("a", "Robin", "", "birds", None, None)], [], fingerprint="x")
    first = examples.intro(catalogue)
    monkeypatch.setattr(examples, "example_queries", lambda *a, **k: pytest.fail("chosen again on a rerun"))
    assert examples.intro(catalogue) is first
    assert first.examples == ["robin"] and first.samples == {"image": None, "audio": None}
