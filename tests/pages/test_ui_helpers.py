"""Pure helpers behind the pages: profile rules, category options, contribution bar."""

from __future__ import annotations

from types import SimpleNamespace

from recsys.recommend.explain import score_parts
from recsys.ui.cards import contribution_bar_html, legend_html, legend_pairs, parts_html
from recsys.ui.state import Profile, get_profile
from recsys.ui.uploads import limit_mb


def test_profile_like_dislike_are_exclusive_and_ordered():
    p = Profile()
    p.like("a")
    p.like("b")
    p.like("a")
    p.dislike("a")
    assert p.likes == ["b"] and p.dislikes == ["a"]
    p.like("a")
    assert p.likes == ["b", "a"] and p.dislikes == []
    p.prune({"a"})
    assert p.likes == ["a"]
    p.clear()
    assert p.is_empty()


def test_profile_lives_in_the_session_mapping():
    state: dict = {}
    get_profile(state).like("x")
    assert get_profile(state).likes == ["x"]


def test_contribution_bar_widths_follow_the_shares():
    html = contribution_bar_html({"text": 0.3, "image": 0.1})
    assert "width:75.0%" in html and "width:25.0%" in html
    assert "opacity" in contribution_bar_html({"text": 0.5, "audio": -0.5})  # negative parts are faded
    assert "background:#eee" in contribution_bar_html({})
    assert "title='your words\u00a0→\u00a0item description: 75%'" in html


def test_parts_and_legend_keep_each_pair_on_one_line():
    parts = parts_html(score_parts({"image": 0.1, "text": 0.3, "audio": 0.0}))
    assert parts.index("item description 75%") < parts.index("item picture 25%")
    assert "item sound" not in parts  # zero pairs are hidden
    assert parts.count("class='rec-line'") == 2
    many = parts_html(score_parts({"text": 0.4, "image": 0.3, "audio": 0.2, "text->image": 0.06, "image->text": 0.04}))
    assert many.count("class='rec-line'") == 4 and "+ 2 smaller parts 10%" in many
    recs = [SimpleNamespace(contributions={"text->image": 0.2, "text": 0.1, "audio": 0.0})]
    assert legend_pairs(recs) == ["text", "text->image"]
    assert "your words\u00a0→\u00a0item picture" in legend_html(legend_pairs(recs))


def test_limit_mb_rounds_up():
    assert limit_mb(20 * 1024 * 1024) == 20
    assert limit_mb(20 * 1024 * 1024 + 1) == 21
