"""The Recommend page under AppTest: type, move sliders, like, clear, and the error messages."""

from __future__ import annotations

from recsys.ui.state import get_last_search


def titles(at) -> list[str]:
    return [m.value for m in at.markdown if m.value.startswith("**") and ". " in m.value]


def errors(at) -> list[str]:
    return [e.value for e in at.error]


def test_landing_page_asks_for_a_query(fake_app):
    at = fake_app().run()
    assert not at.exception
    assert any("Type a query" in i.value for i in at.info)
    assert not at.error


def test_text_query_shows_cards_with_scores_and_contributions(fake_app):
    at = fake_app().run()
    at.text_input(key="query-text").set_value("a red apple").run()
    assert not at.exception
    shown = titles(at)
    assert shown[0] == "**1. Apple**"
    assert any(m.value.startswith("score **") for m in at.markdown)
    assert any("your words\u00a0→\u00a0item description 100%" in m.value for m in at.markdown)  # the bar in words
    assert at.session_state["last_search"].result_ids[0] == "apple"


def test_k_slider_and_category_filter_change_the_grid(fake_app):
    at = fake_app().run()
    at.text_input(key="query-text").set_value("a green fruit").run()
    at.slider(key="k").set_value(2).run()
    assert len(titles(at)) == 2
    at.selectbox(key="category").set_value("vehicles").run()
    assert {t.split(". ", 1)[1].strip("*") for t in titles(at)} <= {"Car", "Taxi"}


def test_a_long_category_tree_is_searched_and_keeps_the_filter_in_force(fake_app, monkeypatch):
    from recsys.ui import picker

    monkeypatch.setattr(picker, "LIST_ALL_MAX", 3)  # the fake catalogue's 7 category paths count as long
    at = fake_app().run()
    at.text_input(key="query-text").set_value("a green fruit").run()
    at.text_input(key="category-find").set_value("CAR").run()
    assert at.selectbox(key="category").options == ["All categories", "vehicles/cars"]
    at.selectbox(key="category").set_value("vehicles/cars").run()
    at.text_input(key="category-find").set_value("fruit").run()
    assert at.selectbox(key="category").options == ["All categories", "vehicles/cars", "food/fruit"]
    assert at.selectbox(key="category").value == "vehicles/cars" and not at.exception
    assert {t.split(". ", 1)[1].strip("*") for t in titles(at)} <= {"Car", "Taxi"}


def test_weight_zero_disables_a_modality(fake_app):
    at = fake_app().run()
    at.text_input(key="query-text").set_value("a red apple").run()
    at.slider(key="weight-text").set_value(0.0).run()
    # the query is text only: with its weight at 0 nothing can be scored -> a clear message
    assert any("weight 0" in e for e in errors(at))
    assert not at.exception


def test_like_refines_the_next_query_and_profile_clears(fake_app):
    at = fake_app().run()
    at.text_input(key="query-text").set_value("fruit").run()
    at.button(key="card-like-lime").click().run()
    assert at.session_state["profile"].likes == ["lime"]
    assert any("Liked" in m.value and "Lime" in m.value for m in at.sidebar.markdown)
    last = get_last_search(at.session_state)
    assert "lime" not in last.result_ids  # liked items are not recommended again
    assert last.query.likes == ("lime",)
    at.button(key="clear-profile").click().run()
    assert at.session_state["profile"].likes == []
    assert any("Like or dislike" in c.value for c in at.sidebar.caption)


def test_empty_query_after_recommend_is_an_error(fake_app):
    at = fake_app().run()
    at.button(key="recommend").click().run()
    assert any("query is empty" in e for e in errors(at))
    assert not at.exception


def test_why_button_opens_the_explanation_of_that_card(fake_app):
    at = fake_app().run()
    at.text_input(key="query-text").set_value("a red apple").run()
    at.button(key="card-why-lime").click().run()
    assert not at.exception
    assert at.title[0].value == ":material/psychology_alt: Why this item?"
    assert at.selectbox(key="why-item-select").value == "lime"


def test_first_start_shows_build_progress_and_later_starts_do_not(fake_app, monkeypatch):
    from streamlit.delta_generator import DeltaGenerator

    texts: list[str] = []
    original = DeltaGenerator.progress

    def progress(self, value, text=None):
        texts.append(text or "")
        return original(self, value, text=text)

    monkeypatch.setattr(DeltaGenerator, "progress", progress)
    at = fake_app().run()
    assert not at.exception
    # one bar over every stage: the last stage's line and the overall count (the build runs in a thread)
    assert any("Building the embedding cache" in t and "all stages 15/15 (100%)" in t for t in texts), texts
    assert not at.get("progress")  # the bar is removed once the engine is ready
    texts.clear()
    fake_app().run()  # a new session in the same process: the engine is cached
    assert texts == []


def test_the_networks_load_in_the_background_once_the_engine_is_ready(fake_app, patched_encoders):
    """Encoders that build their networks on first use (MiniLM, EfficientNet-Lite0) are loaded by the
    build's thread right after the engine is published: the page shows without waiting for them."""
    import threading
    import time

    release, loaded = threading.Event(), threading.Event()

    def load():
        release.wait(30)  # a slow load, until the page has shown
        loaded.set()

    order = []
    patched_encoders["image"].load = lambda: order.append("image")
    patched_encoders["text"].load = lambda: (load(), order.append("text"))
    at = fake_app().run()
    assert not at.exception and not loaded.is_set()  # the page did not wait for the network
    release.set()
    assert loaded.wait(30)
    deadline = time.monotonic() + 30
    while len(order) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert order == ["text", "image"]  # text first: what most first queries need


def test_controls_follow_the_user_to_another_page(fake_app):
    at = fake_app().run()
    at.text_input(key="query-text").set_value("a red apple").run()
    at.slider(key="weight-image").set_value(0.25).run()
    at.selectbox(key="strategy").set_value("late").run()
    at.button(key="card-why-apple").click().run()  # switch page: widget state is dropped by Streamlit
    assert at.title[0].value.endswith("Why this item?")
    assert at.slider(key="weight-image").value == 0.25
    assert at.selectbox(key="strategy").value == "late"


def test_a_missing_catalogue_is_a_message_not_a_traceback(fake_app, monkeypatch, tmp_path):
    monkeypatch.setenv("RECSYS_CATALOGUE", str(tmp_path / "nowhere"))
    for page in ("app.py", "pages/1_Explore.py", "pages/2_Why_this_item.py"):
        at = fake_app(page).run()
        assert not at.exception
        assert any(e.value.startswith("The recommender could not start:") for e in at.error)


def test_dislike_pushes_similar_items_down(fake_app):
    at = fake_app().run()
    at.text_input(key="query-text").set_value("a car").run()
    before = at.session_state["last_search"].result_ids
    assert set(before[:2]) == {"car", "taxi"}
    at.button(key="card-dislike-taxi").click().run()
    assert at.session_state["profile"].dislikes == ["taxi"]
    after = at.session_state["last_search"].result_ids
    assert "taxi" not in after and after[0] == "car"
    assert any("Disliked" in m.value and "Taxi" in m.value for m in at.sidebar.markdown)
