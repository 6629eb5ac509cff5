"""The Why-this-item page under AppTest: breakdown, leave-one-modality-out, words, neighbours."""

from __future__ import annotations


def run_query(fake_app, text: str):
    at = fake_app().run()
    at.text_input(key="query-text").set_value(text).run()
    assert not at.exception
    return at


def why_after_search(fake_app, text: str):
    """The Why page after ``text`` ran on the Recommend page, and that search."""
    search = run_query(fake_app, text).session_state["last_search"]
    at = fake_app("pages/2_Why_this_item.py")
    at.session_state["last_search"] = search
    return at.run(), search


def frames(at):
    return [d.value for d in at.dataframe]


def test_explains_the_top_result_of_the_last_query(fake_app):
    at, search = why_after_search(fake_app, "a red apple")
    assert not at.exception
    assert at.selectbox(key="why-item-select").value == "apple"
    assert at.subheader[0].value == "Apple"
    breakdown, drops = frames(at)[:2]
    text_row = breakdown[breakdown["pair (query → item)"] == "text"].iloc[0]
    assert text_row["cosine similarity"] > 0.5
    assert set(drops["without"]) == {"text", "image", "audio"}
    # the query is text only: without text there is nothing to score, and the table says so
    text_drop = drops.set_index("without").loc["text"]
    assert text_drop["change"] == "—" and "weight 0" in text_drop["note"]
    words = [c.value for c in at.caption if c.value.startswith("leave-one-word-out")]
    assert words and "red +" in words[0] and "apple +" in words[0]
    assert any(m.value == "**image**" for m in at.markdown)  # neighbours per modality


def test_picking_another_item_updates_the_explanation(fake_app):
    at, search = why_after_search(fake_app, "a red apple")
    at.radio(key="why-source").set_value("the whole catalogue").run()
    at.selectbox(key="why-item-select").set_value("car").run()
    assert not at.exception
    assert at.subheader[0].value == "Car"
    breakdown = frames(at)[0]
    apple_caption = [c.value for c in at.caption if c.value.startswith("rank **")]
    assert apple_caption and not apple_caption[0].startswith("rank **1**")
    assert breakdown["contribution"].abs().sum() >= 0


def test_without_a_query_shows_neighbours_only(fake_app):
    at = fake_app("pages/2_Why_this_item.py").run()
    assert not at.exception
    assert any("Run a query" in i.value for i in at.info)
    assert any(c.value.startswith("Lime") or c.value.startswith("Car") for c in at.caption)


def test_leave_one_modality_out_ranks_with_a_liked_item(fake_app):
    at = run_query(fake_app, "fruit")
    at.button(key="card-like-lime").click().run()  # the query now has lime's image and sound too
    at.button(key="card-like-frog").click().run()
    why = fake_app("pages/2_Why_this_item.py")
    why.session_state["last_search"] = at.session_state["last_search"]
    why.run()
    assert not why.exception
    drops = frames(why)[1].set_index("without")
    assert set(drops.index) == {"text", "image", "audio"}
    assert drops["rank without it"].notna().all()
    assert all(c == "same" or c[0] in "▲▼" for c in drops["change"])


def test_moving_a_weight_on_this_page_re_explains(fake_app):
    at = run_query(fake_app, "green fruit")
    at.button(key="card-like-frog").click().run()  # image and sound join the query
    why = fake_app("pages/2_Why_this_item.py")
    why.session_state["last_search"] = at.session_state["last_search"]
    why.run()
    before = frames(why)[0].set_index("pair (query → item)")["contribution"]
    why.slider(key="weight-image").set_value(0.0).run()
    assert not why.exception
    after = frames(why)[0].set_index("pair (query → item)")["contribution"]
    assert before["image"] != 0 and after["image"] == 0
    assert any("image 0" in m.value for m in why.markdown if m.value.startswith("**Query:**"))


