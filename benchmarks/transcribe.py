"""Text->audio retrieval when speech clips are represented by the words speech recognition hears.

The demo's speech clips (those the shipped speech detector flags, on the prebuilt aisfx vectors)
are transcribed with :class:`recsys.transcribe.Transcriber`; a clip's vector is the MiniLM
embedding of its transcript, either the best hypothesis alone or the distinct words of the
10 best. Queries are the distinct descriptions; relevant: the clips carrying it. The settings
(10-best, 0.5 s padding) were chosen on the ``dev`` half of the descriptions (a fixed hash of
their text), so the ``test`` half is the figure to quote; ``all`` is both.

Rows "all clips" put every other clip at the shipped audio aligner's vector. That head was
trained on these very clips, so its own rows are in-sample (near 1.0) and only show that
transcripts leave the non-speech queries alone; the speech-gallery rows are the clean figure.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/transcribe.py [--split test|dev|all] [--show 20]

Prints the per-clip transcription cost (one core; decoding + resampling, model built once).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from recsys.alignment.factory import load_aligner  # noqa: E402
from recsys.alignment.heldout import description_half  # noqa: E402
from recsys.alignment.metrics import retrieval_metrics  # noqa: E402
from recsys.catalogue import load_catalogue  # noqa: E402
from recsys.encoders import create_encoder  # noqa: E402
from recsys.encoding.cache import content_keys  # noqa: E402
from recsys.media import load_audio  # noqa: E402
from recsys.speech import DEFAULT_DETECTOR, read_detector  # noqa: E402
from recsys.threads import use_threads  # noqa: E402
from recsys.transcribe import Transcriber  # noqa: E402

CATALOGUE = REPO / "data" / "tuxpaint"
ALIGNER = REPO / "data" / "aligners" / "tuxpaint-audio.json"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", choices=("test", "dev", "all"), default="test")
    parser.add_argument("--show", type=int, default=20, help="(description, transcript) pairs to print")
    args = parser.parse_args()
    use_threads("query")  # one core: the figure is the cost per clip on one core

    items = [it for it in load_catalogue(CATALOGUE).items if it.audio is not None]
    keys = content_keys(items, "audio")
    pre = np.load(CATALOGUE / "prebuilt" / "audio-embedding.npz")
    row = {k: i for i, k in enumerate(pre["keys"].astype(str))}
    audio = np.stack([pre["vectors"][row[k]].astype(np.float32) for k in keys])
    detector = read_detector(DEFAULT_DETECTOR, pre_id := prebuilt_audio_encoder())
    speech = np.array([detector.probability(a) >= detector.threshold for a in audio])

    start = time.perf_counter()
    transcriber = Transcriber()
    built = time.perf_counter() - start
    first: dict[str, object] = {}  # the first item of each distinct speech clip
    for it, k, s in zip(items, keys, speech, strict=True):
        if s:
            first.setdefault(k, it)
    start = time.perf_counter()
    heard = dict(zip(first, transcriber.transcribe_batch([load_audio(it.audio) for it in first.values()]), strict=True))
    spent = time.perf_counter() - start
    seconds = sum(load_audio(it.audio).seconds for it in first.values())
    print(
        f"{len(items)} clips, {int(speech.sum())} speech ({len(first)} distinct clips); transcriber built in "
        f"{built:.1f} s; {1000 * spent / len(first):.0f} ms per clip (decode + resample + recognise, "
        f"{seconds / len(first):.2f} s of audio per clip, real-time factor {spent / seconds:.2f})"
    )
    for it in list(first.values())[: args.show]:
        t = heard[content_keys([it], "audio")[0]]
        print(f"  {it.description[:40]!r:44s} best: {t.text!r:20s} 10-best words: {t.search_text[:60]!r}")

    text = create_encoder("minilm", device="cpu")
    wanted = {it.description for it in items if args.split in ("all", description_half(it.description))}
    descriptions = sorted(wanted)
    queries = text.encode(descriptions)
    relevant = np.array([[it.description == d for it in items] for d in descriptions])
    speech_query = (relevant & speech[None, :]).any(axis=1)
    aligner = load_aligner(ALIGNER, source_encoder=SimpleNamespace(encoder_id=pre_id), text_encoder=text)
    aligned = aligner.transform(audio)

    def vectors(which: str) -> np.ndarray:
        words = [getattr(heard[k], which) if s else "" for k, s in zip(keys, speech, strict=True)]
        out = text.encode([w or " " for w in words])
        out[[not w for w in words]] = 0.0  # nothing heard: no text vector
        return out

    best, nbest = vectors("text"), vectors("search_text")
    print(f"\nsplit {args.split}: {len(descriptions)} queries ({int(speech_query.sum())} with a speech clip)")
    every = np.ones(len(items), dtype=bool)
    mixed_best, mixed_nbest = np.where(speech[:, None], best, aligned), np.where(speech[:, None], nbest, aligned)
    rows = [
        ("speech gallery, best hypothesis", speech, best, speech_query),
        ("speech gallery, 10-best words", speech, nbest, speech_query),
        ("all clips, speech=best hypothesis, speech queries", every, mixed_best, speech_query),
        ("all clips, speech=10-best words, speech queries", every, mixed_nbest, speech_query),
        ("all clips, speech=10-best words, other queries*", every, mixed_nbest, ~speech_query),
        ("all clips, aligner only (in-sample*), speech queries", every, aligned, speech_query),
    ]
    for name, gallery, vecs, q in rows:
        r = retrieval_metrics(queries[q] @ vecs[gallery].T, relevant[q][:, gallery])
        print(
            f"  {name:54s} q={r['queries']:3d} n={r['gallery']:3d}  R@1 {r['recall@1']:.3f} "
            f"(chance {r['recall@1_chance']:.3f})  R@10 {r['recall@10']:.3f} (chance {r['recall@10_chance']:.3f})"
        )
    print("  * the shipped audio aligner was trained on these clips: its rows are in-sample, not held out")


def prebuilt_audio_encoder() -> str:
    """The prebuilt audio rows' encoder id (the detector must be for the same encoder)."""
    import json

    manifest = json.loads((CATALOGUE / "prebuilt" / "manifest.json").read_text(encoding="utf-8"))
    return next(f["feature_id"] for f in manifest["features"] if f["file"] == "audio-embedding.npz")


if __name__ == "__main__":
    main()
