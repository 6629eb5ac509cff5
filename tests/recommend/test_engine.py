"""The recommendation engine on a six-item catalogue with deterministic fake encoders (fakes.py)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from fakes import build_catalogue, write_square, write_tone
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from recsys import fusion, media, pipeline
from recsys.catalogue import load_catalogue
from recsys.errors import InputError, RecsysError
from recsys.recommend import retrieval
from recsys.recommend.query import Query


@pytest.fixture
def encoders(patched_encoders):
    return patched_encoders


@pytest.fixture
def engine(fake_engine):
    return fake_engine


def ids(results):
    return [r.item.id for r in results]


def test_text_query_finds_matching_description(engine):
    assert ids(engine.recommend(Query(text="racing car"), k=2))[0] == "car"


def test_image_query_returns_same_picture_first(engine, tmp_path):
    query = Query(image=media.load_image(write_square(tmp_path / "q.png", "blue")))
    assert ids(engine.recommend(query, k=3))[0] == "car"


def test_audio_query_returns_same_sound_first(engine, tmp_path):
    query = Query(audio=media.load_audio(write_tone(tmp_path / "q.wav", 1300)))
    assert ids(engine.recommend(query, k=3))[0] == "frog"


@pytest.mark.parametrize("strategy", ["early", "late", "rrf"])
def test_contributions_sum_to_score(engine, tmp_path, strategy):
    query = Query(text="green fruit", image=media.load_image(write_square(tmp_path / "q.png", "green")))
    results = engine.recommend(query, strategy=strategy, k=6)
    assert len(results) == 6
    for r in results:
        assert set(r.contributions) == {"text", "image"}
        assert sum(r.contributions.values()) == pytest.approx(r.score, abs=1e-6)
    scores = [r.score for r in results]
    assert scores == sorted(scores, reverse=True)


def test_zero_weight_removes_a_modality(engine, tmp_path):
    query = Query(text="green fruit", image=media.load_image(write_square(tmp_path / "q.png", "blue")))
    results = engine.recommend(query, weights={"image": 0}, k=3)
    assert all(set(r.contributions) == {"text"} for r in results)
    assert ids(results)[0] == "lime"


def test_likes_steer_and_are_excluded(engine):
    results = engine.recommend(Query(likes=("lime",)), k=5)
    assert "lime" not in ids(results)
    assert ids(results)[0] == "frog"  # green picture, "green" in its description


def test_dislikes_push_items_down(engine):
    base = ids(engine.recommend(Query(text="a car"), k=5))
    steered = ids(engine.recommend(Query(text="a car", dislikes=("taxi",)), k=5))
    assert "taxi" not in steered
    assert base.index("car") <= 1 and steered[0] == "car"


def test_category_filter_includes_subcategories(engine):
    results = engine.recommend(Query(text="a car"), category="food", k=5)
    assert set(ids(results)) == {"apple", "lime"}


def test_errors_are_clear(engine):
    with pytest.raises(InputError, match="empty query"):
        engine.recommend(Query(text="   "))
    with pytest.raises(InputError, match="unknown item id"):
        engine.recommend(Query(likes=("nope",)))
    with pytest.raises(InputError, match="weight 0"):
        engine.recommend(Query(text="car"), weights={"text": 0})
    with pytest.raises(InputError, match="strategy"):
        engine.recommend(Query(text="car"), strategy="magic")
    with pytest.raises(InputError, match="category"):
        engine.recommend(Query(text="car"), category="nowhere")


def test_cache_is_reused_and_only_changed_items_recomputed(tmp_path, encoders):
    root = build_catalogue(tmp_path / "cat")
    config = pipeline.PipelineConfig(cache_dir=str(tmp_path / "cache"), image_aligner=None, audio_aligner=None)
    first = pipeline.build_engine(load_catalogue(root), config)
    assert encoders["image"].encoded == 4  # lime and frog share one identical picture: encoded once
    pipeline.build_engine(load_catalogue(root), config)
    assert encoders["image"].encoded == 4 and encoders["text"].encoded == 6
    write_square(root / "media" / "car.png", "red", size=40)
    second = pipeline.build_engine(load_catalogue(root), config)
    assert encoders["image"].encoded == 5
    car = second.catalogue.index_of("car")
    assert not np.allclose(first.indexes["image"].native[car], second.indexes["image"].native[car])
    assert not list((tmp_path / "cache").rglob("*.tmp"))


def test_corrupt_cache_file_is_rebuilt(tmp_path, encoders):
    root = build_catalogue(tmp_path / "cat")
    config = pipeline.PipelineConfig(cache_dir=str(tmp_path / "cache"), image_aligner=None, audio_aligner=None)
    pipeline.build_engine(load_catalogue(root), config)
    shards = list((tmp_path / "cache").rglob("shard-*.npz"))
    assert shards
    for path in shards:
        path.write_bytes(b"not a zip file")
    engine = pipeline.build_engine(load_catalogue(root), config)
    assert ids(engine.recommend(Query(text="racing car"), k=1)) == ["car"]


def test_progress_reports_each_stage(tmp_path, encoders):
    root = build_catalogue(tmp_path / "cat")
    seen: dict[str, tuple[int, int]] = {}
    config = pipeline.PipelineConfig(cache_dir=str(tmp_path / "cache"), image_aligner=None, audio_aligner=None)
    pipeline.build_engine(load_catalogue(root), config, lambda stage, done, total: seen.update({stage: (done, total)}))
    assert seen["image embeddings"] == (4, 4)  # five pictures, four distinct contents
    assert seen["text embeddings"] == (6, 6)


def test_layered_config(tmp_path, monkeypatch):
    (tmp_path / "recsys.toml").write_text('[pipeline]\nimage_encoder = "open_clip:ViT-B-32:x"\nbatch_size = 8\n')
    monkeypatch.setenv("RECSYS_BATCH_SIZE", "4")
    config = pipeline.PipelineConfig.layered(tmp_path, device="cpu")
    assert (config.image_encoder, config.batch_size, config.device) == ("open_clip:ViT-B-32:x", 4, "cpu")
    (tmp_path / "recsys.toml").write_text("[pipeline]\nnot_a_key = 1\n")
    with pytest.raises(Exception, match="unknown configuration keys"):
        pipeline.PipelineConfig.layered(tmp_path)


@pytest.fixture
def aligned_engine(aligned_fake_engine):
    return aligned_fake_engine


def test_aligned_engine_scores_across_modalities(aligned_engine, tmp_path):
    sims = aligned_engine.pair_similarities(Query(text="blue"))
    assert set(sims) == {"text", "text->image"}
    assert aligned_engine.catalogue.items[int(np.argmax(sims["text->image"]))].id == "car"
    image_query = Query(image=media.load_image(write_square(tmp_path / "q.png", "yellow")))
    assert set(aligned_engine.pair_similarities(image_query)) == {"image", "image->text"}
    for strategy in ("early", "late", "rrf"):
        results = aligned_engine.recommend(Query(text="yellow"), strategy=strategy, k=3)
        assert results[0].item.id == "taxi"
        assert set(results[0].contributions) == {"text", "text->image"}
        assert sum(results[0].contributions.values()) == pytest.approx(results[0].score, abs=1e-6)


def test_unaligned_engine_keeps_modalities_apart(engine):
    assert set(engine.pair_similarities(Query(text="blue"))) == {"text"}


@pytest.mark.slow
def test_demo_text_query_finds_dogs_by_picture_and_sound_alone(demo_engine):
    """Cross-modal acceptance: none of the query's words occurs in any description, and with the
    text weight at 0 items are ranked by their aligned images and sounds only."""
    query = "a barking puppy"
    descriptions = " ".join(it.text.lower() for it in demo_engine.catalogue.items)
    assert not any(word in descriptions.split() for word in ("barking", "puppy"))
    results = demo_engine.recommend(Query(text=query), weights={"text": 0, "image": 1, "audio": 1}, k=5)
    assert "dog" in ids(results)
    for r in results:
        assert set(r.contributions) <= {"text->image", "text->audio"}
        assert sum(r.contributions.values()) == pytest.approx(r.score, abs=1e-6)


# -- properties: hostile queries and weights (issue 12) ------------------------------------------

any_text = st.text(alphabet=st.characters(exclude_categories=()), max_size=30)  # lone surrogates included
weight_values = st.one_of(
    st.floats(min_value=0, max_value=10),  # mostly usable weights, so that queries get scored
    st.sampled_from([0, 1, 1e-6, 1e6]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-10, max_value=10**400),
    st.sampled_from(["1", "nan", "1e309", "-0", "abc", ""]),
    st.none(),
)
weight_maps = st.dictionaries(st.sampled_from(["text", "image", "audio"]), weight_values, max_size=3)


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=any_text, weights=weight_maps, query_weights=weight_maps, strategy=st.sampled_from(fusion.STRATEGIES))
def test_any_query_gives_finite_scores_or_a_recsys_error(aligned_engine, text, weights, query_weights, strategy):
    """Only RecsysError escapes, and no score or contribution is NaN or infinite."""
    try:
        results = aligned_engine.recommend(
            Query(text=text), weights=weights, query_weights=query_weights, strategy=strategy, k=3
        )
    except RecsysError:
        event("refused")
        return
    event("scored")
    for r in results:
        assert math.isfinite(r.score), (r.item.id, r.score)
        assert all(math.isfinite(c) for c in r.contributions.values()), r.contributions


@pytest.mark.parametrize("strategy", ["early", "late", "rrf"])
def test_euclidean_ranks_as_cosine_and_its_parts_sum_to_the_score(engine, tmp_path, strategy):
    """Text only (every item has text): one pair, so the monotone map keeps the order under every strategy."""
    query = Query(text="green fruit car")
    cosine = engine.recommend(query, strategy=strategy, k=6)
    euclid = engine.recommend(query, strategy=strategy, k=6, similarity="euclidean")
    assert ids(euclid) == ids(cosine)
    for r in euclid:
        assert sum(r.contributions.values()) == pytest.approx(r.score, abs=1e-6)
    if strategy != "rrf":
        for c, e in zip(cosine, euclid, strict=True):
            assert e.score == pytest.approx(1 - np.sqrt(2 - 2 * c.score) / 2, abs=1e-6)


def test_euclidean_early_fusion_keeps_the_order_of_the_fused_cosine(engine, tmp_path):
    query = Query(text="green fruit", image=media.load_image(write_square(tmp_path / "q.png", "green")))
    cosine = engine.recommend(query, k=6)
    euclid = engine.recommend(query, k=6, similarity="euclidean")
    assert ids(euclid) == ids(cosine)
    for r in euclid:
        assert sum(r.contributions.values()) == pytest.approx(r.score, abs=1e-6)


def test_pearson_scores_are_correlations_of_the_vectors(engine):
    query = Query(text="a red apple fruit")
    got = {r.item.id: r.score for r in engine.recommend(query, strategy="late", k=6, similarity="pearson")}
    q = engine.query_vectors(query)["text"]
    ix = engine.indexes["text"]
    for item_id, score in got.items():
        row = ix.native[engine.catalogue.index_of(item_id)]
        # late fusion of one pair is that pair's similarity
        assert score == pytest.approx(np.corrcoef(row, q)[0, 1], abs=1e-5)
    assert engine.pair_similarities(query, "pearson")["text"].shape == (6,)


def test_rrf_results_carry_their_ranks(engine):
    results = engine.recommend(Query(text="a red apple"), strategy="rrf", k=3)
    assert results[0].ranks == {"text": 1}
    assert engine.recommend(Query(text="a red apple"), k=1)[0].ranks == {}


def test_unknown_similarity_is_refused(engine):
    with pytest.raises(InputError, match="unknown similarity"):
        engine.recommend(Query(text="car"), similarity="jaccard")


def test_rrf_rank_samples_come_from_the_filtered_category(tmp_path):
    """Under a filter, rrf estimates ranks from a sample of the category's own items (a catalogue-wide
    sample holds few of them), scaled by the category's size; samples are reused per category."""
    from recsys.catalogue import Catalogue, Item
    from recsys.recommend.engine import ModalityIndex, RecommendationEngine
    from recsys.recommend.retrieval import RANK_SAMPLE

    n = RANK_SAMPLE * 3
    rng = np.random.default_rng(0)
    cats = np.where(rng.random(n) < 0.05, "rare/kind", "common")
    items = [Item(f"i{i}", f"i{i}", "", str(c), None, None) for i, c in enumerate(cats)]
    vec = rng.standard_normal((n, 8)).astype(np.float32)
    vec /= np.linalg.norm(vec, axis=1, keepdims=True)
    index = ModalityIndex("text", None, vec, np.ones(n, bool), "text", shared=vec)
    catalogue = Catalogue(tmp_path, items, [], fingerprint="t")
    engine = RecommendationEngine(catalogue, None, {"text": index}, search="exact")
    rare = engine._rank_sample("rare")
    assert rare.population == int((cats == "rare/kind").sum())
    assert len(rare.rows) == rare.population and set(cats[rare.rows]) == {"rare/kind"}
    everything = engine._rank_sample(None)
    assert everything.population == n and len(everything.rows) == RANK_SAMPLE
    assert engine._rank_sample("rare/") is rare  # reused, whatever the spelling of the path


