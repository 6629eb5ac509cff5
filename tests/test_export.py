"""Results as rows, CSV and JSON (the app's downloads and the CLI's --json)."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from recsys import export
from recsys.catalogue import Item
from recsys.recommend.engine import Recommendation


def rec(rank, item_id, title, score, contributions, ranks=None):
    item = Item(item_id, title, "", "food/fruit", Path("/x.png"), None)
    return Recommendation(item, rank, score, contributions, ranks or {})


RESULTS = [
    rec(1, "apple", "Apple", 0.6, {"text": 0.45, "text->image": 0.15, "text->audio": 0.0}),
    rec(2, "=cmd", "=HYPERLINK(\"x\")", 0.2, {"text": 0.25, "text->image": -0.05}),
]


def test_shares_are_percent_of_the_bar_without_zero_pairs():
    assert export.shares_percent({"text": 0.45, "text->image": 0.15, "text->audio": 0.0}) == {
        "text": 75.0,
        "text->image": 25.0,
    }
    assert export.shares_percent({}) == {}


def test_json_round_trips_with_settings_and_weak_flags():
    text = export.results_json(RESULTS, {"strategy": "early", "text": "apple"}, threshold=0.3)
    data = json.loads(text)
    assert data["format"] == export.JSON_FORMAT
    assert data["settings"] == {"strategy": "early", "text": "apple"}
    first, second = data["results"]
    assert first["id"] == "apple" and first["rank"] == 1 and not first["weak"]
    assert sum(first["contributions"].values()) == pytest.approx(first["score"])
    assert second["weak"] is True and second["title"] == "=HYPERLINK(\"x\")"  # JSON keeps text as is
    assert "pair_ranks" not in first


def test_csv_has_one_column_group_per_pair_and_defuses_formulas():
    rows = list(csv.reader(io.StringIO(export.results_csv(RESULTS, threshold=0.3))))
    header, first, second = rows
    assert header[:6] == ["rank", "id", "title", "category", "score", "weak"]
    assert "text->image contribution" in header and "text->audio share %" in header
    line = dict(zip(header, first, strict=True))
    assert line["weak"] == "no" and float(line["text share %"]) == 75.0 and line["text->audio share %"] == "0.0"
    other = dict(zip(header, second, strict=True))
    assert other["title"].startswith("'=") and other["id"] == "'=cmd" and other["weak"] == "yes"
    assert other["text->audio contribution"] == ""  # the second result has no such pair


def test_rrf_exports_carry_the_ranks():
    results = [rec(1, "apple", "Apple", 0.016, {"text": 0.008, "image": 0.008}, {"text": 1, "image": 2})]
    assert export.result_rows(results)[0]["pair_ranks"] == {"text": 1, "image": 2}
    header, line = list(csv.reader(io.StringIO(export.results_csv(results))))
    assert dict(zip(header, line, strict=True))["image rank"] == "2"
    assert "weak" not in header


def test_exports_carry_the_cross_modal_confidence_when_there_is_one():
    item = Item("apple", "Apple", "", "food/fruit", Path("/x.png"), None)
    results = [
        Recommendation(item, 1, 0.6, {"text": 0.45, "text->image": 0.15}, {}, {"text->image": 0.1834}),
        rec(2, "pear", "Pear", 0.5, {"text": 0.5}),
    ]
    rows = export.result_rows(results)
    assert rows[0]["confidence"] == {"text->image": 0.1834} and "confidence" not in rows[1]
    header, first, second = list(csv.reader(io.StringIO(export.results_csv(results))))
    assert header[-1] == "text->image confidence" and first[-1] == "0.1834" and second[-1] == ""
    assert "confidence" not in export.results_csv(RESULTS)
