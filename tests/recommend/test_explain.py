"""Explanations on the six-item fake catalogue (tests/fakes.py), where the right answers are known."""

from __future__ import annotations

import math

import numpy as np
import pytest

from recsys.recommend import explain
from recsys.recommend.query import Query

ALL = {"text": 1.0, "image": 1.0, "audio": 1.0}


@pytest.fixture
def engine(fake_engine):
    return fake_engine


@pytest.mark.parametrize("strategy", ["early", "late", "rrf"])
def test_breakdown_matches_the_engine_and_shares_sum_to_one(engine, strategy):
    query = Query(text="a green fruit", likes=("frog",))
    top = engine.recommend(query, weights=ALL, strategy=strategy, k=1)[0]
    rec, rank, shares = explain.pair_breakdown(engine, query, top.item.id, ALL, strategy)
    assert rank == 1 and rec.score == pytest.approx(top.score)
    assert sum(s.contribution for s in shares) == pytest.approx(top.score, abs=1e-5)
    assert sum(s.share for s in shares if not math.isnan(s.share)) == pytest.approx(1.0, abs=1e-4)
    sims = engine.pair_similarities(query)
    idx = engine.catalogue.index_of(top.item.id)
    for s in shares:
        if s.pair in sims:
            assert s.similarity == pytest.approx(float(sims[s.pair][idx]))


def test_liked_item_is_not_ranked(engine):
    rec, rank, _ = explain.pair_breakdown(engine, Query(text="fruit", likes=("lime",)), "lime", ALL)
    assert rec is None and rank is None


def test_leave_one_modality_out(engine):
    # text says "frog", the liked car brings a blue image and its sound
    query = Query(text="a green frog", likes=("car",))

    def rank(weights):
        return [r.item.id for r in engine.recommend(query, weights=weights, k=6)].index("frog") + 1

    drops = {d.modality: d for d in explain.leave_one_modality_out(engine, query, "frog", ALL)}
    assert set(drops) == {"text", "image", "audio"}
    for mod, drop in drops.items():
        assert drop.rank_before == rank(ALL)
        assert drop.rank_after == rank({**ALL, mod: 0.0})
        assert drop.change == drop.rank_before - drop.rank_after
    assert drops["text"].change < 0  # the text pulls the frog up
    assert drops["image"].change > 0  # the liked car's blue image holds the green frog back
    # a text-only query has nothing left without text: reported, not raised
    only_text = explain.leave_one_modality_out(engine, Query(text="a blue racing car"), "car", ALL)
    text_drop = next(d for d in only_text if d.modality == "text")
    assert text_drop.rank_after is None and text_drop.change is None and text_drop.note
    # disabled modalities are not dropped again
    assert [d.modality for d in explain.leave_one_modality_out(engine, query, "car", {**ALL, "audio": 0.0})] == [
        "text",
        "image",
    ]


def test_change_sign():
    assert explain.ModalityDrop("image", 5, 2, 0.3).change == 3  # moved up
    assert explain.ModalityDrop("image", 2, 5, 0.3).change == -3


def test_nearest_neighbours_per_modality(engine):
    nbs = explain.nearest_neighbours(engine, "lime", k=2)
    assert set(nbs) == {"text", "image", "audio"}
    assert nbs["image"][0].item_id == "frog"  # both green squares
    assert all(nb.item_id != "lime" for rows in nbs.values() for nb in rows)
    sims = [nb.similarity for nb in nbs["text"]]
    assert sims == sorted(sims, reverse=True)
    assert set(explain.nearest_neighbours(engine, "note")) == {"text"}  # note has no image or sound


def test_nearest_neighbours_through_the_store_are_the_exact_ones(aligned_fake_engine):
    """Past the exact-search size the store finds the neighbours: the same cosines, the same items
    up to ties (the fake catalogue has many; the store may break them differently)."""
    from recsys.recommend.catalogue_store import attach_store

    engine = aligned_fake_engine
    ids = [it.id for it in engine.catalogue.items]
    every = {i: explain.nearest_neighbours(engine, i, k=len(ids)) for i in ids}
    attach_store(engine, search="ann", uri="memory://")
    assert engine.uses_candidates
    for i in ids:
        got = explain.nearest_neighbours(engine, i, k=3)
        assert set(got) == set(every[i])
        for mod, rows in got.items():
            exact = {n.item_id: n.similarity for n in every[i][mod]}
            assert [n.similarity for n in rows] == pytest.approx([n.similarity for n in every[i][mod][:3]], abs=1e-6)
            assert all(n.similarity == pytest.approx(exact[n.item_id], abs=1e-6) for n in rows)


def test_word_importance_leave_one_word_out(engine):
    words = explain.word_importance(engine, Query(text="yellow taxi banana"), "taxi", ALL)
    imp = {w.word: w.importance for w in words}
    assert list(imp) == ["yellow", "taxi", "banana"]
    assert imp["taxi"] > 0 and imp["yellow"] > 0
    assert imp["banana"] < imp["taxi"]  # a word the item does not have matters least (or hurts)
    assert explain.word_importance(engine, Query(likes=("car",)), "taxi", ALL) == []


