"""The sparse graphs the lab's graph models propagate embeddings over (LightGCN, FREEDOM, LATTICE).

These models multiply every node's embedding by a sparse graph in every mini-batch, forward and
backward, so at many interactions those products are most of an epoch. A :class:`SparseGraph` keeps
the graph as a torch CSR tensor with its transpose beside it (one tensor when the graph is
symmetric), and its product's backward multiplies by that transpose, where torch's own backward of
a sparse product transposed the graph at every call (``benchmarks/graph_training.py`` times the
three; the README has the figures).
"""

from __future__ import annotations

import functools
import warnings
from typing import TYPE_CHECKING

import numpy as np
import scipy.sparse as sp

if TYPE_CHECKING:
    import torch


def normalised_adjacency(train: sp.csr_matrix) -> sp.csr_matrix:
    """``D^-1/2 A D^-1/2`` over users then items (nodes ``0..n_users-1``, then the items);
    isolated nodes (users or items without interactions) get an empty row and column."""
    r = train.tocsr().astype(np.float32)
    r.data[:] = 1.0
    adj = sp.bmat([[None, r], [r.T, None]], format="csr", dtype=np.float32)
    degree = np.asarray(adj.sum(axis=1)).ravel()
    inv_sqrt = np.zeros_like(degree)
    inv_sqrt[degree > 0] = degree[degree > 0] ** -0.5
    d = sp.diags(inv_sqrt)
    return (d @ adj @ d).tocsr()


def _canonical(matrix: sp.spmatrix) -> sp.csr_matrix:
    """float32 CSR, duplicates summed and indices sorted (what torch's CSR kernels expect)."""
    csr = sp.csr_matrix(matrix, dtype=np.float32, copy=True)
    csr.sum_duplicates()
    return csr


def _same(a: sp.csr_matrix, b: sp.csr_matrix) -> bool:
    return (
        a.shape == b.shape
        and np.array_equal(a.indptr, b.indptr)
        and np.array_equal(a.indices, b.indices)
        and np.array_equal(a.data, b.data)
    )


def _csr_tensor(csr: sp.csr_matrix, device: torch.device | str) -> torch.Tensor:
    import torch

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta", category=UserWarning)
        tensor = torch.sparse_csr_tensor(
            torch.from_numpy(csr.indptr.astype(np.int64)),
            torch.from_numpy(csr.indices.astype(np.int64)),
            torch.from_numpy(csr.data),
            csr.shape,
            check_invariants=False,  # a canonical scipy CSR: sorted, in range
        )
    return tensor.to(device)


class SparseGraph:
    """A sparse matrix on a device; ``graph @ dense`` is differentiable in ``dense`` (not in the graph)."""

    def __init__(self, matrix: sp.spmatrix, device: torch.device | str = "cpu") -> None:
        csr = _canonical(matrix)
        transpose = _canonical(csr.T)
        self.shape: tuple[int, int] = csr.shape
        self.matrix = _csr_tensor(csr, device)
        self.transpose = self.matrix if _same(csr, transpose) else _csr_tensor(transpose, device)

    @property
    def symmetric(self) -> bool:
        return self.transpose is self.matrix

    def __matmul__(self, dense: torch.Tensor) -> torch.Tensor:
        return _product().apply(dense, self.matrix, self.transpose)

    def to_dense(self) -> torch.Tensor:
        return self.matrix.to_dense()


@functools.cache
def _product() -> type[torch.autograd.Function]:
    """The autograd function behind ``SparseGraph @ dense``, made on first use (torch is imported lazily)."""
    import torch

    class SparseProduct(torch.autograd.Function):
        @staticmethod
        def forward(ctx: object, dense: torch.Tensor, matrix: torch.Tensor, transpose: torch.Tensor) -> torch.Tensor:
            ctx.transpose = transpose
            return torch.sparse.mm(matrix, dense)

        @staticmethod
        def backward(ctx: object, grad: torch.Tensor) -> tuple[torch.Tensor, None, None]:
            return torch.sparse.mm(ctx.transpose, grad), None, None

    return SparseProduct


def propagate(adj: SparseGraph | torch.Tensor, ego: torch.Tensor, layers: int) -> torch.Tensor:
    """Mean of ``ego, A ego, ..., A^layers ego`` (LightGCN's layer combination with equal weights)."""
    out, h = ego, ego
    for _ in range(layers):
        h = adj @ h
        out = out + h
    return out / (layers + 1)
