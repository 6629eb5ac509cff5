"""Catalogue encoding speed per offline encoder: raw forward vs preprocessing vs the whole pipeline.

For each encoder, on the first N distinct items of a catalogue (default: the demo catalogue),
prints items/s of

- (a) the raw model forward (``forward_batch``) on batches preprocessed beforehand,
- (b) decoding alone and preprocessing alone (one process; items one at a time, then collated; the
  best of three passes),
- (c) the full indexing pipeline (hash -> decode + preprocess in worker processes -> forward ->
  cache shards) into an empty cache, as ``python -m recsys index`` runs it,
- (d) with ``--ray auto|ADDRESS``, the same pass on a Ray cluster (``python -m recsys index --ray``),
  into another empty cache; connecting to the cluster is timed apart, the actors' start and model
  load are part of the pass,

and the ratio (c)/(a): how close indexing gets to the model's own speed. Same run, same device.
Beside (c), ``after 1st/s`` is the same pass counted from its first finished batch on: without
hashing the media (all of it done before any batch, a per-item cost that ``benchmarks/catalogue_load.py``
times), starting the worker processes and filling the first batch, which a catalogue of millions of
items spreads thin; it says where the rest of the whole-pass rate went, not what a pass costs.
Where the encoder computes part of its preprocessing on the device (aisfx's log-mels on a GPU),
that part is in (a) and not in (b).

A GPU runs the models at thousands of items/s, so a few hundred items measure mostly start-up:
``--copies K`` encodes each distinct item K times as K distinct contents (media files get K
trailing-byte variants, which decode to the same pixels or samples at the same cost; texts get a
numbered suffix), so the pipeline sees ``K * n`` items as a large catalogue would show them.
The raw forward is timed on the first ``--raw-n`` distinct items, repeated for at least
``--raw-seconds``: its rate does not depend on which items it sees.

    .venv/bin/python benchmarks/encoding.py [--n 256] [--copies K] [--device cpu|cuda] [--workers W]
        [--threads T] [--batch-size B] [--precision fp32|bf16|fp16] [--audio-encoder aisfx|aisfx+yamnet]
        [--spectrogram auto|host|device] [--cuda-graphs on|off] [--jpeg-on-device on|off] [--ray auto]
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from recsys.catalogue import Catalogue, load_catalogue
from recsys.encoders.base import batches
from recsys.encoding import BatchOptions, catalogue_features, plan_features
from recsys.encoding.cache import content_key, decode
from recsys.threads import thread_count, worker_processes

ROOT = Path(__file__).resolve().parents[1]
PASSES = 3  # decoding and preprocessing are timed as the best of this many passes
T = TypeVar("T")

ENCODERS = {"text": "minilm", "image": "efficientnet-lite0", "audio": "aisfx"}


def distinct_items(catalogue: Catalogue, modality: str, n: int) -> Catalogue:
    """The first ``n`` items whose content differs (the pipeline encodes each content once)."""
    seen: set[str] = set()
    items = []
    for item in catalogue.items:
        key = content_key(item, modality)
        if key is not None and key not in seen:
            seen.add(key)
            items.append(item)
        if len(items) == n:
            break
    return Catalogue(catalogue.root, items, [])


def photo_catalogue(n: int, work: Path, seed: int = 0) -> Catalogue:
    """``n`` JPEG product-photo stand-ins: crops of scikit-learn's two sample photographs (real
    photographic content, so real JPEG entropy) scaled to 1,200-2,400 px on the long side, quality 90.
    Picture catalogues are mostly such photos; the demo's clip-art is small and decodes in ~1 ms."""
    from PIL import Image
    from sklearn.datasets import load_sample_image

    from recsys.catalogue import Item

    rng = np.random.default_rng(seed)
    photos = [Image.fromarray(load_sample_image(name)) for name in ("china.jpg", "flower.jpg")]
    items = []
    for i in range(n):
        photo = photos[i % 2]
        w, h = photo.size
        cw, ch = int(w * rng.uniform(0.6, 1.0)), int(h * rng.uniform(0.6, 1.0))
        x, y = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
        long_side = int(rng.integers(1200, 2401))
        size = (long_side, round(long_side * ch / cw)) if cw >= ch else (round(long_side * cw / ch), long_side)
        path = work / f"photo-{i}.jpg"
        photo.crop((x, y, x + cw, y + ch)).resize(size, Image.Resampling.BICUBIC).save(path, quality=90)
        items.append(Item(f"photo-{i}", f"photo {i}", "", "photos", path, None))
    return Catalogue(work, items, [])


def copies(catalogue: Catalogue, modality: str, k: int, work: Path) -> Catalogue:
    """Each item ``k`` times with distinct content: media copies with trailing bytes (ignored by the
    decoders), texts with a numbered suffix. ``k == 1`` returns the catalogue as it is."""
    if k == 1:
        return catalogue
    items = []
    for i, item in enumerate(catalogue.items):
        media_file = getattr(item, modality) if modality != "text" else None
        data = media_file.read_bytes() if media_file is not None else b""
        for j in range(k):
            path = None
            if media_file is not None:
                path = work / f"{i}-{j}{media_file.suffix}"
                path.write_bytes(data + f"recsys-benchmark-copy-{j}".encode())
            changes = {"id": f"{item.id}#{j}", modality: path} if path else {"id": f"{item.id}#{j}"}
            if modality == "text":
                changes["description"] = f"{item.description} ({j})"
            items.append(dataclasses.replace(item, **changes))
    return Catalogue(catalogue.root, items, [])


