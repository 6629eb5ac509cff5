"""Shared torch training machinery for the learned recommenders (BPR-MF, hybrid, attention fusion).

The three models differ only in how they score a (user, item) pair; sampling, mini-batching,
seeding, validation and early stopping live here once so they are compared on equal terms.
Torch is imported lazily by the callers' ``fit`` so importing :mod:`recsys.lab` stays cheap.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.sparse as sp

from recsys.errors import DatasetError
from recsys.lab.base import Recommender

if TYPE_CHECKING:
    import torch

# Scoring function used for validation: user ids -> (len(users), n_items) float32 numpy scores.
ScoreFn = Callable[[np.ndarray], np.ndarray]
# Told after every epoch: (epoch, maximum epochs, validation Recall@k of this epoch or None).
EpochCallback = Callable[[int, int, float | None], None]

_epoch_listener: ContextVar[EpochCallback | None] = ContextVar("recsys_lab_epoch_listener", default=None)


@contextlib.contextmanager
def epoch_listener(callback: EpochCallback | None) -> Iterator[None]:
    """Send every epoch of the fits inside the block to ``callback``.

    A context variable rather than a constructor argument: the runner wraps ``model.fit`` and
    every model that trains through :func:`train_pairwise` (or calls :func:`report_epoch` from
    its own loop) reports, without each model's signature carrying a progress hook.
    """
    token = _epoch_listener.set(callback)
    try:
        yield
    finally:
        _epoch_listener.reset(token)


def report_epoch(epoch: int, epochs: int, valid_recall: float | None = None) -> None:
    """Tell the listener (if any) that ``epoch`` of at most ``epochs`` is done (0: training starts)."""
    callback = _epoch_listener.get()
    if callback is not None:
        callback(epoch, epochs, valid_recall)


def seed_everything(seed: int) -> np.random.Generator:
    """Seed torch's global generator (parameter init) and return a numpy generator for sampling."""
    import torch

    torch.manual_seed(seed)
    return np.random.default_rng(seed)


def resolve_device(device: str | None) -> torch.device:
    """The device to train on: the explicit choice, else :func:`recsys.device.pick_device`."""
    import torch

    from recsys.device import pick_device

    return torch.device(pick_device(device))


def check_train_data(train: sp.csr_matrix, model: str) -> None:
    """Fail early with an actionable message when there is nothing to learn from."""
    if train.shape[0] == 0 or train.shape[1] == 0:
        raise DatasetError(f"{model}: the training matrix is empty ({train.shape[0]} users x {train.shape[1]} items).")
    if train.nnz == 0:
        raise DatasetError(f"{model}: the training split has no interactions; check the protocol and the dataset.")


