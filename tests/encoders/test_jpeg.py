"""JPEGs decoded where the model runs (recsys.encoders.jpeg), exercised on the CPU.

torchvision's ``decode_jpeg`` takes the same call on the CPU as on a GPU (nvJPEG), so the whole path
(worker reads bytes, collate keeps them apart, the main process decodes, orients, pads and resizes)
runs here with ``device="cpu"``; only the decoder's speed needs a GPU.
"""

from __future__ import annotations

import io
import logging

import numpy as np
import pytest
from PIL import Image, ImageOps

from recsys import media
from recsys.encoders.efficientnet import SquareResize
from recsys.encoders.jpeg import DeviceJpegResize, decoded_pictures, oriented
from recsys.errors import InputError


def _photo(size=(640, 400), orientation: int | None = None, **save) -> bytes:
    """A real photograph's crop (not symmetric, so every orientation differs), as a JPEG."""
    from sklearn.datasets import load_sample_image

    img = Image.fromarray(load_sample_image("flower.jpg")).resize(size, Image.Resampling.BICUBIC)
    buf = io.BytesIO()
    if orientation is not None:
        exif = Image.Exif()
        exif[0x0112] = orientation
        save["exif"] = exif
    img.save(buf, "JPEG", quality=92, **save)
    return buf.getvalue()


@pytest.mark.parametrize("orientation", range(1, 9))
def test_each_exif_orientation_matches_pil(orientation, tmp_path):
    path = tmp_path / "p.jpg"
    path.write_bytes(_photo(orientation=orientation))
    jpeg = media.read_jpeg(path)
    assert jpeg is not None and jpeg.orientation == orientation and (jpeg.width, jpeg.height) == (640, 400)
    ((_, picture, upright),) = list(decoded_pictures([_tensor(jpeg.data)], [[640, 400]], "cpu"))
    assert not upright
    got = oriented(picture, orientation).permute(1, 2, 0).numpy()
    want = np.asarray(ImageOps.exif_transpose(Image.open(path).convert("RGB")))
    assert got.shape == want.shape
    assert np.abs(got.astype(int) - want.astype(int)).mean() < 1.0  # two libjpeg builds: rounding only


def test_only_baseline_rgb_or_grey_jpegs_travel_as_bytes(tmp_path):
    cases = {
        "baseline.jpg": (_photo(), True),
        "grey.jpg": (_grey_jpeg(), True),
        "progressive.jpg": (_photo(progressive=True), False),
        "cmyk.jpg": (_cmyk_jpeg(), False),
        "picture.png": (_png(), False),
    }
    for name, (data, travels) in cases.items():
        (tmp_path / name).write_bytes(data)
        assert (media.read_jpeg(tmp_path / name) is not None) == travels, name
    with pytest.raises(InputError, match="limit"):
        media.read_jpeg(tmp_path / "baseline.jpg", max_bytes=100)


def test_a_mixed_batch_finishes_as_the_host_path_would(tmp_path):
    """Decoded pictures and JPEG bytes collate together; finished on the device, every slot is within
    resampling noise of the host path's full-size decode (the host decodes big JPEGs at reduced scale)."""
    pre, host = DeviceJpegResize(), SquareResize()
    (tmp_path / "a.jpg").write_bytes(_photo((1500, 900), orientation=6))
    (tmp_path / "b.png").write_bytes(_png())
    (tmp_path / "c.jpg").write_bytes(_photo((300, 500)))
    items = [pre.source_input(str(tmp_path / "a.jpg")), host(media.load_image(tmp_path / "b.png")),
             pre.source_input(str(tmp_path / "c.jpg"))]  # fmt: skip
    inputs = pre.collate(items)
    assert isinstance(inputs, tuple) and inputs[1].tolist() == [0, 2]
    pixels, failed = pre.finish_batch(inputs, "cpu")
    assert failed == {} and tuple(pixels.shape) == (3, 3, 224, 224)
    for slot, name in enumerate(["a.jpg", "b.png", "c.jpg"]):
        want = host(media.load_image(tmp_path / name, min_side=media.MAX_IMAGE_SIDE))
        assert np.abs(pixels[slot].numpy().astype(int) - want.astype(int)).mean() < 1.5, name
    assert isinstance(pre.collate([items[1]]), np.ndarray)  # no JPEG: a plain stack, as SquareResize's