class FakeClassifier:
    """A two-class 'classifier' on mean colour: red vs green."""

    class_names = ["red thing", "green thing"]

    def predict_proba(self, images):
        out = []
        for img in images:
            r, g, _ = np.asarray(img.convert("RGB"), dtype=float).reshape(-1, 3).mean(0)
            out.append([r / (r + g), g / (r + g)])
        return np.array(out)


def test_image_labels_with_query_similarity(engine):
    assert explain.image_labels(engine, "apple") == []  # the fake image encoder has no classifier head
    engine.query_encoders["image"].predict_proba = FakeClassifier().predict_proba
    engine.query_encoders["image"].class_names = FakeClassifier.class_names
    labels = explain.image_labels(engine, "apple", Query(text="red"), top=2)
    assert [lab.name for lab in labels] == ["red thing", "green thing"]
    assert labels[0].score > 0.8
    assert labels[0].query_similarity > labels[1].query_similarity
    assert explain.image_labels(engine, "note") == []  # no image


def test_aligned_concepts_need_an_aligned_image_space(engine):
    assert explain.aligned_concepts(engine, "apple") == []  # fake image space is 3-d, text is 64-d
    text_vecs, _ = engine.item_vectors("text")
    engine.indexes["image"].shared = text_vecs.copy()  # pretend images were aligned onto their text
    concepts = explain.aligned_concepts(engine, "car", vocabulary=["cars", "fruit", "a blue racing car"], top=2)
    assert concepts[0].name == "a blue racing car"
    assert explain.concept_vocabulary(engine)[:3] == ["amphibians", "animals", "cars"]


def test_leave_one_modality_out_notes_modalities_the_query_lacks(engine):
    drops = {d.modality: d for d in explain.leave_one_modality_out(engine, Query(text="a red apple"), "apple", ALL)}
    assert "no image side" in drops["image"].note and "no audio side" in drops["audio"].note


@pytest.fixture
def aligned_engine(aligned_fake_engine):
    return aligned_fake_engine


def test_aligned_engine_explanations(aligned_engine):
    query = Query(text="blue")
    rec, rank, shares = explain.pair_breakdown(aligned_engine, query, "car", ALL)
    assert rank == 1 and {s.pair for s in shares} == {"text", "text->image"}
    by_pair = {s.pair: s for s in shares}
    assert by_pair["text->image"].similarity == pytest.approx(1.0, abs=1e-5)  # aligned onto the word "blue"
    concepts = explain.aligned_concepts(aligned_engine, "car", query, vocabulary=["red", "blue", "green"], top=1)
    assert concepts[0].name == "blue" and concepts[0].query_similarity == pytest.approx(1.0, abs=1e-5)
    drops = {d.modality: d for d in explain.leave_one_modality_out(aligned_engine, query, "car", ALL)}
    assert drops["image"].rank_after is not None and drops["image"].note.startswith("the query has no image")


def test_plain_pair_names_say_what_met_what_and_never_break_at_the_arrow():
    assert explain.plain_pair_name("text->image") == "your words\u00a0\u2192\u00a0item picture"
    assert explain.plain_pair_name("text") == "your words\u00a0\u2192\u00a0item description"
    assert explain.plain_pair_name("audio->text") == "your sound\u00a0\u2192\u00a0item description"
    # a side that came from the profile, not from something the person typed or uploaded
    assert explain.plain_pair_name("image", given={"text"}).startswith("your liked items' pictures")
    assert explain.plain_pair_name("video->image") == "your video\u00a0\u2192\u00a0item picture"


def test_score_parts_hide_zero_pairs_and_give_shares_in_the_bar():
    parts = explain.score_parts({"text": 0.3, "text->image": 0.1, "text->audio": 0.0, "image": -0.1})
    assert [p.pair for p in parts] == ["text", "image", "text->image"]
    assert [round(p.share, 2) for p in parts] == [0.6, 0.2, 0.2]
    assert explain.format_part(parts[0]) == "your words\u00a0\u2192\u00a0item description 60%"
    assert explain.format_part(parts[1]).endswith("20% (against)")
    assert explain.score_parts({"text": 0.0}) == []


def test_score_parts_under_rrf_show_the_ranks(engine):
    top = engine.recommend(Query(text="a red apple"), strategy="rrf", k=1)[0]
    (part,) = explain.score_parts(top.contributions, top.ranks)
    assert part.rank == 1 and explain.format_part(part).endswith("100% (rank 1)")


def test_explanations_follow_the_chosen_similarity(engine):
    query = Query(text="a green fruit")
    rec, rank, shares = explain.pair_breakdown(engine, query, "lime", ALL, "early", "euclidean")
    assert rank == 1 and 0 < rec.score <= 1
    text = next(s for s in shares if s.pair == "text")
    assert text.similarity == pytest.approx(engine.pair_similarities(query, "euclidean")["text"][1])