def test_rrf_rank_samples_are_kept_within_a_memory_budget(tmp_path, monkeypatch):
    """Samples of the categories used least recently go first once their vectors exceed the budget;
    a sample's matrix holds only the sampled items that have the field, once per distinct array."""
    from recsys.catalogue import Catalogue, Item
    from recsys.recommend.engine import ModalityIndex, RecommendationEngine

    n, dim = 600, 8
    rng = np.random.default_rng(1)
    items = [Item(f"i{i}", f"i{i}", "", f"c{i % 3}", None, None) for i in range(n)]
    vec = rng.standard_normal((n, dim)).astype(np.float32)
    present = rng.random(n) < 0.5
    index = ModalityIndex("text", None, vec, present, "text", shared=vec)
    catalogue = Catalogue(tmp_path, items, [], fingerprint="t")
    engine = RecommendationEngine(catalogue, None, {"text": index}, search="exact")
    c0 = engine._rank_sample("c0")
    native, shared = c0.matrix(engine, "text", False, False), c0.matrix(engine, "text", True, False)
    assert native is shared and len(native) == int(present[c0.rows].sum())
    c1, c2 = (engine._rank_sample(cat) for cat in ("c1", "c2"))
    for sample in (c1, c2):
        sample.matrix(engine, "text", False, False)
    monkeypatch.setattr(retrieval, "RANK_SAMPLE_MEMORY", c1.nbytes + c2.nbytes)
    engine._rank_sample("c2")
    assert list(engine._rank_samples) == ["c1", "c2"]  # c0, least recently used, went first
    engine._rank_sample("c1")
    assert list(engine._rank_samples) == ["c2", "c1"]


