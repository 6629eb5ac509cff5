"""Encoder throughput and query latency on a catalogue (default: the demo catalogue).

Prints items/s for each default encoder (batched, on decoded inputs, so decoding is not
counted), and the median / p95 latency of one ``recommend`` call with warm caches, per query
kind and fusion strategy.

    .venv/bin/python benchmarks/encode_and_query.py [--catalogue data/tuxpaint] [--n 64] [--repeats 30]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np

from recsys import media
from recsys.catalogue import load_catalogue
from recsys.device import pick_device
from recsys.encoders import create_encoder
from recsys.encoding.cache import decode
from recsys.pipeline import PipelineConfig, build_engine
from recsys.recommend.query import Query
from recsys.threads import thread_count, use_threads

ROOT = Path(__file__).resolve().parents[1]


def encoder_throughput(catalogue, config: PipelineConfig, n: int) -> list[tuple[str, str, int, float]]:
    rows = []
    for modality in ("text", "image", "audio"):
        mask = catalogue.has_modality(modality)
        items = [it for it, ok in zip(catalogue.items, mask, strict=True) if ok][:n]
        if not items:
            continue
        encoder = create_encoder(config.encoder_name(modality), device=config.device)
        inputs = [decode(it, modality) for it in items]
        encoder.encode(inputs[:2])  # warm-up
        start = time.perf_counter()
        encoder.encode(inputs, batch_size=config.batch_size)
        elapsed = time.perf_counter() - start
        rows.append((modality, encoder.encoder_id, len(inputs), len(inputs) / elapsed))
    return rows


def latency(engine, query: Query, strategy: str, repeats: int) -> tuple[float, float]:
    engine.recommend(query, strategy=strategy, k=10)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        engine.recommend(query, strategy=strategy, k=10)
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times), float(np.percentile(times, 95))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--catalogue", default=str(ROOT / "data" / "tuxpaint"))
    parser.add_argument("--n", type=int, default=64, help="items per encoder for the throughput figure")
    parser.add_argument("--repeats", type=int, default=30)
    args = parser.parse_args()

    catalogue = load_catalogue(args.catalogue)
    config = PipelineConfig.layered(args.catalogue)
    print(f"catalogue: {args.catalogue} ({len(catalogue)} items), device: {pick_device(config.device)}")
    print(f"\nencoder throughput (batched, decoded inputs, {thread_count('batch')} thread(s))")
    print(f"{'modality':<8} {'encoder':<48} {'items':>6} {'items/s':>9}")
    with use_threads("batch"):
        rows = encoder_throughput(catalogue, config, args.n)
    for modality, encoder_id, n, rate in rows:
        print(f"{modality:<8} {encoder_id:<48} {n:>6} {rate:>9.1f}")

    start = time.perf_counter()
    engine = build_engine(catalogue, config)
    print(f"\nengine build with warm caches: {time.perf_counter() - start:.2f} s")
    threads = thread_count("query")  # build_engine leaves the process in the query role, as in the app
    with_image = next(it for it in catalogue.items if it.image is not None)
    with_audio = next((it for it in catalogue.items if it.audio is not None), None)
    queries = {
        "text": Query(text="a red apple"),
        "image": Query(image=media.load_image(with_image.image)),
        "text+like": Query(text="an animal", likes=(with_image.id,)),
    }
    if with_audio is not None:
        queries["audio"] = Query(audio=media.load_audio(with_audio.audio))
    print(
        f"\nrecommend() latency, k=10, warm caches, {args.repeats} repeats, {threads} torch thread(s), incl. encoding"
    )
    print(f"{'query':<10} {'strategy':<8} {'median ms':>10} {'p95 ms':>8}")
    for name, query in queries.items():
        for strategy in ("early", "late", "rrf"):
            med, p95 = latency(engine, query, strategy, args.repeats)
            print(f"{name:<10} {strategy:<8} {med:>10.1f} {p95:>8.1f}")


if __name__ == "__main__":
    main()