def test_summary_names_the_two_largest_parts_in_plain_words():
    parts = explain.score_parts({"text": 0.33, "text->image": 0.27, "text->audio": 0.1, "image": 0.05})
    sentence = explain.summary_sentence(1, parts, 950, given={"text"})
    assert sentence.startswith("Ranked #1 of 950 mostly because its description matches your words (44%)")
    assert "and its picture matches them too (36%)" in sentence  # the same query side is not repeated
    assert sentence.endswith("2 smaller parts add 20%.")


def test_summary_of_a_weak_single_part_and_of_parts_that_pull_down():
    only = explain.summary_sentence(4, explain.score_parts({"text": 0.2}), weak=True)
    assert only == "Ranked #4 (a weak match) only because its description matches your words (100%)."
    mixed = explain.summary_sentence(2, explain.score_parts({"image": 0.6, "audio": -0.2}), given={"text"})
    assert "its picture matches your liked items' pictures (75%)" in mixed  # not given: from the profile
    assert mixed.endswith("but its sound is unlike your liked items' sounds (25%).")


def test_summary_under_rrf_gives_the_pair_ranks(engine):
    query = Query(text="a red apple")
    top = engine.recommend(query, weights=ALL, strategy="rrf", k=1)[0]
    parts = explain.score_parts(top.contributions, top.ranks, set(query.inputs()))
    sentence = explain.summary_sentence(1, parts, len(engine.catalogue.items), given={"text"})
    assert sentence.startswith("Ranked #1 of 6") and ", rank 1 there" in sentence


def test_summary_when_not_ranked_or_nothing_matches():
    assert "in your profile" in explain.summary_sentence(None, [])
    assert "nothing in your query matches it" in explain.summary_sentence(5, [], 10)


def test_labels_below_the_floor_are_hidden_with_a_note_when_none_is_sure():
    unsure = [explain.Label("mouse", 0.058), explain.Label("candle", 0.045)]
    reading = explain.read_labels(unsure)
    assert reading.shown == [] and reading.hidden == 2
    assert "unsure" in reading.note and "“mouse”" in reading.note and "6%" in reading.note
    sure = explain.read_labels([explain.Label("tailed frog", 0.66), explain.Label("bullfrog", 0.26), *unsure])
    assert [lab.name for lab in sure.shown] == ["tailed frog", "bullfrog"] and sure.hidden == 2
    assert sure.note is None
    assert explain.read_labels([]) == explain.LabelReading([], 0, None)
    assert explain.read_labels(unsure, floor=0.05).shown == unsure[:1]


def test_confidence_notes_name_weak_matches_weakest_first():
    notes = explain.confidence_notes({"text->image": 0.81, "image->text": 0.01}, given={"text", "image"})
    assert notes == [
        f"your picture{explain.ARROW}item description: weak match (confidence 0.01)",
        f"your words{explain.ARROW}item picture: likely match (confidence 0.81)",
    ]
    assert explain.confidence_notes({}) == []
    assert "weak match" not in explain.confidence_note("text->image", explain.WEAK_MATCH_CONFIDENCE)


def test_an_item_outside_the_store_candidates_says_so_and_still_gets_its_similarities(aligned_fake_engine):
    from recsys.recommend.catalogue_store import attach_store

    engine = aligned_fake_engine
    query = Query(text="a green fruit")
    exact = engine.pair_similarities(query)
    attach_store(engine, search="ann", uri="memory://")
    assert engine.joint is not None  # early searches the joint field, rrf each pair
    engine.candidates = engine.joint_candidates = 1
    ranked = {r.item.id for r in explain.full_ranking(engine, query)}
    outside = next(it.id for it in engine.catalogue.items if it.id not in ranked)
    rec, rank, shares = explain.pair_breakdown(engine, query, outside)
    assert rec is None and rank is None
    idx = engine.catalogue.index_of(outside)
    assert {s.pair: s.similarity for s in shares} == pytest.approx({p: float(v[idx]) for p, v in exact.items()})
    reason = explain.unranked_reason(engine, query, outside)
    assert "vector store" in reason and "every modality together" in reason and "profile" not in reason
    assert "per query-item modality pair" in explain.unranked_reason(engine, query, outside, "rrf")
    assert reason in explain.summary_sentence(None, [], unranked=reason)
    assert "profile" in explain.unranked_reason(engine, Query(text="x", likes=(outside,)), outside)


def test_label_rows_show_the_query_column_only_with_a_query():
    plain = [explain.Label("bell cote", 0.4512, None), explain.Label("palace", 0.2, None)]
    assert explain.label_rows(plain, "probability") == [
        {"label": "bell cote", "probability": 0.451},
        {"label": "palace", "probability": 0.2},
    ]
    queried = [explain.Label("bell cote", 0.45, 0.31234), explain.Label("palace", 0.2, None)]
    rows = explain.label_rows(queried, "cosine")
    assert [r["similarity to the query text"] for r in rows] == [0.312, None]