def _speech_head(tmp_path, monkeypatch, encoder_id="audio/fake-16"):
    """A head for the fake audio encoder that calls a 300 Hz tone (one-hot bin 3) speech, nothing else."""
    from recsys import speech

    weights = np.full(16, -8.0)
    weights[3] = 8.0
    path = speech.save_detector(speech.SpeechDetector(encoder_id, weights, 0.0, 0.5), tmp_path / "speech.json")
    monkeypatch.setattr(speech, "DEFAULT_DETECTOR", path)
    speech.clear_cache()
    return path


def test_audio_note_flags_a_speech_like_query_sound_from_the_embedding_recommend_computed(
    engine, tmp_path, monkeypatch
):
    _speech_head(tmp_path, monkeypatch)
    spoken = media.load_audio(write_tone(tmp_path / "spoken.wav", 300))
    engine.recommend(Query(audio=spoken), k=2)
    encoder = engine.query_encoders["audio"]
    calls = encoder.calls
    note = engine.audio_note(spoken)
    assert encoder.calls == calls  # not encoded a second time
    assert note is not None and note.probability > 0.99 and "type the words as text" in note.message
    effect = media.load_audio(write_tone(tmp_path / "effect.wav", 1300))
    assert engine.audio_note(effect) is None  # a clip recommend never saw is encoded here
    assert engine.audio_note(None) is None