def sample_triples(
    train: sp.csr_matrix,
    rng: np.random.Generator,
    negative_pool: np.ndarray | None = None,
    n_samples: int | None = None,
    max_retries: int = 20,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sample (user, positive item, negative item) triples, uniformly over training interactions.

    Negatives are drawn uniformly from ``negative_pool`` (default: all items) and re-drawn while
    they hit one of the user's training items. Cold items (empty columns) should be left out of
    the pool by the caller: they are unknown, not disliked, and a content model would otherwise
    learn to push their content down.
    """
    coo = train.tocoo()
    n = coo.nnz if n_samples is None else n_samples
    idx = rng.integers(0, coo.nnz, size=n) if n_samples is not None else rng.permutation(coo.nnz)
    users = coo.row[idx].astype(np.int64)
    pos = coo.col[idx].astype(np.int64)
    pool = np.arange(train.shape[1]) if negative_pool is None else np.asarray(negative_pool, dtype=np.int64)
    if pool.size == 0:
        raise DatasetError("No items are available as negatives: every item is cold or the catalogue is empty.")
    neg = pool[rng.integers(0, pool.size, size=n)]
    # Membership test on the sorted CSR: a (user, item) pair is a positive when found in its row.
    train = train if train.has_sorted_indices else train.sorted_indices()
    indptr, indices = train.indptr, train.indices
    for _ in range(max_retries):
        bad = _is_positive(indptr, indices, users, neg)
        if not bad.any():
            break
        neg[bad] = pool[rng.integers(0, pool.size, size=int(bad.sum()))]
    return users, pos, neg


def _is_positive(indptr: np.ndarray, indices: np.ndarray, users: np.ndarray, items: np.ndarray) -> np.ndarray:
    """Vectorised ``train[u, i] != 0`` for pairs: binary search of ``i`` in each user's sorted row."""
    lo, hi = indptr[users], indptr[users + 1]
    # Each (user, item) maps to a key that is monotone over the row-major CSR layout.
    n_cols = np.int64(max(int(indices.max()) if indices.size else 0, int(items.max()) if items.size else 0) + 1)
    row_of = np.repeat(np.arange(len(indptr) - 1, dtype=np.int64), np.diff(indptr))
    keys = row_of * n_cols + indices.astype(np.int64)
    loc = np.searchsorted(keys, users * n_cols + items)
    found = (loc < hi) & (loc >= lo)
    out = np.zeros(users.shape, dtype=bool)
    out[found] = indices[loc[found]] == items[found]
    return out


def bpr_loss(diff: torch.Tensor) -> torch.Tensor:
    """Mean BPR loss, -log sigmoid(x_ui - x_uj), computed stably."""
    import torch.nn.functional as F

    return -F.logsigmoid(diff).mean()


#: Bytes of one block of float32 scores (users or items x items) that evaluation, early stopping
#: and ItemKNN's pruning hold at once. A fixed 512 users made a block of 2 GB at 1M items, and with
#: its copies (permuted, seen items masked, per segment) an evaluation held ~13 GB; a block this
#: size holds every user of a batch up to ~65k items (lfm2k's batches are unchanged).
SCORE_BLOCK_BYTES = 128 * 2**20


def block_rows(n_items: int, at_most: int) -> int:
    """How many rows of float32 scores over ``n_items`` items to hold at once (users to rank, items
    whose neighbours to keep): ``at_most``, fewer where they would pass :data:`SCORE_BLOCK_BYTES`
    (at least one)."""
    return max(1, min(at_most, SCORE_BLOCK_BYTES // (4 * max(1, n_items))))


def minibatches(n: int, batch_size: int) -> Iterator[slice]:
    """Consecutive slices covering ``range(n)`` (the triples are already shuffled)."""
    for start in range(0, n, batch_size):
        yield slice(start, min(start + batch_size, n))


def recall_at_k(scores: np.ndarray, train_rows: sp.csr_matrix, target_rows: sp.csr_matrix, k: int = 20) -> float:
    """Mean Recall@k over the given rows: training items excluded, hits / number of target items.

    Used only for early stopping; the reported metrics come from the lab's metric module.
    """
    scores = scores.astype(np.float32, copy=True)
    tr = train_rows.tocoo()
    scores[tr.row, tr.col] = -np.inf
    k = min(k, scores.shape[1])
    top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    hits = np.asarray(target_rows[np.arange(scores.shape[0])[:, None], top].sum(axis=1)).ravel()
    n_target = np.asarray(target_rows.sum(axis=1)).ravel()
    ok = n_target > 0
    return float(np.mean(hits[ok] / n_target[ok])) if ok.any() else 0.0


def validation_recall(
    score_fn: ScoreFn, train: sp.csr_matrix, valid: sp.csr_matrix, k: int = 20, batch_size: int = 1024
) -> float:
    """Recall@k on ``valid`` for every user with a validation item, scored in user batches."""
    users = np.flatnonzero(np.diff(valid.indptr) > 0)
    if users.size == 0:
        return 0.0
    total = 0.0
    for sl in minibatches(users.size, block_rows(train.shape[1], batch_size)):
        batch = users[sl]
        total += recall_at_k(score_fn(batch), train[batch], valid[batch], k) * batch.size
    return total / users.size


@dataclass
class EarlyStopping:
    """Keep the parameters of the best validation epoch; stop after ``patience`` evaluations without gain."""

    patience: int = 5
    min_delta: float = 1e-4
    best: float = -np.inf
    best_epoch: int = -1
    bad_rounds: int = 0
    best_state: dict[str, torch.Tensor] | None = field(default=None, repr=False)

    def update(self, value: float, epoch: int, module: torch.nn.Module) -> bool:
        """Record ``value`` for ``epoch``; returns True when training should stop."""
        if value > self.best + self.min_delta:
            self.best, self.best_epoch, self.bad_rounds = value, epoch, 0
            self.best_state = {k: v.detach().clone() for k, v in module.state_dict().items()}
            return False
        self.bad_rounds += 1
        return self.bad_rounds >= self.patience

    def restore(self, module: torch.nn.Module) -> None:
        """Load the best parameters back into ``module`` (no-op if nothing was recorded)."""
        if self.best_state is not None:
            module.load_state_dict(self.best_state)


@dataclass
class TrainConfig:
    """Hyper-parameters shared by every pairwise/pointwise torch recommender."""

    epochs: int = 60
    batch_size: int = 1024
    lr: float = 0.01
    weight_decay: float = 0.0
    eval_every: int = 2
    patience: int = 5
    k: int = 20
    device: str | None = None
    # CPU threads during fit; None: the train role's count (recsys.threads, RECSYS_TRAIN_THREADS).
    num_threads: int | None = None


@dataclass
class TrainResult:
    """What a fit reports (kept in ``extra_info`` for the evaluation table)."""

    losses: list[float]
    epochs_run: int
    best_epoch: int
    best_valid_recall: float | None


def train_pairwise(
    module: torch.nn.Module,
    batch_loss: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor],
    train: sp.csr_matrix,
    valid: sp.csr_matrix,
    score_fn: ScoreFn | list[ScoreFn],
    config: TrainConfig,
    rng: np.random.Generator,
    device: torch.device,
    negative_pool: np.ndarray | None = None,
    before_epoch: Callable[[int], None] | None = None,
) -> TrainResult:
    """Epochs of shuffled (user, pos, neg) mini-batches with Adam, early-stopped on validation Recall@k.

    ``batch_loss(users, pos, neg)`` returns the mean loss of a mini-batch (regularisation
    included); ``score_fn`` must put the module in eval mode itself. Given several score
    functions, the stopping criterion is their mean validation recall (e.g. full model and
    content-only, so a hybrid stays good at ranking cold items). Every training interaction
    is seen once per epoch with a fresh negative. ``before_epoch(epoch)`` runs before each
    epoch's batches (e.g. to resample a pruned training graph).
    """
    from recsys.threads import use_threads

    score_fns = score_fn if isinstance(score_fn, list) else [score_fn]
    with use_threads("train", threads=config.num_threads):
        return _train_loop(
            module, batch_loss, train, valid, score_fns, config, rng, device, negative_pool, before_epoch
        )


def _train_loop(
    module: torch.nn.Module,
    batch_loss: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor],
    train: sp.csr_matrix,
    valid: sp.csr_matrix,
    score_fns: list[ScoreFn],
    config: TrainConfig,
    rng: np.random.Generator,
    device: torch.device,
    negative_pool: np.ndarray | None,
    before_epoch: Callable[[int], None] | None = None,
) -> TrainResult:
    """The epoch loop behind :func:`train_pairwise`."""
    import torch

    optimiser = torch.optim.Adam(module.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    stopper = EarlyStopping(patience=config.patience)
    has_valid = valid is not None and valid.nnz > 0
    losses: list[float] = []
    epoch = 0
    report_epoch(0, config.epochs)
    for epoch in range(1, config.epochs + 1):
        if before_epoch is not None:
            before_epoch(epoch)
        module.train()
        users, pos, neg = sample_triples(train, rng, negative_pool)
        u_t = torch.from_numpy(users).to(device)
        p_t = torch.from_numpy(pos).to(device)
        n_t = torch.from_numpy(neg).to(device)
        total, count = 0.0, 0
        for sl in minibatches(users.size, config.batch_size):
            loss = batch_loss(u_t[sl], p_t[sl], n_t[sl])
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            total += float(loss.detach()) * (sl.stop - sl.start)
            count += sl.stop - sl.start
        losses.append(total / max(count, 1))
        if has_valid and (epoch % config.eval_every == 0 or epoch == config.epochs):
            with torch.no_grad():
                value = float(np.mean([validation_recall(fn, train, valid, config.k) for fn in score_fns]))
            report_epoch(epoch, config.epochs, value)
            if stopper.update(value, epoch, module):
                break
        else:
            report_epoch(epoch, config.epochs)
    if has_valid:
        stopper.restore(module)
    module.eval()
    return TrainResult(
        losses=losses,
        epochs_run=epoch,
        best_epoch=stopper.best_epoch if has_valid else epoch,
        best_valid_recall=float(stopper.best) if has_valid and stopper.best_epoch >= 0 else None,
    )


#: Rows centred, projected and normalised at a time: the float64 working copies of a block stay
#: ~0.4 GB at 768-d, where whole copies of 1M items' features were 6 GB each (three at once).
FEATURE_BLOCK_ROWS = 65_536
#: Past this many items PCA works from the ``d x d`` covariance (scikit-learn's ``covariance_eigh``)
#: instead of a full SVD of the ``n x d`` matrix, whose float64 copy and ``U`` factor held 12 GB at
#: 1M 768-d items; the same components up to sign and float noise, so small datasets keep the full
#: SVD they were tuned with.
PCA_FULL_SVD_UP_TO = 100_000


def normalise_features(
    features: dict[str, np.ndarray], n_items: int, max_dim: int | None = None, seed: int = 0
) -> tuple[list[str], list[np.ndarray]]:
    """Centre each modality, optionally reduce it to ``max_dim`` principal components, L2-normalise rows.

    Centring and row normalisation make scales comparable (vggish ~1e3, MiniLM ~1). The PCA
    step bounds the cost of projecting every item at every training step (the projection is
    the dominant cost on CPU) and drops low-variance directions that mostly carry noise.
    Returns the modality names in a stable (sorted) order and the float32 matrices. Rows are
    worked on in float64 a block at a time, so memory holds the input and the output.
    """
    if not features:
        raise DatasetError("This model needs item features, but the dataset has none; pick a pure CF model instead.")
    names = sorted(features)
    out = []
    for name in names:
        x = np.asarray(features[name])
        if x.ndim != 2 or x.shape[0] != n_items:
            raise DatasetError(
                f"Features for modality '{name}' have shape {x.shape}; expected ({n_items}, d), one row per item."
            )
        if x.dtype.kind not in "biuf":
            raise DatasetError(f"Features for modality '{name}' must be numbers, got {x.dtype} values.")
        if not all(np.isfinite(x[rows]).all() for rows in minibatches(n_items, FEATURE_BLOCK_ROWS)):
            raise DatasetError(f"Features for modality '{name}' contain NaN or infinite values.")
        mean = x.mean(axis=0, dtype=np.float64)
        source, prepare, width = x, lambda rows, mean=mean: rows - mean, x.shape[1]
        if max_dim is not None and x.shape[1] > max_dim and n_items > max_dim:
            (source, prepare), width = _principal_components(x, mean, max_dim, seed), max_dim
        done = np.empty((n_items, width), dtype=np.float32)
        for rows in minibatches(n_items, FEATURE_BLOCK_ROWS):
            block = prepare(np.asarray(source[rows], dtype=np.float64))
            norms = np.linalg.norm(block, axis=1, keepdims=True)
            done[rows] = block / np.maximum(norms, 1e-12)
        out.append(done)
    return names, out


def _principal_components(
    x: np.ndarray, mean: np.ndarray, max_dim: int, seed: int
) -> tuple[np.ndarray, Callable[[np.ndarray], np.ndarray]]:
    """Rows to read and what makes a block of them (float64) its first ``max_dim`` principal
    components: up to :data:`PCA_FULL_SVD_UP_TO` rows the reduced rows themselves (a full SVD of the
    centred matrix), past that ``x`` itself and its projection."""
    from sklearn.decomposition import PCA

    quiet = np.errstate(invalid="ignore", divide="ignore")  # constant features: no variance to explain
    if x.shape[0] <= PCA_FULL_SVD_UP_TO:
        with quiet:
            pca = PCA(n_components=max_dim, svd_solver="full", random_state=seed)
            return pca.fit_transform(np.asarray(x, dtype=np.float64) - mean), lambda rows: rows
    with quiet:
        pca = PCA(n_components=max_dim, svd_solver="covariance_eigh", random_state=seed).fit(x)
    centre, components = np.asarray(pca.mean_, dtype=np.float64), pca.components_.astype(np.float64)
    return x, lambda rows: (rows - centre) @ components.T


def make_projection(d_in: int, dim: int, hidden: int = 0) -> torch.nn.Module:
    """A modality's map into the shared space: linear without bias (so dropping its input row equals
    dropping its output row), or a one-hidden-layer GELU MLP when ``hidden > 0``."""
    import torch

    if hidden <= 0:
        return torch.nn.Linear(d_in, dim, bias=False)
    return torch.nn.Sequential(torch.nn.Linear(d_in, hidden), torch.nn.GELU(), torch.nn.Linear(hidden, dim, bias=False))


def score_in_batches(score_batch: ScoreFn, users: np.ndarray, n_items: int, batch_size: int = 2048) -> np.ndarray:
    """Concatenate ``score_batch`` over user batches (bounded memory for large catalogues)."""
    users = np.asarray(users, dtype=np.int64).ravel()
    parts = [score_batch(users[sl]) for sl in minibatches(users.size, batch_size)]
    if not parts:
        return np.zeros((0, n_items), dtype=np.float32)
    return np.concatenate(parts, axis=0).astype(np.float32, copy=False)


#: Training defaults of the lab's torch recommenders (chosen on lfm2k; see benchmarks/lfm2k.py).
MODEL_TRAIN_DEFAULTS: dict[str, Any] = {"lr": 0.002, "epochs": 150, "batch_size": 1024, "eval_every": 2, "patience": 5}


class TorchRecommender(Recommender):
    """What the lab's torch models share: embedding size, init scale, training options, fit state.

    ``train`` takes any :class:`TrainConfig` field (``lr``, ``epochs``, ``batch_size``,
    ``weight_decay``, ``eval_every``, ``patience``, ``device``, ``num_threads``) over
    :data:`MODEL_TRAIN_DEFAULTS`.
    """

    def __init__(self, dim: int, init_std: float, **train: Any) -> None:
        self.dim = dim
        self.init_std = init_std
        self.config = TrainConfig(**{**MODEL_TRAIN_DEFAULTS, **train})
        self._module = None
        self._device = None
        self.result: TrainResult | None = None
        self.fit_seconds = 0.0

    def training_info(self) -> dict[str, object]:
        """The training options and, once fitted, what the loop reports: for ``extra_info``."""
        info: dict[str, object] = {"config": asdict(self.config)}
        if self.result is not None:
            info.update(
                epochs_run=self.result.epochs_run,
                best_epoch=self.result.best_epoch,
                best_valid_recall=self.result.best_valid_recall,
                final_loss=self.result.losses[-1] if self.result.losses else None,
                fit_seconds=round(self.fit_seconds, 2),
            )
        return info

    def refit_overrides(self) -> dict[str, object]:
        """Train for the epoch count early stopping picked (there is no validation set to stop on)."""
        if self.result is None or self.result.best_valid_recall is None:
            return {}
        return {"epochs": max(1, int(self.result.best_epoch))}
