"""How long loading (validating) a catalogue takes: with no media check cache, with an empty one
(every file checked, the cache written), and warm (unchanged files only stat-ed); and whether the
image header checks go faster on several threads (they run on one: on 2 cores they did not).

    .venv/bin/python benchmarks/catalogue_load.py                      # data/large + 100k synthetic rows
    .venv/bin/python benchmarks/catalogue_load.py --synthetic 1000000 --catalogue ""

The synthetic catalogue is built in a temporary folder: N rows whose images are hard links to a
few small PNGs (copies where hard links are refused), in folders of 1,000. The OS page cache is
not dropped, so "cold" means no remembered verdicts, not files read from disk.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from recsys import media  # noqa: E402
from recsys.catalogue import Catalogue, load_catalogue, write_manifest  # noqa: E402
from recsys.threads import thread_count  # noqa: E402


def synthetic(folder: Path, n: int) -> Path:
    """A catalogue of ``n`` picture items made of hard links to 4 small PNGs."""
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
        try:
            os.link(sources[i % len(sources)], target)
        except OSError:
            target.write_bytes(sources[i % len(sources)].read_bytes())
        rows.append({"id": f"s{i}", "title": f"Item {i}", "category": f"c{i % 7}", "image": rel})
    write_manifest(folder, rows)
    return folder


def timed(catalogue: Path, cache_dir: Path | None) -> tuple[float, Catalogue]:
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


def measure(name: str, catalogue: Path) -> None:
    with tempfile.TemporaryDirectory() as cache:
        uncached, cat = timed(catalogue, None)
        cold, _ = timed(catalogue, Path(cache))
        warm, again = timed(catalogue, Path(cache))
        size = sum(f.stat().st_size for f in Path(cache).rglob("*.npz"))
    assert again.ids == cat.ids and [str(b) for b in again.bad_rows] == [str(b) for b in cat.bad_rows]
    print(
        f"{name}: {len(cat):,} items ({len(cat.bad_rows)} bad): no cache {uncached:.2f} s, "
        f"cold (checks every file, writes the cache) {cold:.2f} s, warm {warm:.2f} s; cache file {size / 1e6:.1f} MB",
        flush=True,
    )
    images = [item.image for item in cat if item.image is not None]
    counts = sorted({1, 2, thread_count("batch")})
    shown = ", ".join(f"{n} thread(s) {checks_alone(images, n):.2f} s" for n in counts)
    print(f"{name}: image header checks alone: {shown}", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--catalogue", default=str(ROOT / "data" / "large"), help="a real catalogue ('' to skip)")
    parser.add_argument("--synthetic", type=int, default=100_000, help="rows of the synthetic catalogue (0 to skip)")
    args = parser.parse_args()
    print(f"cores: {os.cpu_count()}, batch threads: {thread_count('batch')}, load average: {os.getloadavg()[0]:.1f}")
    if args.catalogue:
        measure(Path(args.catalogue).name, Path(args.catalogue))
    if args.synthetic:
        with tempfile.TemporaryDirectory() as tmp:
            start = time.perf_counter()
            folder = synthetic(Path(tmp), args.synthetic)
            print(f"synthetic catalogue built in {time.perf_counter() - start:.1f} s", flush=True)
            measure(f"synthetic-{args.synthetic}", folder)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
