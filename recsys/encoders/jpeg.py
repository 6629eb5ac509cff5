"""JPEG pictures decoded where the model runs (nvJPEG through torchvision) instead of in the workers.

Why: on an H100 host indexing product photos (1,200-2,400 px JPEGs), 15 decode workers delivered
~550 photos/s against a model at ~8,900 images/s (0.06 of the raw forward), while nvJPEG decoded
the same photos at ~3,700/s in batches of 256 (docs/ENCODING.md). With :class:`DeviceJpegResize` a
worker only reads a baseline RGB or grey JPEG and checks its header (:func:`recsys.media.read_jpeg`);
the main process decodes the batch's JPEGs on the device, applies their EXIF orientation, pads them
to a square on white and resizes them as :class:`recsys.encoders.efficientnet.SquareResize` does
(antialiased bicubic), from the full-size picture. Every other picture is decoded by the worker as
before. A JPEG the device cannot decode is decoded on the CPU instead, and one that fails there too
is reported as that item's failure. Opt-in: on an H200 it indexed photos at 1,162-1,268/s, 0.13
of the raw forward, against 0.06 decoded by the workers (docs/ENCODING.md).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from recsys import media
from recsys.encoders.efficientnet import SquareResize
from recsys.errors import InputError

#: Pixels decoded in one call (the batch is split into calls of at most this many): a full-size
#: 4,000 x 3,000 photo is 36 MB of RGB, so a batch of 256 such photos is split rather than asking the
#: device for 9 GB at once.
MAX_DECODE_PIXELS = 400_000_000


class DeviceJpegResize(SquareResize):
    """:class:`SquareResize` whose JPEGs travel as bytes and are decoded on the model's device.

    ``source_input`` (in the worker) gives a :class:`recsys.media.JpegFile` for a JPEG the device can
    decode, else None; ``collate`` keeps those apart from the decoded pictures; ``finish_batch`` (in the
    main process, once per batch) decodes them on ``device`` and returns the whole batch as
    ``(n, 3, size, size)`` uint8 pixels there, with the positions that could not be read.
    """

    def host_only(self) -> SquareResize:
        """The same preprocessing with every picture decoded on the host (where no device finishes it)."""
        return SquareResize(self.size)

    def source_input(self, source: str) -> media.JpegFile | None:
        return media.read_jpeg(source)

    def collate(self, items: list[Any]) -> Any:
        jpegs = [i for i, item in enumerate(items) if isinstance(item, media.JpegFile)]
        if not jpegs:
            return np.stack(items)
        pixels = np.zeros((len(items), 3, self.size, self.size), dtype=np.uint8)
        for i, item in enumerate(items):
            if not isinstance(item, media.JpegFile):
                pixels[i] = item
        files = [items[i] for i in jpegs]
        offsets = np.cumsum([0, *(len(f.data) for f in files)])
        return (
            pixels,
            np.asarray(jpegs, dtype=np.int64),
            np.concatenate([f.data for f in files]),
            offsets.astype(np.int64),
            np.asarray([[f.orientation, f.width, f.height] for f in files], dtype=np.int64),
        )

    def finish_batch(self, inputs: Any, device: str) -> tuple[Any, dict[int, str]]:
        """The batch's pixels on ``device`` and {position: why it could not be read}."""
        import torch

        if not isinstance(inputs, tuple):
            return inputs, {}
        pixels, slots, data, offsets, meta = (torch.as_tensor(part) for part in inputs)
        out = pixels.to(device, non_blocking=True)
        files = [data[int(offsets[k]) : int(offsets[k + 1])] for k in range(len(slots))]
        failed: dict[int, str] = {}
        for k, picture, upright in decoded_pictures(files, meta[:, 1:].tolist(), device):
            slot = int(slots[k])
            if isinstance(picture, str):
                failed[slot] = picture
            else:
                out[slot] = self.square_resize(picture if upright else oriented(picture, int(meta[k, 0])))
        return out, failed

    def square_resize(self, picture: Any) -> Any:
        """A ``(3, h, w)`` uint8 picture padded to a square on white and resized to ``size``, on its device."""
        import torch

        _, height, width = picture.shape
        side = max(height, width)
        square = torch.full((3, side, side), 255, dtype=torch.uint8, device=picture.device)
        top, left = (side - height) // 2, (side - width) // 2
        square[:, top : top + height, left : left + width] = picture
        return self.resized(square)


def decoded_pictures(files: list[Any], sizes: list[list[int]], device: str) -> Any:
    """(index, ``(3, h, w)`` uint8 picture on ``device`` or the reason it could not be read, whether
    it is upright already) per file.

    The files are decoded in calls of at most :data:`MAX_DECODE_PIXELS`; a call that fails is retried
    file by file, and a file the device refuses is decoded on the CPU by :func:`recsys.media.load_image`
    (upright and square already), then moved to the device.
    """
    start = 0
    while start < len(files):
        end, pixels = start, 0
        while end < len(files) and (end == start or pixels + sizes[end][0] * sizes[end][1] <= MAX_DECODE_PIXELS):
            pixels += sizes[end][0] * sizes[end][1]
            end += 1
        try:
            pictures = [(picture, False) for picture in _decode(files[start:end], device)]
        except Exception:  # one damaged file fails the whole call: find which, one by one
            pictures = [_decode_one(f, device) for f in files[start:end]]
        for k, (picture, upright) in enumerate(pictures, start):
            yield k, picture, upright
        start = end


def _decode(files: list[Any], device: str) -> list[Any]:
    import torch
    from torchvision.io import ImageReadMode, decode_jpeg

    if torch.device(device).type == "cuda":
        # nvJPEG's hardware decoder writes its outputs without waiting for the work queued on the
        # stream, into blocks the allocator may have just freed from that work. On an H200, 300
        # photos indexed this way had a mean cosine of 0.962 to their CPU-decoded vectors, the worst
        # 0.127 (other pictures' pixels); draining the stream first: 0.9992, the worst 0.990. The
        # decode waits for its stream before returning anyway, so the wait moves, it is not added.
        torch.cuda.current_stream(device).synchronize()
    return list(decode_jpeg(files, mode=ImageReadMode.RGB, device=device))


def _decode_one(data: Any, device: str) -> tuple[Any, bool]:
    try:
        return _decode([data], device)[0], False
    except Exception:
        pass
    import torch

    try:  # PIL reads some files nvJPEG refuses; its message names what is wrong when it cannot
        image = media.load_image(data.numpy().tobytes(), min_side=media.MAX_IMAGE_SIDE)
    except InputError as exc:
        return str(exc).replace("Image upload", "The JPEG"), True
    return torch.from_numpy(np.array(image, dtype=np.uint8)).permute(2, 0, 1).to(device), True


#: EXIF orientation -> the operations that turn a stored picture upright, as PIL's exif_transpose.
_ORIENT: dict[int, Callable[[Any], Any]] = {
    1: lambda x: x,
    2: lambda x: x.flip(-1),
    3: lambda x: x.flip(-2, -1),
    4: lambda x: x.flip(-2),
    5: lambda x: x.transpose(-2, -1),
    6: lambda x: x.transpose(-2, -1).flip(-1),
    7: lambda x: x.transpose(-2, -1).flip(-2, -1),
    8: lambda x: x.transpose(-2, -1).flip(-2),
}


def oriented(picture: Any, orientation: int) -> Any:
    """A ``(3, h, w)`` picture as its EXIF orientation says it is seen."""
    return _ORIENT.get(orientation, _ORIENT[1])(picture)