def test_audio_note_is_none_without_a_head_for_the_audio_encoder(engine, tmp_path, monkeypatch, caplog):
    from recsys import speech

    _speech_head(tmp_path, monkeypatch, encoder_id="audio/another-model")
    spoken = media.load_audio(write_tone(tmp_path / "spoken.wav", 300))
    with caplog.at_level("WARNING", logger="recsys.speech"):
        assert engine.audio_note(spoken) is None
    assert "not audio/fake-16" in caplog.text
    monkeypatch.setattr(speech, "DEFAULT_DETECTOR", tmp_path / "missing.json")
    assert engine.audio_note(spoken) is None
    speech.clear_cache()


# -- match confidence of cross-modal pairs (issue 11) --------------------------------------------


def _calibrated_engine(tmp_path, encoders, monkeypatch, calibrated: bool = True, audio: bool = False, tone=None):
    """The fake catalogue's engine with a calibration file for its image aligner (and, with ``audio``,
    a tone aligner and its calibration, as the shipped file holds one per modality; ``tone``: another
    tone aligner class for the engine than the one calibrated)."""
    from fakes import FakeColourAligner, FakeToneAligner

    from recsys.alignment import factory as align
    from recsys.alignment.confidence import Calibration, Platt, aligner_signature, write_calibrations

    aligners = {"image": FakeColourAligner(encoders["text"]), "audio": FakeToneAligner(encoders["text"])}
    path = tmp_path / "confidence.json"
    if calibrated:
        fits = {
            "image": {"text->image": Platt(1.5, -1.0), "image->text": Platt(1.0, -2.0)},
            "audio": {"text->audio": Platt(0.5, -1.5), "audio->text": Platt(1.2, -2.5)},
        }
        tid = encoders["text"].encoder_id
        calibrations = [
            Calibration(m, a.source_encoder_id, tid, aligner_signature(a), fits[m]) for m, a in aligners.items()
        ]
        write_calibrations(path, calibrations)
    monkeypatch.setattr(align, "CONFIDENCE_FILE", path)
    monkeypatch.setattr(
        pipeline,
        "_build_aligner",
        lambda spec, source, text, *_: (
            (tone or FakeToneAligner) if source.modality == "audio" else FakeColourAligner
        )(text),
    )
    root = build_catalogue(tmp_path / "cat")
    config = pipeline.PipelineConfig(
        cache_dir=str(tmp_path / "cache"), image_aligner="fake", audio_aligner="fake" if audio else None
    )
    return pipeline.build_engine(load_catalogue(root), config)


