"""Speech clips at their words: the replacement rule, the catalogue step (cached) and the query side, with fakes.

The fake speech head calls the 300 Hz tone (the apple's clip, one-hot bin 3 of the fake audio
encoder) speech and nothing else; the fake transcriber "hears" a fixed phrase and counts its calls.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import numpy as np
import pytest
from fakes import FakeTextEncoder, FakeToneAligner, build_catalogue, write_tone

from recsys import media, pipeline, speech, transcribe
from recsys.alignment import spoken
from recsys.catalogue import load_catalogue
from recsys.errors import InputError, MissingWeightsError
from recsys.recommend.query import Query
from recsys.transcribe import Transcript

TID = "asr/fake@1"


class FakeTranscriber:
    """Hears ``words`` in every clip (or raises ``error``); counts the clips it was given."""

    def __init__(self, words: str = "taxi car", error: Exception | None = None) -> None:
        self.words, self.error, self.calls = words, error, 0

    def transcribe(self, clip) -> Transcript:
        self.calls += 1
        if self.error is not None:
            raise self.error
        return Transcript(text=self.words.split()[0] if self.words.split() else "", words=tuple(self.words.split()))


@pytest.fixture
def speech_head(tmp_path, monkeypatch):
    weights = np.full(16, -8.0)
    weights[3] = 8.0
    head = speech.SpeechDetector("audio/fake-16", weights, 0.0, 0.5)
    monkeypatch.setattr(speech, "DEFAULT_DETECTOR", speech.save_detector(head, tmp_path / "speech.json"))
    speech.clear_cache()
    yield head
    speech.clear_cache()


@pytest.fixture
def ear(monkeypatch):
    """The fake transcriber stands in for PocketSphinx (installed or not)."""
    fake = FakeTranscriber()
    monkeypatch.setattr(transcribe, "transcriber_id", lambda **_: TID)
    monkeypatch.setattr(transcribe, "shared_transcriber", lambda **_: fake)
    return fake


def build(root, cache, monkeypatch, progress=None):
    """The fake catalogue with its sounds aligned (fakes.FakeToneAligner) and its images unaligned."""
    monkeypatch.setattr(pipeline, "_build_aligner", lambda spec, source, text, *_: FakeToneAligner(text))
    config = pipeline.PipelineConfig(cache_dir=str(cache), image_aligner=None, audio_aligner="fake")
    return pipeline.build_engine(load_catalogue(root), config, progress=progress)


# -- the rule --------------------------------------------------------------------------------------------
def test_flagged_rows_with_words_move_to_them_and_the_rest_are_untouched():
    text = FakeTextEncoder()
    rng = np.random.default_rng(0)
    shared = rng.standard_normal((5, 64)).astype(np.float32)
    shared /= np.linalg.norm(shared, axis=1, keepdims=True)
    flagged = np.array([True, True, False, True, False])
    texts = ["seven", "", "dog", "a b c", "cat"]
    out = spoken.replace_spoken(shared, flagged, texts, text)
    words = text.encode(["seven", "a b c"])
    expected = (spoken.WORDS_WEIGHT * words + (1 - spoken.WORDS_WEIGHT) * shared[[0, 3]])
    np.testing.assert_allclose(out[[0, 3]], expected / np.linalg.norm(expected, axis=1, keepdims=True), atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(out[[0, 3]], axis=1), 1.0, atol=1e-6)
    np.testing.assert_array_equal(out[[1, 2, 4]], shared[[1, 2, 4]])  # nothing heard, or not speech
    assert not np.shares_memory(out, shared)
    at_words = spoken.replace_spoken(shared, flagged, texts, text, weight=1.0)
    np.testing.assert_allclose(at_words[[0, 3]], words, atol=1e-6)  # weight 1: the words alone


class _Hostile(FakeTextEncoder):
    def encode(self, inputs, batch_size=32):
        out = super().encode(inputs)
        for i, t in enumerate(inputs):
            out[i] = np.nan if t == "nan" else 0.0 if t == "zero" else out[i]
        return out


@pytest.mark.parametrize("texts", [["", " \t\n "], ["nan", "zero"], ["\x00\ufffd", "w" * 100_000], ["🐶 (2)", "'"]])
def test_odd_or_empty_transcripts_give_no_exception_and_never_a_bad_vector(texts):
    shared = np.ones((2, 64), dtype=np.float32) / 8.0
    out = spoken.replace_spoken(shared, [True, True], texts, _Hostile())
    assert np.isfinite(out).all()
    for row, t in zip(out, texts, strict=True):
        assert np.allclose(row, shared[0]) or abs(np.linalg.norm(row) - 1.0) < 1e-5, t


def test_a_text_encoder_of_another_width_is_refused():
    with pytest.raises(Exception, match="shape"):
        spoken.replace_spoken(np.zeros((1, 8), np.float32), [True], ["dog"], FakeTextEncoder())


def test_no_rule_without_a_head_for_the_encoder_or_without_a_recogniser(speech_head, monkeypatch):
    text = FakeTextEncoder()
    other = type("Enc", (), {"encoder_id": "audio/another"})()
    assert spoken.spoken_rule(other, text) is None

    def absent(**_):
        raise MissingWeightsError("no pocketsphinx")

    monkeypatch.setattr(transcribe, "transcriber_id", absent)
    assert spoken.spoken_rule(type("Enc", (), {"encoder_id": "audio/fake-16"})(), text) is None


# -- catalogue side ----------------------------------------------------------------------------------------
def test_build_places_speech_clips_at_their_words_and_a_rebuild_transcribes_nothing(
    tmp_path, patched_encoders, speech_head, ear, monkeypatch
):
    root = build_catalogue(tmp_path / "cat")
    stages: dict[str, list[tuple[int, int]]] = {}
    engine = build(root, tmp_path / "cache", monkeypatch, lambda s, d, t: stages.setdefault(s, []).append((d, t)))
    assert ear.calls == 1 and stages[spoken.STAGE][-1] == (1, 1)  # the apple's clip alone is speech
    ix, text = engine.indexes["audio"], patched_encoders["text"]
    apple, frog = (engine.catalogue.index_of(i) for i in ("apple", "frog"))
    sound = FakeToneAligner(text).table[3][None, :]  # the apple clip's aligner vector
    np.testing.assert_allclose(ix.shared[apple], spoken.blend(sound, text.encode(["taxi car"]))[0], atol=1e-6)
    np.testing.assert_allclose(ix.shared[frog], text.encode(["a green frog that croaks"])[0], atol=1e-6)
    assert engine.spoken is not None and TID in engine.spoken.describe()
    # text -> audio finds the apple's clip by what it says
    top = engine.recommend(Query(text="taxi car"), weights={"audio": 1.0, "text": 0.0, "image": 0.0}, k=1)
    assert top[0].item.id == "apple"

    again = build(root, tmp_path / "cache", monkeypatch)
    assert ear.calls == 1  # cached by clip content and transcriber
    np.testing.assert_array_equal(again.indexes["audio"].shared, ix.shared)


def test_nothing_heard_or_an_unreadable_clip_keeps_the_aligner_vector(
    tmp_path, patched_encoders, speech_head, ear, monkeypatch
):
    root = build_catalogue(tmp_path / "cat")
    ear.words = ""
    engine = build(root, tmp_path / "cache", monkeypatch)
    apple = engine.catalogue.index_of("apple")
    aligner = FakeToneAligner(patched_encoders["text"])
    np.testing.assert_allclose(engine.indexes["audio"].shared[apple], aligner.table[3], atol=1e-6)
    assert ear.calls == 1
    build(root, tmp_path / "cache", monkeypatch)
    assert ear.calls == 1  # "nothing heard" is cached too

    ear.error, ear.words = InputError("cannot decode"), "dog"
    engine = build(root, tmp_path / "other-cache", monkeypatch)
    np.testing.assert_allclose(engine.indexes["audio"].shared[apple], aligner.table[3], atol=1e-6)


def test_without_an_aligned_audio_modality_nothing_is_transcribed(tmp_path, patched_encoders, speech_head, ear):
    root = build_catalogue(tmp_path / "cat")
    config = pipeline.PipelineConfig(cache_dir=str(tmp_path / "cache"), image_aligner=None, audio_aligner=None)
    engine = pipeline.build_engine(load_catalogue(root), config)
    assert ear.calls == 0 and engine.spoken is None


# -- query side --------------------------------------------------------------------------------------------
def test_a_spoken_query_is_matched_by_its_words_and_transcribed_once(
    tmp_path, patched_encoders, speech_head, ear, monkeypatch
):
    engine = build(build_catalogue(tmp_path / "cat"), tmp_path / "cache", monkeypatch)
    ear.words = "green frog"
    query = Query(audio=media.load_audio(write_tone(tmp_path / "q.wav", 300)))
    rule, engine.spoken = engine.spoken, None
    by_sound = engine.encode_query(query).shared["audio"]
    engine.spoken = rule
    calls = ear.calls
    vectors = engine.encode_query(query)
    words = patched_encoders["text"].encode(["green frog"])
    np.testing.assert_allclose(vectors.shared["audio"], spoken.blend(by_sound[None, :], words)[0], atol=1e-6)
    def frog_rank() -> int:  # audio -> text: where the frog's description ranks for the sound
        ranked = engine.recommend(query, weights={"text": 1.0, "audio": 0.0, "image": 0.0}, k=6)
        return [r.item.id for r in ranked].index("frog")

    with_words, heard = frog_rank(), engine._last_heard
    engine.spoken, engine._last_heard = None, None
    assert with_words < frog_rank()  # the words lift it
    engine.spoken, engine._last_heard = rule, heard
    note = engine.audio_note(query.audio)
    assert note is not None and note.heard == "green"
    assert note.message == "This clip sounds like speech; heard: 'green'. Matched by its words."
    assert ear.calls == calls + 1


def test_a_spoken_query_with_nothing_heard_keeps_its_sound_vector_and_the_note(
    tmp_path, patched_encoders, speech_head, ear, monkeypatch
):
    engine = build(build_catalogue(tmp_path / "cat"), tmp_path / "cache", monkeypatch)
    aligner = FakeToneAligner(patched_encoders["text"])
    for words, error in (("", None), ("dog", InputError("bad clip"))):
        ear.words, ear.error = words, error
        query = Query(audio=media.load_audio(write_tone(tmp_path / "q.wav", 300)))
        np.testing.assert_allclose(engine.encode_query(query).shared["audio"], aligner.table[3], atol=1e-6)
        note = engine.audio_note(query.audio)
        assert note is not None and "type the words as text instead" in note.message
        assert ("no words were recognised" in note.message) == (error is None)


def test_a_sound_that_is_not_speech_is_not_transcribed(tmp_path, patched_encoders, speech_head, ear, monkeypatch):
    engine = build(build_catalogue(tmp_path / "cat"), tmp_path / "cache", monkeypatch)
    calls = ear.calls
    query = Query(audio=media.load_audio(write_tone(tmp_path / "q.wav", 1300)))
    assert engine.recommend(query, k=1)[0].item.id == "frog"
    assert engine.audio_note(query.audio) is None and ear.calls == calls


def test_a_fresh_cache_reads_the_catalogues_shipped_transcripts(
    tmp_path, patched_encoders, speech_head, ear, monkeypatch
):
    from recsys import prebuilt

    root = build_catalogue(tmp_path / "cat")
    first = build(root, tmp_path / "cache", monkeypatch)
    folder = prebuilt.prebuilt_dir(root)
    folder.mkdir()
    manifest = {"format": prebuilt.FORMAT, "features": []}
    assert prebuilt.export_transcripts(first.catalogue, TID, folder, manifest, cache_dir=tmp_path / "cache") == 1
    prebuilt.write_manifest(folder, manifest)
    again = build(root, tmp_path / "fresh-cache", monkeypatch)
    assert ear.calls == 1
    np.testing.assert_array_equal(again.indexes["audio"].shared, first.indexes["audio"].shared)


@pytest.mark.slow
def test_a_real_spoken_digit_from_the_demo_is_heard_and_placed_at_its_words(tmp_path):
    """PocketSphinx and the shipped aisfx speech head on the demo's "7" (its prebuilt aisfx vector)."""
    pytest.importorskip("pocketsphinx", reason=f"speech recognition needs {transcribe.PACKAGE}")
    from pathlib import Path

    from recsys.encoding.cache import content_keys

    demo = Path(__file__).resolve().parents[2] / "data" / "tuxpaint"
    items = [it for it in load_catalogue(demo).items if it.audio is not None and it.audio.name == "7.ogg"][:1]
    if not items:
        pytest.skip("the demo clip 7.ogg is not present")
    pre = np.load(demo / "prebuilt" / "audio-embedding.npz")
    key = content_keys(items, "audio")[0]
    row = pre["vectors"][list(pre["keys"].astype(str)).index(key)].astype(np.float32)
    detector = speech.read_detector(speech.DEFAULT_DETECTOR)
    rule = spoken.SpokenWords(detector, FakeTextEncoder(), transcribe.transcriber_id(), transcribe.shared_transcriber)
    note, vector = rule.hear(items[0].audio, row)
    assert note is not None and note.heard and vector is not None
    shared, flagged = rule.items(
        np.zeros((1, 64), np.float32), row[None], [True], [key], [str(items[0].audio)], cache_dir=tmp_path
    )
    assert flagged.tolist() == [True] and abs(np.linalg.norm(shared[0]) - 1) < 1e-5
    assert "seven" in rule.transcripts({key: str(items[0].audio)}, cache_dir=tmp_path)[key].words


