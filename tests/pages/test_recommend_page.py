"""The Recommend page's onboarding, readable results, state in the URL and downloads, under AppTest."""

from __future__ import annotations

import streamlit as st

from recsys.ui.state import get_last_search

PARTS = "rec-parts"


def link_warnings(at) -> list[str]:
    return [w.value for w in at.warning if "in this link could not be used" in w.value]


def markdown(at) -> list[str]:
    return [m.value for m in at.markdown]


def test_pages_are_named_for_what_they_do(fake_app, monkeypatch):
    seen = []
    original = st.navigation

    def navigation(pages, **kwargs):
        seen.extend(pages)
        return original(pages, **kwargs)

    monkeypatch.setattr(st, "navigation", navigation)
    at = fake_app().run()
    assert not at.exception
    assert [p.title for p in seen] == ["Recommend", "Explore", "Why this item?", "Fusion lab"]
    assert at.title[0].value.endswith("Recommend")


def test_intro_line_and_a_clicked_example_shows_results(fake_app):
    at = fake_app().run()
    assert any("6 items in 4 categories" in m for m in markdown(at))
    example = at.button(key="example-0")
    at = example.click().run()
    assert not at.exception
    assert at.text_input(key="query-text").value == example.label
    last = get_last_search(at.session_state)
    assert last is not None and last.query.text == example.label


def test_sample_picture_and_sound_query_with_catalogue_media(fake_app):
    at = fake_app().run()
    at.button(key="sample-image").click().run()
    assert not at.exception
    last = get_last_search(at.session_state)
    assert last.query.image is not None and last.query.text is None
    assert "sample picture" in [c for img in at.get("image") for c in img.captions]
    assert at.query_params.get("img")  # shareable
    at.button(key="sample-audio").click().run()
    assert get_last_search(at.session_state).query.audio is not None
    at.button(key="clear-sample-image").click().run()
    assert get_last_search(at.session_state).query.image is None
    assert "img" not in at.query_params


def test_legend_plain_names_and_percent_shares(fake_app):
    at = fake_app().run()
    at.text_input(key="query-text").set_value("a red apple").run()
    text = "\n".join(markdown(at))
    assert "Bar colours" in text and "your words\u00a0→\u00a0item description" in text
    assert "text->" not in text and "+0.00" not in text
    assert any("early fusion" in c.value and "cosine" in c.value for c in at.caption)  # what the score means


def test_rrf_shows_ranks_instead_of_tiny_numbers(fake_app):
    at = fake_app().run()
    at.text_input(key="query-text").set_value("a red apple").run()
    at.selectbox(key="strategy").set_value("rrf").run()
    assert not at.exception
    parts = [m for m in markdown(at) if PARTS in m]
    assert parts and "(rank 1)" in parts[0]
    assert any(m.startswith("score **0.0164") for m in markdown(at))
    assert any("reciprocal rank" in c.value for c in at.caption)


def test_threshold_flags_weak_results_and_says_when_nothing_matches(fake_app):
    at = fake_app().run()
    at.text_input(key="query-text").set_value("a red apple").run()
    assert not at.warning
    at.slider(key="threshold-early-cosine").set_value(0.5).run()
    flagged = [m for m in markdown(at) if "weak match" in m and m.startswith("score")]
    assert flagged and not any("Apple" in m and "weak" in m for m in markdown(at) if m.startswith("**1."))
    assert any("flagged **weak match**" in c.value for c in at.caption)
    at.slider(key="threshold-early-cosine").set_value(1.0).run()
    assert any("No good match" in w.value for w in at.warning)


def test_similarity_choice_rescores(fake_app):
    at = fake_app().run()
    at.text_input(key="query-text").set_value("a red apple").run()
    cosine = get_last_search(at.session_state).scores
    at.selectbox(key="similarity").set_value("euclidean").run()
    assert not at.exception
    euclid = get_last_search(at.session_state).scores
    assert get_last_search(at.session_state).result_ids[0] == "apple"
    assert euclid != cosine and all(0 <= s <= 1 for s in euclid)
    assert any("1 - distance/2" in c.value for c in at.caption)
    assert at.slider(key="threshold-early-euclidean").value == 0.47