def test_a_jpeg_no_decoder_can_read_is_that_items_failure(tmp_path):
    good = _photo()
    header_only = good[: good.index(b"\xff\xda")]  # up to the scan: the header parses, no pixels follow
    (tmp_path / "good.jpg").write_bytes(good)
    (tmp_path / "broken.jpg").write_bytes(header_only)
    pre = DeviceJpegResize()
    items = [pre.source_input(str(tmp_path / n)) for n in ("broken.jpg", "good.jpg")]
    assert all(isinstance(i, media.JpegFile) for i in items)
    pixels, failed = pre.finish_batch(pre.collate(items), "cpu")
    assert list(failed) == [0] and "JPEG" in failed[0]
    assert pixels[1].float().mean() > 0  # the good one is filled in


@pytest.mark.parametrize("workers", [0, 1])
def test_the_pipeline_reports_a_broken_jpeg_and_encodes_the_rest(image_encoder, tmp_path, caplog, workers):
    """catalogue_features with the device preprocessor (here the CPU): vectors as the host path's,
    a JPEG that no decoder reads is reported like a file a worker could not decode."""
    from recsys.catalogue import Catalogue, Item
    from recsys.encoding import BatchOptions, catalogue_features

    good = _photo((1200, 800), orientation=3)
    (tmp_path / "p0.jpg").write_bytes(good)
    (tmp_path / "p1.png").write_bytes(_png())
    (tmp_path / "p2.jpg").write_bytes(good[: good.index(b"\xff\xda")])
    names = ["p0.jpg", "p1.png", "p2.jpg"]
    items = [Item(f"p{i}", f"item {i}", "", "", tmp_path / n, None) for i, n in enumerate(names)]
    catalogue = Catalogue(tmp_path, items, [])
    options = BatchOptions(batch_size=2, workers=workers)  # 3 items > one batch: worker processes run
    host = catalogue_features(catalogue, "image", image_encoder, cache_dir=tmp_path / "host", options=options)
    original = image_encoder.preprocessor
    image_encoder.preprocessor = DeviceJpegResize()
    try:
        with caplog.at_level(logging.WARNING, logger="recsys.encoding"):
            device = catalogue_features(catalogue, "image", image_encoder, cache_dir=tmp_path / "dev", options=options)
    finally:
        image_encoder.preprocessor = original
    assert device["embedding"].present.tolist() == host["embedding"].present.tolist() == [True, True, False]
    cosines = np.sum(device["embedding"].vectors[:2] * host["embedding"].vectors[:2], axis=1)
    assert (cosines > 0.995).all(), cosines
    assert "p2: " in caplog.text


def _tensor(data: np.ndarray):
    import torch

    return torch.from_numpy(np.array(data))


def _png() -> bytes:
    buf = io.BytesIO()
    Image.new("RGBA", (120, 80), (200, 30, 30, 128)).save(buf, "PNG")
    return buf.getvalue()


def _grey_jpeg() -> bytes:
    buf = io.BytesIO()
    Image.open(io.BytesIO(_photo())).convert("L").save(buf, "JPEG")
    return buf.getvalue()


def _cmyk_jpeg() -> bytes:
    buf = io.BytesIO()
    Image.open(io.BytesIO(_photo())).convert("CMYK").save(buf, "JPEG")
    return buf.getvalue()


def test_big_batches_are_decoded_in_calls_under_the_pixel_budget(monkeypatch):
    from recsys.encoders import jpeg as module

    calls = []
    real = module._decode
    monkeypatch.setattr(module, "_decode", lambda files, device: calls.append(len(files)) or real(files, device))
    monkeypatch.setattr(module, "MAX_DECODE_PIXELS", 2 * 640 * 400)
    files = [_tensor(np.frombuffer(_photo(orientation=k % 8 + 1), np.uint8)) for k in range(5)]
    got = list(decoded_pictures(files, [[640, 400]] * 5, "cpu"))
    assert calls == [2, 2, 1] and [k for k, _, _ in got] == [0, 1, 2, 3, 4]


def test_a_cuda_decode_waits_for_its_stream_first(monkeypatch):
    """nvJPEG's hardware decoder writes without waiting for queued work (it overwrote blocks that work
    still read): the stream is drained before every device decode."""
    import torch
    import torchvision.io

    from recsys.encoders import jpeg

    calls: list[str] = []

    class Stream:
        def synchronize(self) -> None:
            calls.append("synchronize")

    monkeypatch.setattr(torch.cuda, "current_stream", lambda device=None: Stream())
    monkeypatch.setattr(torchvision.io, "decode_jpeg", lambda files, **kw: calls.append("decode") or files)
    jpeg._decode(["a", "b"], "cuda:0")
    jpeg._decode(["c"], "cpu")
    assert calls == ["synchronize", "decode", "decode"]
