"""A fixed-shape forward pass replayed as one CUDA graph instead of queued kernel by kernel.

Why: on an H100 host indexing pictures, the pipeline's main process, not the device, set the pace:
queueing one EfficientNet-Lite0 batch's kernels from Python took ~16 ms of every batch of 256 while
the decode workers kept the host's cores busy (docs/ENCODING.md). A captured graph is queued with
one call. On an H100 the graphs gave the eager forward's outputs exactly (fp32 and bf16, batches
in flight too), queueing took ~8 ms a batch of 256 (~16 ms in the eager profile a day earlier) and
indexing reached 0.75 of the raw forward against 0.71 eager, so the encoders that take
``cuda_graphs`` default to it on CUDA (docs/ENCODING.md has the figures).

Each distinct input (shape, dtype, autocast state) is captured the second time it is seen, so a
one-off shape (a catalogue's last, partial batch) runs eagerly instead of paying a capture.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from recsys.encoders.base import host_outputs

Forward = Callable[[Any], Mapping[str, Any]]

#: Captured graphs kept per forward (each holds its activations' memory); the oldest is dropped.
MAX_GRAPHS = 4


@dataclass
class Captured:
    """One replayable graph: copy the next input into ``inputs``, ``replay()``, read ``outputs``."""

    inputs: Any
    outputs: Mapping[str, Any]
    replay: Callable[[], None]


def capture_cuda_graph(forward: Forward, example: Any, device: Any, *, warmup: int = 2) -> Captured:
    """Capture ``forward`` on a device buffer shaped like ``example`` (which it is filled with).

    The warm-up runs on a side stream (cuBLAS / cuDNN handles and workspaces exist before capture);
    ``thread_local`` capture lets the DataLoader's pinning thread allocate pinned memory meanwhile.
    Autocast is re-entered with its cast cache off: a cached weight cast would be freed when the
    caller's autocast context exits, under a graph that still reads it.
    """
    import torch

    amp = torch.is_autocast_enabled("cuda")
    amp_dtype = torch.get_autocast_dtype("cuda")
    with torch.cuda.device(device):
        inputs = torch.empty(tuple(example.shape), dtype=example.dtype, device=device)
        inputs.copy_(example, non_blocking=True)
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side), torch.autocast("cuda", dtype=amp_dtype, enabled=amp, cache_enabled=False):
            for _ in range(warmup):
                forward(inputs)
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with (
            torch.autocast("cuda", dtype=amp_dtype, enabled=amp, cache_enabled=False),
            torch.cuda.graph(graph, stream=side, capture_error_mode="thread_local"),
        ):
            outputs = dict(forward(inputs))
    return Captured(inputs, outputs, graph.replay)


class GraphedForward:
    """``forward`` (device tensor in, named device tensors out) run through captured graphs.

    :meth:`launch` returns what :func:`~recsys.encoders.base.host_outputs` returns: the outputs'
    host copies are queued behind the replay while a lock is held, so two threads (two app
    sessions querying at once) never read each other's results from the graph's shared buffers.
    ``capture`` is :func:`capture_cuda_graph`; tests pass a stand-in to check the bookkeeping on a CPU.
    """

    def __init__(
        self,
        forward: Forward,
        device: Any,
        *,
        capture: Callable[[Forward, Any, Any], Captured] = capture_cuda_graph,
        max_graphs: int = MAX_GRAPHS,
    ) -> None:
        self.forward = forward
        self.device = device
        self._capture = capture
        self._max_graphs = max_graphs
        self._graphs: OrderedDict[tuple[Any, ...], Captured] = OrderedDict()
        self._seen: set[tuple[Any, ...]] = set()
        self._lock = threading.Lock()

    def launch(self, inputs: Any) -> Callable[[], dict[str, np.ndarray]]:
        """Queue the forward pass of ``inputs`` (host or device tensor) and its outputs' copies back."""
        key = _graph_key(inputs)
        with self._lock:
            captured = self._graphs.get(key)
            if captured is None and key not in self._seen:
                self._seen.add(key)
                return host_outputs(self.forward(inputs.to(self.device, non_blocking=True)))
            if captured is None:
                captured = self._capture(self.forward, inputs, self.device)
                self._graphs[key] = captured
                while len(self._graphs) > self._max_graphs:
                    self._graphs.popitem(last=False)
            else:
                self._graphs.move_to_end(key)
            captured.inputs.copy_(inputs, non_blocking=True)
            captured.replay()
            return host_outputs(captured.outputs)

    @property
    def graphs(self) -> int:
        """How many graphs are captured now."""
        return len(self._graphs)


def _graph_key(inputs: Any) -> tuple[Any, ...]:
    import torch

    amp = torch.is_autocast_enabled("cuda")
    return (tuple(inputs.shape), inputs.dtype, amp, torch.get_autocast_dtype("cuda") if amp else None)