def test_state_goes_into_the_url_and_a_reload_restores_it(fake_app):
    at = fake_app().run()
    at.text_input(key="query-text").set_value("a car").run()
    at.selectbox(key="strategy").set_value("late").run()
    at.slider(key="weight-image").set_value(0.5).run()
    at.button(key="card-like-taxi").click().run()
    params = dict(at.query_params)
    assert params["q"] == "a car" and params["strategy"] == "late" and params["w_image"] == "0.5"
    assert params["like"] == "taxi"

    reload = fake_app()  # a new session opening the same address
    reload.query_params.update(params)
    reload.run()
    assert not reload.exception and not link_warnings(reload)
    assert reload.text_input(key="query-text").value == "a car"
    assert reload.selectbox(key="strategy").value == "late"
    assert reload.slider(key="weight-image").value == 0.5
    assert reload.session_state["profile"].likes == ["taxi"]
    assert get_last_search(reload.session_state).query.likes == ("taxi",)


def test_a_hostile_link_warns_and_falls_back(fake_app):
    at = fake_app()
    at.query_params.update({"k": "lots", "strategy": "<script>", "like": ["ghost", "lime"], "q": "fruit"})
    at.run()
    assert not at.exception
    (warning,) = link_warnings(at)
    assert "K 'lots'" in warning and "unknown strategy" in warning and "ghost" in warning
    assert at.selectbox(key="strategy").value == "early" and at.slider(key="k").value == 12
    assert at.session_state["profile"].likes == ["lime"]
    at.run()  # the warning is said once
    assert not link_warnings(at)


def test_results_download_as_csv_and_json(fake_app):
    at = fake_app().run()
    at.text_input(key="query-text").set_value("a red apple").run()
    labels = [b.proto.label for b in at.get("download_button")]
    assert labels == ["Download CSV", "Download JSON"]


def test_cards_have_a_phone_layout_and_whole_button_labels(fake_app):
    at = fake_app().run()
    at.text_input(key="query-text").set_value("a red apple").run()
    css = [h.proto.body for h in at.get("html")]
    assert any("@media (max-width: 640px)" in c and "calc(50%" in c for c in css)
    assert at.button(key="card-dislike-apple").label == "Dislike"


def test_a_speech_like_query_sound_gets_a_note_and_others_do_not(fake_app, tmp_path, monkeypatch):
    import numpy as np

    from recsys import speech

    def notes(at) -> list[str]:
        return [i.value for i in at.info if "sounds like speech" in i.value]

    at = fake_app().run()
    at.button(key="sample-audio").click().run()  # the shipped head is for aisfx, not the fake: no note
    assert not at.exception and get_last_search(at.session_state).query.audio is not None
    assert not notes(at)
    # a tiny head for the fake audio encoder that calls every sound speech (saved here for the test)
    head = speech.SpeechDetector("audio/fake-16", np.full(16, 8.0), 0.0, 0.5)
    monkeypatch.setattr(speech, "DEFAULT_DETECTOR", speech.save_detector(head, tmp_path / "speech.json"))
    speech.clear_cache()
    at.run()
    assert not at.exception
    assert notes(at) and "type the words as text instead" in notes(at)[0]
    speech.clear_cache()


def test_a_spoken_query_sound_says_what_was_heard_and_is_matched_by_its_words(fake_app, tmp_path, monkeypatch):
    import numpy as np
    from fakes import FakeToneAligner

    from recsys import pipeline, speech, transcribe
    from recsys.transcribe import Transcript

    class Ear:
        calls = 0

        def transcribe(self, clip):
            Ear.calls += 1
            return Transcript(text="green", words=("green", "frog"))

    monkeypatch.setenv("RECSYS_AUDIO_ALIGNER", "fake")  # the sounds aligned, so speech can be matched by words
    monkeypatch.setattr(pipeline, "_build_aligner", lambda spec, source, text, *_: FakeToneAligner(text))
    monkeypatch.setattr(transcribe, "transcriber_id", lambda **_: "asr/fake@1")
    monkeypatch.setattr(transcribe, "shared_transcriber", lambda **_: Ear())
    head = speech.SpeechDetector("audio/fake-16", np.full(16, 8.0), 0.0, 0.5)  # every sound is speech
    monkeypatch.setattr(speech, "DEFAULT_DETECTOR", speech.save_detector(head, tmp_path / "speech.json"))
    speech.clear_cache()
    try:
        at = fake_app().run()
        at.button(key="sample-audio").click().run()
        assert not at.exception
        notes = [i.value for i in at.info if "sounds like speech" in i.value]
        assert notes == ["This clip sounds like speech; heard: 'green'. Matched by its words."]
        assert Ear.calls >= 1
    finally:
        speech.clear_cache()
