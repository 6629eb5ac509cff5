"""What one collated batch costs between the decode workers and the device, apart from decoding.

An indexing pass on a GPU gets its batches from DataLoader worker processes (``recsys.encoding``):
each batch is a tensor in a fresh shared-memory block that the main process maps when it receives
it, and on CUDA DataLoader's pinning thread copies it into pinned memory before it goes to the
device. Here the workers hand over batches made beforehand (filled tensors, no decoding), and the
main process times, per batch of ``--batch-size`` items of ``--shape``:

- receiving it (``next()`` on the loader once every batch is waiting: mapping the block, and
  unmapping the one before);
- on CUDA, pinning it (``Tensor.pin_memory()``: what the pinning thread does to each batch it
  receives) and copying the pinned batch to the device;
- copying it into memory of its own, then copying it again: the first touch of a freshly mapped
  block pays its page faults (on CUDA the pinning pays them).

Each figure is per batch, with the items/s it would cap a pass at if it were the only cost. Compare
with the model's raw forward (``benchmarks/encoding.py``): a cost near a batch's forward time means
handing batches over, not decoding, sets the pace.

    .venv/bin/python benchmarks/batch_transfer.py [--batch-size 256] [--shape 3,224,224] [--dtype uint8]
        [--batches 16] [--workers 2] [--settle 5] [--device cpu|cuda]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch

from recsys.device import pick_device
from recsys.threads import one_thread_per_worker


class ReadyBatches:
    """Map-style dataset of whole batches: batch ``i`` is filled with ``i % 100`` (no decoding)."""

    def __init__(self, count: int, shape: tuple[int, ...], dtype: torch.dtype) -> None:
        self.count, self.shape, self.dtype = count, shape, dtype

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, index: int) -> torch.Tensor:
        return torch.full(self.shape, index % 100, dtype=self.dtype)


def loader(args: argparse.Namespace) -> torch.utils.data.DataLoader:
    from torch.utils.data import DataLoader

    shape = (args.batch_size, *args.shape)
    return DataLoader(
        ReadyBatches(args.batches, shape, args.dtype),  # type: ignore[arg-type]  # map-style
        batch_size=None,
        num_workers=args.workers,
        prefetch_factor=-(-args.batches // args.workers),  # every batch requested at once
        worker_init_fn=one_thread_per_worker,  # as the pipeline's workers
    )


def per_batch(args: argparse.Namespace, steps: dict[str, Callable[[torch.Tensor], object]]) -> dict[str, float]:
    """Median seconds of receiving each batch and of each step on it, once the workers made them all."""
    batches = iter(loader(args))
    time.sleep(args.settle)  # the workers fill the queue: next() then only receives
    seconds: dict[str, list[float]] = {"receive": [], **{name: [] for name in steps}}
    for _ in range(args.batches):
        start = time.perf_counter()
        batch = next(batches)
        seconds["receive"].append(time.perf_counter() - start)
        for name, step in steps.items():
            start = time.perf_counter()
            step(batch)
            seconds[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in seconds.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--shape", default="3,224,224", help="one item's shape (EfficientNet-Lite0's pixels)")
    parser.add_argument("--dtype", default="uint8", choices=["uint8", "float32"])
    parser.add_argument("--batches", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--settle", type=float, default=5.0, help="seconds for the workers to make every batch")
    parser.add_argument("--device", default=None, help="torch device (default: cuda if available, else cpu)")
    args = parser.parse_args()
    if args.workers < 1 or args.batches < 1:
        parser.error("--workers and --batches must be at least 1")
    args.shape = tuple(int(side) for side in args.shape.split(","))
    args.dtype = getattr(torch, args.dtype)
    device = pick_device(args.device)
    torch.set_num_threads(1)

    shape = (args.batch_size, *args.shape)
    own = torch.empty(shape, dtype=args.dtype)
    own.fill_(1)  # faulted in: the copies below measure the received block's side
    steps: dict[str, Callable[[torch.Tensor], object]] = {}
    if device.startswith("cuda"):  # first, as DataLoader's pinning thread meets each batch
        on_device = torch.empty(shape, dtype=args.dtype, device=device)
        pinned: list[torch.Tensor] = []

        def to_device(_: torch.Tensor) -> None:
            on_device.copy_(pinned.pop(), non_blocking=True)
            torch.cuda.synchronize()

        steps["pin"] = lambda batch: pinned.append(batch.pin_memory())
        steps["pinned to device"] = to_device
    steps.update({"copy": own.copy_, "copy again": own.copy_})
    figures = per_batch(args, steps)
    mb = own.numel() * own.element_size() / 1e6
    print(f"{args.batch_size} x {args.shape} {str(args.dtype).removeprefix('torch.')} a batch ({mb:.1f} MB), "
          f"{args.workers} worker(s), {args.batches} batches, device {device}")
    for name, seconds in figures.items():
        print(f"{name:36s} {seconds * 1e3:8.2f} ms  (alone it caps a pass at {args.batch_size / seconds:,.0f} items/s)")


if __name__ == "__main__":
    main()
