"""How long loading (validating) a catalogue takes: with no media check cache, with an empty one
(every file checked, the cache written), and warm (unchanged files only stat-ed); whether the
image header checks go faster on several threads (they do not: past 20,000 files a load checks
them in worker processes instead, ``recsys.catalogue.PARALLEL_CHECKS_FROM``); and
the media files' content keys (what every start hashes before it looks in the feature cache):
hashing every file, then with remembered hashes (``catalogue_keys``) cold and warm, and planning an
encoding pass with them (``plan_features``: what the main process does before a pass's first batch).

    .venv/bin/python benchmarks/catalogue_load.py                      # data/large + 100k synthetic rows
    .venv/bin/python benchmarks/catalogue_load.py --synthetic 1000000 --catalogue ""
    .venv/bin/python benchmarks/catalogue_load.py --synthetic 100000 --distinct --catalogue ""
    .venv/bin/python benchmarks/catalogue_load.py --photos 5000 --synthetic 0 --catalogue ""
    .venv/bin/python benchmarks/catalogue_load.py --catalogue DIR --synthetic 0 --warm CACHE

``--warm CACHE`` times only loads that find every check remembered (a restart's load), the check
cache kept in CACHE, so that runs of this code and of another checkout can take turns at 1M items
without checking every file each time (the first load into an empty CACHE checks them).

The synthetic catalogue is built in a temporary folder: N rows whose images are hard links to a
few small PNGs (copies where hard links are refused; with ``--distinct`` copies with distinct trailing
bytes, so that every item has content of its own), in folders of 1,000. ``--photos N`` builds N
distinct JPEG photos of 1,200-2,400 px instead (copies of 16 with distinct trailing bytes: what
hashing costs depends on the bytes). The OS page cache is not dropped, so "cold" means nothing
remembered, not files read from disk, unless ``--drop-page-cache`` (Linux, as root) drops it
before each load that checks files.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from recsys import media  # noqa: E402
from recsys.catalogue import Catalogue, load_catalogue, write_manifest  # noqa: E402
from recsys.encoders import create_encoder  # noqa: E402
from recsys.encoding import plan_features  # noqa: E402
from recsys.encoding.cache import RACY_NS, catalogue_keys, content_keys  # noqa: E402
from recsys.pipeline import PipelineConfig  # noqa: E402
from recsys.threads import thread_count  # noqa: E402


def synthetic(folder: Path, n: int, distinct: bool = False) -> Path:
    """A catalogue of ``n`` picture items made of hard links to 4 small PNGs (with ``distinct``,
    copies of them with distinct trailing bytes, which PNG decoders ignore: n distinct contents)."""
    from PIL import Image, ImageDraw

    sources = []
    for k, colour in enumerate(["red", "green", "blue", "orange"]):
        img = Image.new("RGBA", (96, 96), (0, 0, 0, 0))
        ImageDraw.Draw(img).ellipse((8, 8, 88, 88), fill=colour)
        src = folder / f"source-{k}.png"
        img.save(src)
        sources.append(src)
    rows = []
    for i in range(n):
        rel = f"images/{i // 1000:04d}/{i}.png"
        target = folder / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        source = sources[i % len(sources)]
        if distinct:
            target.write_bytes(source.read_bytes() + i.to_bytes(8, "little"))
        else:
            try:
                os.link(source, target)
            except OSError:
                target.write_bytes(source.read_bytes())
        rows.append({"id": f"s{i}", "title": f"Item {i}", "category": f"c{i % 7}", "image": rel})
    write_manifest(folder, rows)
    return folder


def indexed_synthetic(work: Path, n: int, drawn_text: bool = False) -> tuple[Path, Path]:
    """(catalogue folder, cache folder) of :func:`synthetic`'s ``n`` items under ``work``, indexed by
    the product's CLI (kept there: a second call finds them made and indexed); prints how long.
    ``drawn_text``: the titles' embeddings are drawn (:func:`draw_text_features`), not encoded."""
    import subprocess

    catalogue, cache = work / f"catalogue-{n}", work / "cache"
    if not (catalogue / "catalogue.csv").is_file():
        catalogue.mkdir(parents=True, exist_ok=True)
        synthetic(catalogue, n)
    began = time.perf_counter()
    if drawn_text:
        drawn = draw_text_features(catalogue, cache)
        print(f"{drawn:,} text embeddings drawn in {time.perf_counter() - began:.1f} s", flush=True)
        began = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "recsys", "index", "--catalogue", str(catalogue), "--cache-dir", str(cache)],
        check=True, cwd=ROOT, capture_output=True,
    )  # fmt: skip
    print(f"{n:,} items, indexed (or found indexed) in {time.perf_counter() - began:.1f} s")
    return catalogue, cache


