"""The aligner interface and the identity ("native") aligner."""

from __future__ import annotations

import abc
import hashlib
from collections.abc import Mapping
from typing import Any

import numpy as np

from recsys.encoders.base import encoder_outputs
from recsys.errors import InputError
from recsys.vectors import unit_vectors

#: What an aligner's ``transform`` takes: ``encoder.encode`` output, ``encoder.predict_proba``
#: output, or (for ensembles that mix both) the two concatenated along axis 1 in this order.
INPUT_KINDS = ("embedding", "class_proba", "embedding+class_proba")


class Aligner(abc.ABC):
    """Maps one encoder's output into the text encoder's space (unit rows, float32)."""

    name: str
    source_modality: str
    input_kind: str
    source_encoder_id: str
    target_space: str
    input_dim: int
    output_dim: int

    @abc.abstractmethod
    def _transform(self, features: np.ndarray) -> np.ndarray:
        """Map validated ``(n, input_dim)`` float32 features to ``(n, output_dim)``."""

    def transform(self, features: np.ndarray) -> np.ndarray:
        """``(n, input_dim)`` features of ``input_kind`` -> ``(n, d_text)`` float32 unit rows."""
        features = np.asarray(features, dtype=np.float32)
        if features.ndim != 2 or features.shape[1] != self.input_dim:
            raise InputError(
                f"The {self.name} aligner for {self.source_modality} expects ({self.input_kind}) features of "
                f"shape (n, {self.input_dim}), got {features.shape}."
            )
        if len(features) == 0:
            return np.zeros((0, self.output_dim), dtype=np.float32)
        return unit_vectors(self._transform(features))

    def features(self, encoder: Any, inputs: list, batch_size: int = 32) -> np.ndarray:
        """Compute this aligner's input features for raw ``inputs`` with ``encoder`` (one forward pass)."""
        kinds = self.input_kind.split("+")
        return aligner_inputs(self.input_kind, encoder_outputs(encoder, list(inputs), kinds, batch_size))

    def describe(self) -> str:
        return f"{self.name} ({self.source_modality} {self.source_encoder_id} -> {self.target_space})"

    def identity(self) -> str:
        """:meth:`describe` and a digest of what maps the features (a head's weights, the class texts'
        vectors): what vectors derived from this aligner depend on, so a retrained head at the same
        path is another aligner to the engine snapshot and the vector store."""
        digest = self.parameters_digest()
        return f"{self.describe()} [{digest}]" if digest else self.describe()

    def parameters_digest(self) -> str:
        """Digest of the aligner's parameters; "" for one that has none."""
        return ""


def aligner_identity(aligner: Any) -> str:
    """:meth:`Aligner.identity`, or ``describe()`` of an aligner that is not an :class:`Aligner`."""
    identity = getattr(aligner, "identity", None)
    return identity() if identity is not None else aligner.describe()


def array_digest(*arrays: np.ndarray) -> str:
    """Short sha256 of arrays' shapes, dtypes and bytes."""
    digest = hashlib.sha256()
    for array in arrays:
        array = np.ascontiguousarray(array)
        digest.update(f"{array.shape}{array.dtype}".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()[:16]


def aligner_inputs(input_kind: str, outputs: Mapping[str, np.ndarray]) -> np.ndarray:
    """What an aligner of ``input_kind`` takes, from an encoder's outputs (``"a+b"``: concatenated in order)."""
    parts = [np.asarray(outputs[kind], dtype=np.float32) for kind in input_kind.split("+")]
    return np.concatenate(parts, axis=1) if len(parts) > 1 else parts[0]


class NativeAligner(Aligner):
    """Identity for encoders already in the text encoder's space (CLIP/CLAP towers, the text encoder)."""

    name = "native"
    input_kind = "embedding"

    def __init__(self, source_modality: str, source_encoder_id: str, target_space: str, dim: int) -> None:
        self.source_modality = source_modality
        self.source_encoder_id = source_encoder_id
        self.target_space = target_space
        self.input_dim = self.output_dim = dim

    def _transform(self, features: np.ndarray) -> np.ndarray:
        return features


def mix(bridge_vecs: np.ndarray, head_vecs: np.ndarray, bridge_weight: float) -> np.ndarray:
    """Unit rows ``bridge_vecs`` and ``head_vecs`` mixed at ``bridge_weight``, renormalised: what a two-member
    :class:`~recsys.alignment.ensemble.EnsembleAligner` of a label bridge and a head outputs."""
    return unit_vectors(
        bridge_weight * np.asarray(bridge_vecs, np.float32) + (1 - bridge_weight) * np.asarray(head_vecs, np.float32)
    )
