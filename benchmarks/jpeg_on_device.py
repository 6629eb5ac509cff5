"""Do JPEGs decoded on the device give the vectors the workers' decoding gives? (``jpeg_on_device``)

Indexes ``--photos`` JPEG product-photo stand-ins (``benchmarks/encoding.py``'s, 1,200-2,400 px) plus
one JPEG cut off before its scan twice into empty caches, once decoded by the workers and once with
``create_encoder("efficientnet-lite0", jpeg_on_device=True)``, and prints how many items got a vector
each way and the cosines between the two vectors of each photo. The workers decode a big JPEG at a
reduced DCT scale, so the two differ a little (cosine ~0.999); a photo well below that got other
pixels. On a GPU the device path is nvJPEG: on an H200 this printed a mean of 0.962 and a worst of
0.127 until each decode waited for its stream (``recsys.encoders.jpeg``), 0.9992 and 0.990 after.
Off CUDA ``jpeg_on_device`` is ignored: both passes decode in the workers (cosine 1).

    .venv/bin/python benchmarks/jpeg_on_device.py [--photos 300] [--device cuda] [--batch-size 128]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from encoding import photo_catalogue  # noqa: E402  # the same photos as benchmarks/encoding.py --photos

from recsys.catalogue import Catalogue, Item  # noqa: E402
from recsys.device import pick_device  # noqa: E402
from recsys.encoders import create_encoder  # noqa: E402
from recsys.encoding import BatchOptions, catalogue_features  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--photos", type=int, default=300)
    parser.add_argument("--device", default=None, help="torch device (default: cuda if available, else cpu)")
    parser.add_argument("--batch-size", type=int, default=128)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="jpeg-on-device-") as folder:
        compare(Path(folder), pick_device(args.device), args.photos, args.batch_size)


def compare(work: Path, device: str, n: int, batch_size: int) -> None:
    photos = photo_catalogue(n, work)
    whole = photos.items[0].image.read_bytes()
    (work / "cut.jpg").write_bytes(whole[: whole.index(b"\xff\xda")])  # no scan: no pixels at all
    items = [*photos.items, Item("cut", "cut", "", "", work / "cut.jpg", None)]
    catalogue = Catalogue(work, items, [])
    vectors = {}
    for on_device in (False, True):
        encoder = create_encoder("efficientnet-lite0", device=device, jpeg_on_device=on_device)
        vectors[on_device] = catalogue_features(
            catalogue,
            "image",
            encoder,
            ("embedding",),
            cache_dir=work / f"cache-{on_device}",
            options=BatchOptions(batch_size=batch_size),
        )["embedding"]
    host, dev = vectors[False], vectors[True]
    print(f"{len(items)} items on {device}: a vector for {int(host.present.sum())} decoded by the workers, "
          f"{int(dev.present.sum())} with jpeg_on_device")  # fmt: skip
    both = host.present & dev.present
    cosines = np.sum(host.vectors[both] * dev.vectors[both], axis=1)
    print(f"cosine of the two vectors of each photo: mean {cosines.mean():.5f}, worst {cosines.min():.5f}, "
          f"below 0.99: {int((cosines < 0.99).sum())} of {len(cosines)}")  # fmt: skip


if __name__ == "__main__":
    main()
