"""Like-with-like reference check: our BPR against implicit's BPR at the same hyper-parameters.

The registry's ``bpr`` and ``implicit-bpr`` defaults differ (embedding size, regularisation,
epochs, early stopping), so comparing their rows says nothing about our implementation. The
check fits both with the same factors, L2 weight and number of epochs (no early stopping), on
the same split and seed. Their optimisers stay their own, each at its registry entry's learning
rate (ours: Adam on mini-batches; implicit: per-sample SGD), so the figures should be close, not
equal. Runs only when ``implicit`` is installed.
"""

from __future__ import annotations

import importlib.util

#: The matched setting: implicit's library defaults for L2 and iterations, our embedding size.
MATCHED_FACTORS = 64
MATCHED_REG = 0.01
MATCHED_EPOCHS = 100
#: Our BPR may trail implicit's by this much and still pass.
TOLERANCE = 0.10

OURS, REFERENCE = "bpr (matched)", "implicit-bpr (matched)"


def implicit_installed() -> bool:
    return importlib.util.find_spec("implicit") is not None


def reference_pair(
    factors: int = MATCHED_FACTORS, reg: float = MATCHED_REG, epochs: int = MATCHED_EPOCHS
) -> list[tuple[str, str, dict[str, object]]]:
    """``(label, registry name, constructor overrides)`` of the matched pair; empty without implicit."""
    if not implicit_installed():
        return []
    return [
        # evaluating only after the last epoch: exactly `epochs` epochs, like implicit's iterations
        (OURS, "bpr", {"dim": factors, "reg": reg, "epochs": epochs, "eval_every": epochs + 1}),
        (REFERENCE, "implicit-bpr", {"factors": factors, "regularization": reg, "iterations": epochs}),
    ]


def matched_settings(factors: int = MATCHED_FACTORS, reg: float = MATCHED_REG, epochs: int = MATCHED_EPOCHS) -> str:
    return f"{factors} factors, L2 {reg:g}, {epochs} epochs, no early stopping"
