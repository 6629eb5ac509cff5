"""The Why-this-item page under AppTest: breakdown, leave-one-modality-out, words, neighbours."""

from __future__ import annotations


def run_query(fake_app, text: str):
    at = fake_app().run()
    at.text_input(key="query-text").set_value(text).run()
    assert not at.exception
    return at


def frames(at):
    return [d.value for d in at.dataframe]


def test_explains_the_top_result_of_the_last_query(fake_app):
    search = run_query(fake_app, "a red apple").session_state["last_search"]
    at = fake_app("pages/2_Why_this_item.py")
    at.session_state["last_search"] = search
    at.run()
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
    search = run_query(fake_app, "a red apple").session_state["last_search"]
    at = fake_app("pages/2_Why_this_item.py")
    at.session_state["last_search"] = search
    at.run()
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
