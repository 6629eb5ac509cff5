"""What a user asks with: the raw query (text, a picture, a clip, liked and disliked items) and the
unit vectors the engine folds it into, natively and in the shared space."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from recsys import fusion
from recsys.errors import InputError
from recsys.vectors import unit_vectors


def check_text(text: object, what: str = "the text query") -> str:
    """``text`` if it is a string the text encoders can take, else :class:`InputError`.

    Bytes that are not UTF-8 reach Python as lone surrogates (``'\\udcff'`` for byte 0xff in
    ``sys.argv``), and tokenizers fail on them with a ``TypeError``.
    """
    if not isinstance(text, str):
        raise InputError(f"{what} must be text, got {type(text).__name__}")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        char = ord(text[exc.start])
        if 0xDC80 <= char <= 0xDCFF:  # how surrogateescape carries an undecodable byte
            found = f"byte 0x{char - 0xDC00:02x}, which is not UTF-8,"
        else:
            found = f"an unpaired surrogate U+{char:04X}"
        raise InputError(
            f"{what} contains {found} at character {exc.start + 1}; type it again as plain text (UTF-8)"
        ) from None
    return text


@dataclass(frozen=True)
class Query:
    """What the user asks with; any combination may be given."""

    text: str | None = None
    image: Any = None
    audio: Any = None
    likes: tuple[str, ...] = ()
    dislikes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.text is not None:
            check_text(self.text)

    def inputs(self) -> dict[str, Any]:
        """Query modality -> raw input, for the inputs actually given."""
        given = {"text": (self.text or "").strip() or None, "image": self.image, "audio": self.audio}
        return {m: v for m, v in given.items() if v is not None}

    def is_empty(self) -> bool:
        return not self.inputs() and not self.likes and not self.dislikes


def fold_examples(positives: list[np.ndarray], negatives: list[np.ndarray]) -> np.ndarray | None:
    """Liked and disliked items' vectors as one query vector, Qdrant's average-vector rule:
    ``mean(pos) + (mean(pos) - mean(neg))``; None when they cancel out or none are given."""
    if not positives and not negatives:
        return None
    if positives and negatives:
        pos, neg = np.mean(positives, axis=0), np.mean(negatives, axis=0)
        vec = pos + (pos - neg)
    elif positives:
        vec = np.mean(positives, axis=0)
    else:
        vec = -np.mean(negatives, axis=0)
    out = unit_vectors(vec)
    return out if np.any(out) else None


@dataclass(frozen=True)
class QueryVectors:
    """A query folded into unit vectors per query modality, natively and in the shared space."""

    native: dict[str, np.ndarray]
    shared: dict[str, np.ndarray]

    def side(self, shared: bool) -> dict[str, np.ndarray]:
        return self.shared if shared else self.native

    def centred(self) -> QueryVectors:
        """Every vector centred on its own mean (:func:`recsys.fusion.centre`): the Pearson view."""
        return QueryVectors(
            native={m: fusion.centre(v) for m, v in self.native.items()},
            shared={m: fusion.centre(v) for m, v in self.shared.items()},
        )
