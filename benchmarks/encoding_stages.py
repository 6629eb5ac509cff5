"""Where the main process spends an indexing pass, stage by stage (what limits ``benchmarks/encoding.py``'s ratio).

Runs the same pass as ``benchmarks/encoding.py`` (the first N distinct items of a catalogue, ``--copies``
times as distinct content) with the pipeline's stages timed in place, and prints seconds spent on
hashing and planning, waiting for the first batch (workers starting), then per batch: waiting for the
workers, queueing the forward pass, reading its outputs back (on a GPU: waiting for the device) and
writing the cache shards. Waiting for workers means decoding is the limit; a main process busy the
whole time means the main process is. Besides the main thread's stages, it prints what each batch
cost on its way from the workers: mapping its shared memory as it is received (on a GPU, on
DataLoader's pinning thread) and, on a GPU, pinning it there; a pinning thread busy the whole pass
means handing batches over is the limit.

    .venv/bin/python benchmarks/encoding_stages.py [--modality image] [--n 1024] [--copies 100]
        [--batch-size 256] [--workers W] [--pin auto|on|off] [--precision fp32|bf16|fp16]
        [--cuda-graphs on|off] [--device cuda]
"""

from __future__ import annotations

import argparse
import collections
import functools
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import encoding as bench  # noqa: E402  # the same items and copies as benchmarks/encoding.py

import recsys.encoding as pipeline  # noqa: E402
from recsys.catalogue import load_catalogue  # noqa: E402
from recsys.device import pick_device  # noqa: E402
from recsys.encoders import create_encoder  # noqa: E402

seconds: collections.Counter[str] = collections.Counter()


def timed(stage: str, function: Callable[..., Any]) -> Callable[..., Any]:
    def run(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            seconds[stage] += time.perf_counter() - start

    return run


def timed_batches(batches: Callable[..., Iterator[Any]]) -> Callable[..., Iterator[Any]]:
    """The first batch (workers starting) apart from the waits for the ones after it."""

    def run(*args: Any, **kwargs: Any) -> Iterator[Any]:
        stage = "first batch"
        iterator = batches(*args, **kwargs)
        while True:
            start = time.perf_counter()
            batch = next(iterator, None)
            seconds[stage] += time.perf_counter() - start
            if batch is None:
                return
            seconds["batches"] += 1
            stage = "waiting for workers"
            yield batch

    return run


def time_handing_over() -> None:
    """Time the work a batch costs between the workers and the device, wherever it runs: mapping its
    shared-memory block as it is unpickled (the ``file_descriptor`` strategy, Linux's default) and
    pinning it (DataLoader's pinning thread). ``functools.wraps`` keeps the rebuild function picklable
    by name, as the workers, forked after this, pickle it."""
    from torch.multiprocessing import reductions
    from torch.utils.data._utils import pin_memory as pinning

    reductions.rebuild_storage_fd = functools.wraps(reductions.rebuild_storage_fd)(
        timed("mapping batches", reductions.rebuild_storage_fd)
    )
    pinning.pin_memory = timed("pinning batches", pinning.pin_memory)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--catalogue", default=str(bench.ROOT / "data" / "tuxpaint"))
    parser.add_argument("--modality", default="image", choices=sorted(bench.ENCODERS))
    parser.add_argument("--n", type=int, default=1024, help="distinct items")
    parser.add_argument("--copies", type=int, default=100, help="distinct-content copies of each item")
    parser.add_argument("--device", default=None)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--pin", default="auto", choices=["auto", "on", "off"])
    parser.add_argument("--precision", default="fp32", choices=["fp32", "bf16", "fp16"])
    parser.add_argument(
        "--cuda-graphs", default=None, choices=["on", "off"], help="image encoder only (default: on on CUDA)"
    )
    args = parser.parse_args()

    pipeline._batches = timed_batches(pipeline._batches)
    pipeline._launch = timed("queueing batches", pipeline._launch)
    pipeline._finished = timed("reading outputs back", pipeline._finished)
    pipeline._Chunk.flush = timed("cache writes", pipeline._Chunk.flush)
    pipeline.plan_features = timed("hashing + plan", pipeline.plan_features)
    time_handing_over()

    if args.cuda_graphs and args.modality != "image":
        parser.error("--cuda-graphs applies to the image encoder only")
    graphs = {"cuda_graphs": args.cuda_graphs == "on"} if args.cuda_graphs else {}
    encoder = create_encoder(bench.ENCODERS[args.modality], device=pick_device(args.device), **graphs)
    subset = bench.distinct_items(load_catalogue(args.catalogue), args.modality, args.n)
    pin = {"auto": None, "on": True, "off": False}[args.pin]
    options = pipeline.BatchOptions(
        batch_size=args.batch_size, workers=args.workers, precision=args.precision, pin_memory=pin
    )
    with tempfile.TemporaryDirectory() as work:
        items = bench.copies(subset, args.modality, args.copies, Path(work))
        start = time.perf_counter()
        pipeline.catalogue_features(
            items, args.modality, encoder, encoder.outputs, cache_dir=Path(work) / "cache", options=options
        )
        total = time.perf_counter() - start
    n = len(items.items)
    stages = ["hashing + plan", "first batch", "waiting for workers", "queueing batches", "reading outputs back",
              "cache writes"]
    other = total - sum(seconds[s] for s in stages)
    print(f"{bench.ENCODERS[args.modality]} on {encoder.device}, {n} items, batch {args.batch_size}, "
          f"{args.precision}, pin {args.pin}, CUDA graphs {args.cuda_graphs or 'default'}, "
          f"workers {args.workers or 'policy'}: "
          f"{total:.1f} s, {n / total:.0f}/s")
    print(", ".join(f"{s} {seconds[s]:.1f}" for s in stages) + f", other {other:.1f} s "
          f"({int(seconds['batches'])} batches)")
    print(f"handing batches over (not on the main thread on a GPU): mapping {seconds['mapping batches']:.1f} s, "
          f"pinning {seconds['pinning batches']:.1f} s")


if __name__ == "__main__":
    main()