@pytest.mark.parametrize("strategy", ["early", "late", "rrf"])
def test_recommendations_carry_a_calibrated_confidence_per_cross_modal_pair(tmp_path, encoders, monkeypatch, strategy):
    from recsys.alignment.confidence import Platt, standardise

    engine = _calibrated_engine(tmp_path, encoders, monkeypatch)
    assert set(engine.calibrations) == {"text->image", "image->text"}
    results = engine.recommend(Query(text="blue"), strategy=strategy, k=6)
    sims = engine.pair_similarities(Query(text="blue"))["text->image"]
    present = engine.indexes["image"].present
    for r in results:
        row = engine.catalogue.index_of(r.item.id)
        if not present[row]:
            assert r.confidence == {}  # no picture: nothing to be confident about
            continue
        assert set(r.confidence) == {"text->image"}  # same-modality pairs get none
        expected = Platt(1.5, -1.0)(standardise([sims[row]], sims[present]))[0]  # six items: all are the sample
        assert r.confidence["text->image"] == pytest.approx(expected, abs=1e-6)
    with_image = [r for r in results if r.confidence]
    best = max(with_image, key=lambda r: sims[engine.catalogue.index_of(r.item.id)])
    assert best.confidence["text->image"] == max(r.confidence["text->image"] for r in with_image)
    assert best.item.id == "car"


def test_confidence_on_the_candidate_path_matches_exact_scoring(tmp_path, encoders, monkeypatch):
    from recsys.recommend.catalogue_store import attach_store

    engine = _calibrated_engine(tmp_path, encoders, monkeypatch)
    exact = {r.item.id: r.confidence for r in engine.recommend(Query(text="green fruit"), k=4)}
    attach_store(engine, search="ann", uri="memory://")
    assert engine.uses_candidates
    found = {r.item.id: r.confidence for r in engine.recommend(Query(text="green fruit"), k=4)}
    assert found.keys() == exact.keys()
    for item_id, conf in found.items():
        assert conf.keys() == exact[item_id].keys()
        assert all(conf[p] == pytest.approx(exact[item_id][p], abs=1e-6) for p in conf)


