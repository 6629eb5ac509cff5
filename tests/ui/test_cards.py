"""Card fragments that are plain HTML strings (no Streamlit session needed)."""

from __future__ import annotations

from recsys.ui.cards import confidence_html


def test_confidence_lines_are_escaped_and_absent_without_confidence():
    assert confidence_html({}) == ""
    out = confidence_html({"text->image": 0.12, "<b>->x": 0.9})
    assert "weak match (confidence 0.12)" in out and "<b>-" not in out and "&lt;b&gt;" in out
