"""Score scales behind the default weak-match thresholds (``recsys.recommend.relevance``).

Prints the top-5 scores of a few text queries on a catalogue (default: the demo) for every fusion
strategy and similarity, with each query's top result and whether it passes the default
threshold. Queries with a right answer in the demo and queries with none sit side by side, so the
defaults can be checked (or re-chosen) when the encoders change.

    .venv/bin/python benchmarks/thresholds.py [--catalogue data/tuxpaint] [--query TEXT ...]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from recsys.fusion import SIMILARITIES, STRATEGIES
from recsys.pipeline import load_engine
from recsys.recommend.query import Query
from recsys.recommend.relevance import threshold_scale

ROOT = Path(__file__).resolve().parents[1]
QUERIES = ("a red apple", "a barking dog", "something that flies", "a car", "woof woof", "sad music", "qwerty zxcv")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--catalogue", default=str(ROOT / "data" / "tuxpaint"))
    parser.add_argument("--query", action="append", help="a text query (repeat; default: a fixed mix)")
    args = parser.parse_args()
    engine = load_engine(args.catalogue)
    print(f"{len(engine.catalogue)} items; top-5 scores per query, '*' = top result passes the default threshold")
    for strategy in STRATEGIES:
        for similarity in SIMILARITIES:
            scale = threshold_scale(strategy, similarity)
            print(f"\n{strategy} / {similarity} (default threshold {scale.format(scale.default)})")
            for text in args.query or QUERIES:
                results = engine.recommend(Query(text=text), strategy=strategy, similarity=similarity, k=5)
                scores = " ".join(scale.format(r.score) for r in results)
                passes = "*" if results and results[0].score >= scale.default else " "
                print(f"  {passes} {text!r:24} {scores}   top: {results[0].item.title if results else '-'}")


if __name__ == "__main__":
    main()