def test_an_image_query_gets_an_image_to_text_confidence(tmp_path, encoders, monkeypatch):
    engine = _calibrated_engine(tmp_path, encoders, monkeypatch)
    query = Query(image=media.load_image(write_square(tmp_path / "q.png", "yellow")))
    results = engine.recommend(query, k=6)
    assert all(set(r.confidence) == {"image->text"} for r in results)  # every item has a description
    assert all(0 <= r.confidence["image->text"] <= 1 for r in results)


def test_sounds_get_a_text_to_audio_confidence_from_the_audio_calibration(tmp_path, encoders, monkeypatch):
    from recsys.alignment.confidence import Platt, standardise

    engine = _calibrated_engine(tmp_path, encoders, monkeypatch, audio=True)
    assert set(engine.calibrations) == {"text->image", "image->text", "text->audio", "audio->text"}
    results = engine.recommend(Query(text="racing car"), weights={"text": 0, "image": 0, "audio": 1}, k=6)
    sims = engine.pair_similarities(Query(text="racing car"))["text->audio"]
    present = engine.indexes["audio"].present
    assert results[0].item.id == "car"
    for r in results:
        row = engine.catalogue.index_of(r.item.id)
        if not present[row]:
            assert "text->audio" not in r.confidence  # no sound: no confidence about one
            continue
        expected = Platt(0.5, -1.5)(standardise([sims[row]], sims[present]))[0]
        assert r.confidence["text->audio"] == pytest.approx(expected, abs=1e-6)
    assert results[0].confidence["text->audio"] == max(r.confidence.get("text->audio", 0) for r in results)


def test_a_sound_query_gets_an_audio_to_text_confidence(tmp_path, encoders, monkeypatch):
    engine = _calibrated_engine(tmp_path, encoders, monkeypatch, audio=True)
    query = Query(audio=media.load_audio(write_tone(tmp_path / "q.wav", 900)))  # the car's tone
    results = engine.recommend(query, weights={"text": 1, "image": 0, "audio": 0}, k=6)
    assert results[0].item.id == "car"
    assert all(set(r.confidence) == {"audio->text"} for r in results)  # every item has a description
    assert results[0].confidence["audio->text"] == max(r.confidence["audio->text"] for r in results)


def test_an_audio_calibration_for_another_head_leaves_image_confidence_alone(tmp_path, encoders, monkeypatch):
    """A retrained tone head (another signature) loses its sound confidence; the image pairs keep theirs."""
    from fakes import FakeToneAligner

    class Retrained(FakeToneAligner):
        def transform(self, features):
            return super().transform(np.roll(features, 1, axis=1))

    engine = _calibrated_engine(tmp_path, encoders, monkeypatch, audio=True, tone=Retrained)
    assert set(engine.calibrations) == {"text->image", "image->text"}


def test_without_a_calibration_file_there_is_no_confidence_and_a_log_line(tmp_path, encoders, monkeypatch, caplog):
    with caplog.at_level("INFO", logger="recsys.alignment.confidence"):
        engine = _calibrated_engine(tmp_path, encoders, monkeypatch, calibrated=False)
    assert engine.calibrations == {}
    assert "no match confidence" in caplog.text
    assert all(r.confidence == {} for r in engine.recommend(Query(text="blue"), k=6))


@pytest.mark.slow
def test_demo_engine_gives_picture_and_sound_confidence_from_the_shipped_calibrations(demo_engine):
    assert {"text->image", "image->text", "text->audio", "audio->text"} <= set(demo_engine.calibrations)
    results = demo_engine.recommend(Query(text="a barking puppy"), weights={"text": 0, "image": 1, "audio": 1}, k=5)
    assert all(0 <= r.confidence["text->image"] <= 1 for r in results if r.item.image is not None)
    results = demo_engine.recommend(Query(text="a dog"), weights={"text": 0, "image": 0, "audio": 1}, k=5)
    assert results[0].item.id == "dog"  # by its sound alone
    assert all(0 <= r.confidence["text->audio"] <= 1 for r in results if r.item.audio is not None)


@pytest.mark.slow
def test_demo_engine_gives_a_sound_query_an_audio_to_text_confidence(demo_engine):
    query = Query(audio=media.load_audio(Path(demo_engine.catalogue.root) / "sounds" / "dog.ogg"))
    results = demo_engine.recommend(query, weights={"text": 1, "image": 0, "audio": 0}, k=5)
    assert all(0 <= r.confidence["audio->text"] <= 1 for r in results)  # every demo item has a description
