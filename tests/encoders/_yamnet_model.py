"""A tiny randomly initialised stand-in for the YAMNet ONNX export, built in the tests.

Same interface as the shipped export: uint8 input ``(1, 1, 96, 64)`` -> DequantizeLinear -> flatten
Reshape to ``[1, -1]`` -> MatMul -> QuantizeLinear -> uint8 ``(1, C)``, weights in an external data
file, zipped beside a class map. Its scores mean nothing; it exercises the plumbing. Beside it, a
weightless embedder to pair it with (:class:`recsys.encoders.tagged.TaggedEncoder`).
"""

from __future__ import annotations

import csv
import zipfile
from pathlib import Path

import numpy as np

from recsys.encoders import yamnet
from recsys.encoders.base import Encoder

CLASSES = ["Speech", "Dog, bark", "Music", "Frog", "Engine"]
IN_SCALE, IN_ZERO, OUT_SCALE, OUT_ZERO = 0.05, 140, 0.5, 128


def build_tiny_model(folder: Path, classes: list[str] = CLASSES, seed: int = 0) -> Path:
    """Write ``YamNet_w8a8.onnx.zip`` and ``yamnet_class_map.csv`` (random weights) into ``folder``."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    n = len(classes)
    inits = [
        numpy_helper.from_array(np.array(IN_SCALE, np.float32), "audio_scale"),
        numpy_helper.from_array(np.array(IN_ZERO, np.uint8), "audio_zero_point"),
        numpy_helper.from_array(np.array([1, -1], np.int64), "flat_shape"),
        numpy_helper.from_array(rng.normal(0, 0.01, (96 * 64, n)).astype(np.float32), "weights"),
        numpy_helper.from_array(np.array(OUT_SCALE, np.float32), "class_scores_scale"),
        numpy_helper.from_array(np.array(OUT_ZERO, np.uint8), "class_scores_zero_point"),
    ]
    nodes = [
        helper.make_node("DequantizeLinear", ["audio", "audio_scale", "audio_zero_point"], ["x"]),
        helper.make_node("Reshape", ["x", "flat_shape"], ["flat"]),
        helper.make_node("MatMul", ["flat", "weights"], ["logits"]),
        helper.make_node(
            "QuantizeLinear", ["logits", "class_scores_scale", "class_scores_zero_point"], ["class_scores"]
        ),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny-yamnet",
        [helper.make_tensor_value_info("audio", TensorProto.UINT8, [1, 1, 96, 64])],
        [helper.make_tensor_value_info("class_scores", TensorProto.UINT8, [1, n])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    export = folder / "export"
    export.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(export / "model.onnx"), save_as_external_data=True, location="model.data", size_threshold=0)
    with zipfile.ZipFile(folder / yamnet.MODEL_ZIP, "w") as archive:
        for name in ("model.onnx", "model.data"):
            archive.write(export / name, f"job_test/{name}")
    with open(folder / yamnet.CLASS_MAP, "w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["index", "mid", "display_name"])
        writer.writerows([i, f"/m/{i}", name] for i, name in enumerate(classes))
    return folder


class PitchEncoder(Encoder):
    """8-d one-hot of a clip's dominant pitch (per 250 Hz): a deterministic embedder with no weights."""

    modality, encoder_id, space, dim, device = "audio", "audio/pitch@1", "audio/pitch@1", 8, "cpu"

    def _encode_batch(self, batch):
        out = np.zeros((len(batch), self.dim), np.float32)
        for i, clip in enumerate(batch):
            spectrum = np.abs(np.fft.rfft(clip.samples))
            freq = np.fft.rfftfreq(len(clip.samples), 1 / clip.sample_rate)[int(np.argmax(spectrum))]
            out[i, min(int(freq // 250), self.dim - 1)] = 1.0
        return out