def draw_text_features(catalogue: Path, cache: Path, chunk: int = 50_000) -> int:
    """Put drawn vectors (clustered unit vectors of the text encoder's width) into the feature cache
    for every title it lacks, as if encoded: a start or a store build costs the same whatever the
    vectors hold, and encoding 1M titles takes about an hour on 2 cores. Returns how many."""
    from recsys.encoders.base import output_width
    from recsys.encoding import feature_id
    from recsys.encoding.cache import FeatureStore
    from recsys.store.synthetic import synthetic_collection

    config = PipelineConfig(cache_dir=str(cache))
    encoder = create_encoder(config.text_encoder, device="cpu")  # its network is not built: only its id and width
    plan = plan_features(load_catalogue(catalogue, cache_dir=cache), "text", encoder, cache_dir=cache)
    keys = [job.key for job in plan.todo]
    width = output_width(encoder, "embedding")
    store = FeatureStore(cache, feature_id(encoder, "embedding"), width)
    drawn = synthetic_collection(len(keys), {"text": width}, seed=3, chunk_size=chunk)
    for start, part in zip(range(0, len(keys), chunk), drawn, strict=False):
        store.append(keys[start : start + chunk], part.vectors["text"])
    return len(keys)


def photos(folder: Path, n: int) -> Path:
    """A catalogue of ``n`` distinct JPEG photos: 16 made by ``benchmarks/encoding.py``, then copies
    of them with distinct trailing bytes (which JPEG decoders ignore)."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from encoding import photo_catalogue

    (folder / "made").mkdir()
    made = photo_catalogue(16, folder / "made")
    rows = []
    for i in range(n):
        rel = f"photos/{i // 1000:04d}/{i}.jpg"
        target = folder / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(made.items[i % 16].image.read_bytes() + i.to_bytes(8, "little"))
        rows.append({"id": f"p{i}", "title": f"Photo {i}", "category": f"c{i % 7}", "image": rel})
    write_manifest(folder, rows)
    return folder


def keys_timing(name: str, cat: Catalogue, cache_dir: Path) -> None:
    """Seconds to key every media file: hashing each, then remembering hashes (first pass, warm)."""
    time.sleep(RACY_NS / 1e9)  # files written just now are not trusted yet (see recsys.stamps)
    for modality in ("image", "audio"):
        if not cat.has_modality(modality).any():
            continue
        start = time.perf_counter()
        plain = content_keys(cat.items, modality)
        hashing = time.perf_counter() - start
        runs = []
        for _ in range(2):
            start = time.perf_counter()
            keys = catalogue_keys(cat.items, modality, cat.root, cache_dir=cache_dir, stamps=cat.file_stamps(modality))
            runs.append(time.perf_counter() - start)
            assert keys == plain
        encoder = create_encoder(PipelineConfig().encoder_name(modality))  # planning builds no network
        start = time.perf_counter()
        plan = plan_features(cat, modality, encoder, encoder.outputs, cache_dir=cache_dir)
        planned = time.perf_counter() - start
        print(
            f"{name}: {modality} content keys: hashing every file {hashing:.2f} s; remembered hashes: "
            f"first pass {runs[0]:.2f} s, warm {runs[1]:.2f} s; planning a pass of {encoder.encoder_id} with them "
            f"(nothing encoded yet: {len(plan.todo):,} items to encode) {planned:.2f} s",
            flush=True,
        )


#: Warm loads timed, the fastest reported: a single one varied by +-15% on a shared 2-core host.
WARM_RUNS = 3


def drop_page_cache() -> None:
    """Write back and drop the OS page cache (Linux, as root), so files are read from the disk."""
    os.sync()
    try:
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
    except OSError as exc:
        raise SystemExit(f"--drop-page-cache needs Linux and root: {exc}") from exc


def timed(catalogue: Path, cache_dir: Path | None, from_disk: bool = False) -> tuple[float, Catalogue]:
    """Seconds to load ``catalogue`` (with ``from_disk``, its files out of the OS page cache first)."""
    if from_disk:
        drop_page_cache()
    start = time.perf_counter()
    cat = load_catalogue(catalogue, cache_dir=cache_dir)
    return time.perf_counter() - start, cat


def checks_alone(images: list[Path], threads: int) -> float:
    """Seconds to check every image header (what a cold load spends most of its time on) on ``threads``."""
    start = time.perf_counter()
    if threads == 1:
        for path in images:
            media.check_image_file(path)
    else:
        with ThreadPoolExecutor(max_workers=threads) as pool:
            list(pool.map(media.check_image_file, images, chunksize=64))
    return time.perf_counter() - start


def measure(name: str, catalogue: Path, from_disk: bool = False) -> None:
    with tempfile.TemporaryDirectory() as cache:
        uncached, cat = timed(catalogue, None, from_disk)
        cold, _ = timed(catalogue, Path(cache), from_disk)
        warm, again = min((timed(catalogue, Path(cache)) for _ in range(WARM_RUNS)), key=lambda run: run[0])
        size = sum(f.stat().st_size for f in Path(cache).rglob("*.npz"))
    assert again.ids == cat.ids and [str(b) for b in again.bad_rows] == [str(b) for b in cat.bad_rows]
    print(
        f"{name}: {len(cat):,} items ({len(cat.bad_rows)} bad): no cache {uncached:.2f} s, "
        f"cold (checks every file, writes the cache) {cold:.2f} s, warm {warm:.2f} s (best of {WARM_RUNS}); "
        f"cache file {size / 1e6:.1f} MB",
        flush=True,
    )
    with tempfile.TemporaryDirectory() as cache:
        keys_timing(name, cat, Path(cache))
    images = [item.image for item in cat if item.image is not None]
    counts = sorted({1, 2, thread_count("batch")})
    shown = ", ".join(f"{n} thread(s) {checks_alone(images, n):.2f} s" for n in counts)
    print(f"{name}: image header checks alone: {shown}", flush=True)


def measure_warm(name: str, catalogue: Path, cache: Path) -> None:
    """Loads with the check cache in ``cache``: the first (it fills an empty cache) and the best warm one."""
    from process_memory import peak_rss_gb

    first, cat = timed(catalogue, cache)
    peak = peak_rss_gb()  # GB, as the other figures: this process's first load
    del cat
    warm, _ = min((timed(catalogue, cache) for _ in range(WARM_RUNS)), key=lambda run: run[0])
    print(
        f"{name}: first load {first:.2f} s (peak RSS {peak:.2f} GB), warm {warm:.2f} s (best of {WARM_RUNS})",
        flush=True,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--catalogue", default=str(ROOT / "data" / "large"), help="a real catalogue ('' to skip)")
    parser.add_argument("--synthetic", type=int, default=100_000, help="rows of the synthetic catalogue (0 to skip)")
    parser.add_argument("--photos", type=int, default=0, help="distinct JPEG photos of a photo catalogue (0 to skip)")
    parser.add_argument("--distinct", action="store_true", help="synthetic pictures of distinct contents, not links")
    parser.add_argument(
        "--drop-page-cache", action="store_true", help="loads that check files read them from disk (Linux, root)"
    )
    parser.add_argument("--warm", metavar="CACHE", help="only loads with the check cache kept in CACHE (see above)")
    args = parser.parse_args()
    print(f"cores: {os.cpu_count()}, batch threads: {thread_count('batch')}, load average: {os.getloadavg()[0]:.1f}")
    if args.catalogue and args.warm:
        measure_warm(Path(args.catalogue).name, Path(args.catalogue), Path(args.warm))
    elif args.catalogue:
        measure(Path(args.catalogue).name, Path(args.catalogue), args.drop_page_cache)
    builders = (
        ("synthetic", args.synthetic, partial(synthetic, distinct=args.distinct)),
        ("photos", args.photos, photos),
    )
    for kind, count, build in builders:
        if count:
            with tempfile.TemporaryDirectory() as tmp:
                start = time.perf_counter()
                folder = build(Path(tmp), count)
                print(f"{kind} catalogue built in {time.perf_counter() - start:.1f} s", flush=True)
                measure(f"{kind}-{count}", folder, args.drop_page_cache)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