def autocast(device: str, precision: str) -> contextlib.AbstractContextManager:
    """The raw forward at the precision the pipeline runs (autocast applies on CUDA only)."""
    import torch

    if precision == "fp32" or not device.startswith("cuda"):
        return contextlib.nullcontext()
    return torch.autocast("cuda", dtype=torch.bfloat16 if precision == "bf16" else torch.float16)


def best_of(passes: int, work: Callable[[], T]) -> tuple[float, T]:
    """Seconds of the fastest of ``passes`` runs of ``work`` (the first pays lazy imports, tables and
    fresh memory: start-up, not a per-item cost), and its result."""
    best, result = float("inf"), None
    for _ in range(passes):
        start = time.perf_counter()
        result = work()
        best = min(best, time.perf_counter() - start)
    return best, result  # type: ignore[return-value]


def rate(n: int, seconds: float) -> float:
    return n / seconds if seconds > 0 else float("inf")


class FirstBatch:
    """Progress callback: when the pass's first batch was written, and how many items it held."""

    def __init__(self) -> None:
        self.at, self.done = 0.0, 0

    def __call__(self, done: int, total: int) -> None:
        if done and not self.done:
            self.at, self.done = time.perf_counter(), done


def measure(modality: str, name: str, catalogue: Catalogue, args: argparse.Namespace) -> dict[str, float]:
    import torch

    from recsys.encoders import create_encoder

    options = {"cuda_graphs": args.cuda_graphs == "on"} if args.cuda_graphs and modality == "image" else {}
    if args.jpeg_on_device == "on" and modality == "image":
        options["jpeg_on_device"] = True
    encoder = create_encoder(name, device=args.device, **options)
    if args.spectrogram != "auto":
        from recsys.encoders.sfx import AisfxEncoder

        if name == "aisfx":
            encoder = AisfxEncoder(device=args.device, spectrogram=args.spectrogram)
        elif name == "aisfx+yamnet":
            from recsys.encoders.tagged import TaggedEncoder

            embedder = AisfxEncoder(device=args.device, spectrogram=args.spectrogram)
            encoder = TaggedEncoder(embedder, create_encoder("yamnet", device=args.device))
    subset = distinct_items(catalogue, modality, args.n)
    n = len(subset.items)
    threads = args.threads
    torch.set_num_threads(threads)
    pre = encoder.preprocessor

    # spread over the subset: the first items need not be typical (the demo's first texts are shorter
    # than its average, which put MiniLM's pipeline at 0.74x a raw forward timed on them alone)
    raw = subset.items[:: max(1, n // max(1, args.raw_n))][: args.raw_n]
    side = getattr(pre, "min_image_side", None)  # as the pipeline's workers decode
    decode_s, decoded = best_of(PASSES, lambda: [decode(item, modality, min_image_side=side) for item in raw])

    def preprocess() -> list[Any]:  # per item, then per batch (a batch's log-mels are computed as it is collated)
        return [pre.collate(list(chunk)) for chunk in batches([pre(x) for x in decoded], args.batch_size)]

    preprocess_s, collated = best_of(PASSES, preprocess)

    encoder.forward_batch(collated[0])  # warm-up (lazy inits, allocator)
    if str(encoder.device).startswith("cuda"):
        torch.cuda.synchronize()
    forwarded = 0
    start = time.perf_counter()
    with autocast(str(encoder.device), args.precision):
        while forwarded == 0 or time.perf_counter() - start < args.raw_seconds:
            for batch in collated:
                encoder.forward_batch(batch)  # returns numpy: the device work is finished when it returns
            forwarded += len(raw)
    forward_s = time.perf_counter() - start

    pin = {"auto": None, "on": True, "off": False}[args.pin]
    options = BatchOptions(
        batch_size=args.batch_size, workers=args.workers, threads=threads, precision=args.precision, pin_memory=pin
    )
    with tempfile.TemporaryDirectory() as work:
        many = copies(subset, modality, args.copies, Path(work))
        n = len(many.items)
        first = FirstBatch()
        start = time.perf_counter()
        catalogue_features(
            many, modality, encoder, encoder.outputs, cache_dir=Path(work) / "cache", options=options, progress=first
        )
        end = time.perf_counter()
        rates = {
            "n": n,
            "forward": rate(forwarded, forward_s),
            "decode": rate(len(raw), decode_s),
            "preprocess": rate(len(raw), preprocess_s),
            "pipeline": rate(n, end - start),
            "after first": rate(n - first.done, end - first.at) if first.done < n else float("nan"),
        }
        if args.ray:
            from recsys.encoding.distributed import EncoderRecipe, run_plan_on_ray

            start = time.perf_counter()
            plan = plan_features(
                many, modality, encoder, encoder.outputs, cache_dir=Path(work) / "ray-cache", precision=args.precision
            )
            run_plan_on_ray(plan, EncoderRecipe(name, str(encoder.device)), options, actors=args.ray_actors)
            rates["ray"] = rate(n, time.perf_counter() - start)
    return rates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--catalogue", default=str(ROOT / "data" / "tuxpaint"))
    parser.add_argument("--n", type=int, default=256, help="distinct items per encoder")
    parser.add_argument("--copies", type=int, default=1, help="distinct-content copies of each item (GPU runs)")
    parser.add_argument("--raw-n", type=int, default=256, help="items the raw forward is timed on")
    parser.add_argument("--raw-seconds", type=float, default=2.0, help="repeat the raw forward for at least this long")
    parser.add_argument("--device", default=None, help="torch device (default: cuda if available, else cpu)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--workers", type=int, default=None, help="decode workers (default: the thread policy)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: the thread policy)")
    parser.add_argument("--precision", default="fp32", choices=["fp32", "bf16", "fp16"], help="autocast on CUDA")
    parser.add_argument("--pin", default="auto", choices=["auto", "on", "off"], help="pinned batches on CUDA")
    parser.add_argument("--modalities", default="text,image,audio")
    parser.add_argument(
        "--audio-encoder",
        default=ENCODERS["audio"],
        help="registry name of the audio encoder (e.g. aisfx+yamnet, the product's default)",
    )
    parser.add_argument(
        "--spectrogram",
        default="auto",
        choices=["auto", "host", "device"],
        help="where aisfx computes log-mels: in the decode workers (host) or on the model's device (auto: on a GPU)",
    )
    parser.add_argument(
        "--photos",
        type=int,
        default=0,
        help="time the image encoder on this many JPEG photos of 1,200-2,400 px instead of the catalogue's pictures",
    )
    parser.add_argument(
        "--cuda-graphs",
        default=None,
        choices=["on", "off"],
        help="replay the image encoder's forward as captured CUDA graphs (raw forward and pipeline alike; "
        "default: the encoder's own, on for EfficientNet-Lite0 on CUDA)",
    )
    parser.add_argument(
        "--jpeg-on-device",
        default="off",
        choices=["on", "off"],
        help="decode the image encoder's JPEGs on the GPU (recsys.encoders.jpeg; CUDA only)",
    )
    parser.add_argument("--ray", default=None, help="also encode on this Ray cluster: auto or an address")
    parser.add_argument("--ray-actors", type=int, default=None, help="model actors on Ray (default: from the cluster)")
    args = parser.parse_args()
    if args.ray and args.spectrogram != "auto":
        parser.error("--spectrogram applies to the local pipeline only: Ray's actors build aisfx with its default")

    from recsys.device import pick_device

    if args.photos and args.modalities != "image":
        parser.error("--photos applies to --modalities image")
    args.device = pick_device(args.device)
    workers = worker_processes(args.device) if args.workers is None else args.workers
    args.threads = args.threads or thread_count("batch", workers)  # the pipeline's own policy
    source = f"{args.photos} JPEG photos of 1,200-2,400 px" if args.photos else args.catalogue
    print(
        f"catalogue {source}, device {args.device}, {os.cpu_count()} cores, batch {args.batch_size}, "
        f"{workers} decode worker(s), {args.threads} torch thread(s), {args.precision}, pin {args.pin}, "
        f"CUDA graphs {args.cuda_graphs or 'default'}, JPEGs decoded on the device {args.jpeg_on_device}"
    )
    with contextlib.ExitStack() as stack:
        if args.photos:
            photos = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="photos-")))
            catalogue = photo_catalogue(args.photos, photos)
        else:
            catalogue = load_catalogue(args.catalogue)
        if args.ray:
            from recsys.encoding.distributed import ray_cluster

            start = time.perf_counter()
            stack.enter_context(ray_cluster(args.ray))
            print(f"connected to Ray ({args.ray}) in {time.perf_counter() - start:.1f} s")
        ray_header = f" {'ray/s':>7}" if args.ray else ""
        print(
            f"{'encoder':<20} {'items':>5} {'forward/s':>10} {'decode/s':>9} {'prep/s':>8} {'pipeline/s':>11} "
            f"ratio {'after 1st/s':>11} ratio{ray_header}"
        )
        for modality in args.modalities.split(","):
            name = args.audio_encoder if modality == "audio" else ENCODERS[modality]
            r = measure(modality, name, catalogue, args)
            ray_rate = f" {r['ray']:>7.1f}" if args.ray else ""
            print(
                f"{name:<20} {r['n']:>5} {r['forward']:>10.1f} {r['decode']:>9.1f} {r['preprocess']:>8.1f} "
                f"{r['pipeline']:>11.1f} {r['pipeline'] / r['forward']:>5.2f} {r['after first']:>11.1f} "
                f"{r['after first'] / r['forward']:>5.2f}{ray_rate}",
                flush=True,
            )


if __name__ == "__main__":
    main()
