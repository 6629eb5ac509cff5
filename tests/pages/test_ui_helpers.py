"""Pure helpers behind the pages: profile rules, category options, contribution bar."""

from __future__ import annotations

from recsys.ui.cards import contribution_bar_html, contribution_caption
from recsys.ui.controls import category_options
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


def test_category_options_include_prefixes():
    assert category_options(["animals/birds", "animals/birds/cartoon", "food"]) == [
        "animals",
        "animals/birds",
        "animals/birds/cartoon",
        "food",
    ]


def test_contribution_bar_widths_follow_the_shares():
    html = contribution_bar_html({"text": 0.3, "image": 0.1})
    assert "width:75.0%" in html and "width:25.0%" in html
    assert "opacity" in contribution_bar_html({"text": 0.5, "audio": -0.5})  # negative parts are faded
    assert "background:#eee" in contribution_bar_html({})
    assert contribution_caption({"image": 0.1, "text": 0.3}) == "text +0.30 · image +0.10"


def test_limit_mb_rounds_up():
    assert limit_mb(20 * 1024 * 1024) == 20
    assert limit_mb(20 * 1024 * 1024 + 1) == 21
