"""Candidate retrieval on a real catalogue: fused top-10 through the vector store against exact.

For sampled catalogue items, the item's own text and picture form a fused query (as a user who
likes that item and describes it); each is answered by the exact engine (every item scored) and
by the engine on its vector store, with and without a category filter (the item's top-level
category), for each fusion strategy. ``early`` and ``late`` are answered twice on the store: one
search per field plus one of the joint field (the default, "+ joint") and the per-field searches
alone (the engine with its joint projection removed), so the gain of the joint field is measured
on real embeddings, not only on the synthetic mixtures of ``benchmarks/scale.py``, with a category
filter and without.

    .venv/bin/python benchmarks/store_recall.py --catalogue data/large --queries 200

Reports figures only; nothing is tuned on it.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from recsys.catalogue import load_catalogue
from recsys.media import load_image
from recsys.pipeline import PipelineConfig, build_engine
from recsys.recommend.query import Query
from recsys.threads import use_threads

ROOT = Path(__file__).resolve().parents[1]
STRATEGIES = ("early", "late", "rrf")
WEIGHTS = {"text": 1.0, "image": 0.5, "audio": 0.5}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--catalogue", default=str(ROOT / "data" / "large"))
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--seed", type=int, default=5)
    args = parser.parse_args()
    catalogue = load_catalogue(args.catalogue)
    store = build_engine(catalogue, PipelineConfig.layered(catalogue.root, search="ann"))
    use_threads("query")
    rng = np.random.default_rng(args.seed)
    picks = rng.choice(len(catalogue), size=min(args.queries, len(catalogue)), replace=False)
    queries = []
    for i in picks.tolist():
        item = catalogue.items[i]
        q = Query(text=item.text or None, image=load_image(item.image) if item.image else None)
        if q.inputs():
            queries.append((q, item.category.split("/")[0]))
    print(f"{catalogue.root}: {len(catalogue):,} items, {len(queries)} queries (item text + picture), "
          f"weights {WEIGHTS}, joint field {store.joint.dims if store.joint is not None else 'none'}-d")  # fmt: skip
    print(f"{'strategy':>8} {'filter':>8} {'retrieval':>10} {'recall@10':>9} {'p50 ms':>7} {'p95 ms':>7}")
    encoded = [(store.encode_query(q), category) for q, category in queries]
    joint = store.joint
    for strategy in STRATEGIES:
        for filtered in (False, True):
            store.search = "exact"  # every item scored: the reference
            want = [_top(store, qv, strategy, category if filtered else None) for qv, category in encoded]
            store.search = "ann"
            for label, projection in (("+ joint", joint), ("per field", None)):
                if strategy == "rrf" and projection is not None:
                    continue
                store.joint = projection
                times, got = [], []
                for qv, category in encoded:
                    started = time.perf_counter()
                    got.append(_top(store, qv, strategy, category if filtered else None))
                    times.append(1000 * (time.perf_counter() - started))
                store.joint = joint
                recall = np.mean([len(set(g) & set(w)) / max(1, len(w)) for g, w in zip(got, want, strict=True)])
                label = label if strategy != "rrf" else "per pair"
                p50, p95 = np.percentile(times, [50, 95])
                print(f"{strategy:>8} {'category' if filtered else 'none':>8} {label:>10} {recall:>9.3f} "
                      f"{p50:>7.2f} {p95:>7.2f}", flush=True)  # fmt: skip


def _top(engine, q, strategy: str, category: str | None) -> list[str]:  # noqa: ANN001
    return [r.item.id for r in engine.recommend_vectors(q, weights=WEIGHTS, strategy=strategy, k=10, category=category)]


if __name__ == "__main__":
    main()
