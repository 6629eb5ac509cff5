"""GraphedForward's bookkeeping, on the CPU with a stand-in for CUDA graph capture.

The stand-in "captures" by keeping device-side buffers and replaying the forward pass into the
same output tensors in place, as a CUDA graph writes its static outputs: it checks which calls
capture, which replay and which run eagerly, and that results never leak between inputs. The
real capture needs a GPU (benchmarks/encoding.py --cuda-graphs on measures it there).
"""

from __future__ import annotations

import threading

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from recsys.encoders.graphs import Captured, GraphedForward  # noqa: E402


def forward(x):
    x = x.float()
    return {"double": x.flatten(1) * 2, "total": x.flatten(1).sum(dim=1, keepdim=True)}


class StandInCapture:
    def __init__(self):
        self.captures = []
        self.replays = 0

    def __call__(self, fn, example, device):
        inputs = torch.empty_like(example, device=device)
        inputs.copy_(example)
        outputs = {k: v.clone() for k, v in fn(inputs).items()}

        def replay():
            self.replays += 1
            for name, value in fn(inputs).items():
                outputs[name].copy_(value)  # static outputs, overwritten by every replay

        self.captures.append(tuple(example.shape))
        return Captured(inputs, outputs, replay)


def batch(n, seed):
    return torch.from_numpy(np.random.default_rng(seed).integers(0, 255, (n, 3, 4, 4), dtype=np.uint8))


def expected(x):
    return {k: v.numpy() for k, v in forward(x).items()}


def test_first_sighting_is_eager_then_captured_then_replayed():
    capture = StandInCapture()
    graphed = GraphedForward(forward, "cpu", capture=capture)
    for seed in range(4):
        x = batch(8, seed)
        out = graphed.launch(x)()
        for name, want in expected(x).items():
            np.testing.assert_array_equal(out[name], want)
    assert capture.captures == [(8, 3, 4, 4)]  # second call captured, third and fourth replayed
    assert capture.replays == 3


def test_one_off_shapes_never_capture():
    capture = StandInCapture()
    graphed = GraphedForward(forward, "cpu", capture=capture)
    for n in (8, 5, 8, 3):
        graphed.launch(batch(n, n))()
    assert capture.captures == [(8, 3, 4, 4)]
    assert graphed.graphs == 1


def test_results_do_not_alias_the_graph_buffers():
    """Outputs read after the next launch still hold their own batch's values."""
    graphed = GraphedForward(forward, "cpu", capture=StandInCapture())
    xs = [batch(8, seed) for seed in range(5)]
    pending = [graphed.launch(x) for x in xs]
    for x, finish in zip(xs, pending, strict=True):
        np.testing.assert_array_equal(finish()["double"], expected(x)["double"])


def test_oldest_graph_is_dropped_past_the_limit():
    capture = StandInCapture()
    graphed = GraphedForward(forward, "cpu", capture=capture, max_graphs=2)
    for n in (1, 1, 2, 2, 3, 3, 1, 1):
        graphed.launch(batch(n, n))()
    assert graphed.graphs == 2
    assert capture.captures == [(1, 3, 4, 4), (2, 3, 4, 4), (3, 3, 4, 4), (1, 3, 4, 4)]


def test_concurrent_launches_each_get_their_own_results():
    graphed = GraphedForward(forward, "cpu", capture=StandInCapture())
    graphed.launch(batch(4, 0))()
    errors = []

    def worker(seed):
        for i in range(20):
            x = batch(4, seed * 100 + i)
            got = graphed.launch(x)()["total"]
            if not np.array_equal(got, expected(x)["total"]):
                errors.append(seed)

    threads = [threading.Thread(target=worker, args=(s,)) for s in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


def test_efficientnet_ignores_cuda_graphs_off_cuda(image_encoder):
    from recsys.encoders.efficientnet import EfficientNetLite0Encoder

    graphed = EfficientNetLite0Encoder(device="cpu", cuda_graphs=True)
    assert graphed._graphed is None
    pixels = batch(2, 1).repeat(1, 1, 56, 56)
    np.testing.assert_allclose(
        graphed.forward_batch(pixels.numpy())["embedding"],
        image_encoder.forward_batch(pixels.numpy())["embedding"],
        atol=1e-6,
    )