class _NamedClipEar:
    """A picklable fake recogniser for worker processes: "hears" a clip's file name; "bad" clips fail."""

    def transcribe(self, source):
        name = Path(str(source)).stem
        if name.startswith("bad"):
            raise InputError(f"cannot decode {name}")
        return Transcript(text=str(os.getpid()), words=(name,))  # the process that heard it


def _named_clip_ear():
    return _NamedClipEar()


def test_a_speech_heavy_catalogue_is_transcribed_by_worker_processes_in_order(tmp_path, speech_head, monkeypatch):
    """Past POOL_MIN_CLIPS clips the recogniser runs in worker processes; each clip's words land on its
    own key, unreadable clips are left out, and everything heard is cached (a second pass runs nothing)."""
    monkeypatch.setattr(spoken, "POOL_MIN_CLIPS", 4)
    rule = spoken.SpokenWords(speech_head, FakeTextEncoder(), TID, _named_clip_ear, processes=2)
    clips = {f"key-{i}": tmp_path / (f"bad-{i}.wav" if i % 5 == 0 else f"clip-{i}.wav") for i in range(12)}
    seen = []
    heard = rule.transcripts(clips, cache_dir=tmp_path / "cache", progress=lambda d, t: seen.append((d, t)))
    assert set(heard) == {k for k, p in clips.items() if not p.stem.startswith("bad")}
    assert all(heard[k].words == (clips[k].stem,) for k in heard)
    assert str(os.getpid()) not in {t.text for t in heard.values()}  # heard in the workers
    assert seen[-1] == (12, 12)
    rule = dataclasses.replace(rule, make_transcriber=lambda: pytest.fail("nothing left to transcribe"), processes=1)
    assert rule.transcripts({k: clips[k] for k in heard}, cache_dir=tmp_path / "cache") == heard