def images(at) -> int:
    """How many pictures the page shows (st.image elements, whatever AppTest calls them)."""
    count = 0

    def walk(node):
        nonlocal count
        count += getattr(node, "type", None) in ("image", "imgs")
        for child in getattr(node, "children", {}).values():
            walk(child)

    walk(at._tree)
    return count


def neighbour_captions(at) -> list:
    """The neighbour captions: ``Title · 0.87``."""
    return [c for c in at.caption if " · " in c.value and c.value.split(" · ")[-1][:1] in "-0123456789"]


def test_plain_summary_comes_first(fake_app):
    at, search = why_after_search(fake_app, "a red apple")
    assert not at.exception
    summary = at.info[0].value
    assert summary.startswith("Ranked #1 of 6") and "its description matches your words" in summary
    assert "%" in summary and "(a weak match)" not in summary
    assert [d.value.columns[0] for d in at.dataframe][0] == "what met what"


def test_a_weak_item_says_so_in_the_summary(fake_app):
    at, search = why_after_search(fake_app, "a red apple")
    at.selectbox(key="why-item-select").set_value(search.result_ids[-1]).run()
    assert not at.exception
    assert "(a weak match)" in at.info[0].value
    assert any("below the weak-match threshold" in c.value for c in at.caption)


def test_unsure_imagenet_labels_are_hidden_with_a_note(fake_app, monkeypatch):
    from recsys.recommend import explain

    unsure = [explain.Label("mouse", 0.058), explain.Label("candle", 0.045)]
    monkeypatch.setattr(explain, "image_labels", lambda *a, **k: unsure)
    at = fake_app("pages/2_Why_this_item.py").run()
    assert not at.exception
    assert any("unsure" in i.value and "“mouse”" in i.value for i in at.info)
    assert not any(m.value == "**Top ImageNet labels**" for m in at.markdown)

    sure = [explain.Label("tailed frog", 0.66), *unsure]
    monkeypatch.setattr(explain, "image_labels", lambda *a, **k: sure)
    at.run()
    assert any(m.value == "**Top ImageNet labels**" for m in at.markdown)
    assert any("2 less likely ImageNet labels" in c.value for c in at.caption)
    labels = next(d.value for d in at.dataframe if "probability" in d.value.columns)
    assert list(labels["label"]) == ["tailed frog"]


def test_audio_neighbours_have_players_and_every_neighbour_a_picture(fake_app):
    at = fake_app("pages/2_Why_this_item.py").run()  # the first item, Apple: picture and sound
    assert not at.exception
    neighbours = neighbour_captions(at)
    # header picture + one per neighbour, in every modality; "Note" has no picture and gets a placeholder
    assert images(at) == 1 + len(neighbours)
    assert any(c.value.startswith("Note · ") for c in neighbours)
    audio_row = 4  # five items with a sound: Apple's four audio neighbours
    assert len(at.get("audio")) == 1 + audio_row  # Apple's own player + one per audio neighbour


def test_an_item_without_a_picture_gets_a_placeholder(fake_app):
    at = fake_app("pages/2_Why_this_item.py").run()
    at.selectbox(key="why-item-select").set_value("note").run()
    assert not at.exception
    assert at.subheader[0].value == "Note"
    assert images(at) == 1 + len(neighbour_captions(at))  # the header shows a placeholder, not nothing


def test_a_long_catalogue_is_searched_instead_of_listed(fake_app, monkeypatch):
    from recsys.ui import picker

    monkeypatch.setattr(picker, "LIST_ALL_MAX", 3)  # the fake catalogue's six items count as long
    at = fake_app("pages/2_Why_this_item.py").run()
    assert not at.exception
    at.text_input(key="why-find").set_value("CAR").run()
    assert not at.exception
    assert at.selectbox(key="why-item-select").options == ["Car"]  # shown by title
    assert at.subheader[0].value == "Car"
    at.text_input(key="why-find").set_value("zebra").run()
    assert any("zebra" in i.value for i in at.info) and not at.exception
