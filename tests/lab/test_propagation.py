"""The lab's sparse graphs: the normalised adjacency and one layer by hand, gradients against dense products."""

import numpy as np
import scipy.sparse as sp
import torch
from hypothesis import given
from hypothesis import strategies as st

from recsys.lab.propagation import SparseGraph, normalised_adjacency, propagate

# 2 users x 3 items; user 0 saw items 0 and 1, user 1 saw item 1; item 2 is cold, no user is empty.
R = sp.csr_matrix(np.array([[1, 1, 0], [0, 1, 0]], dtype=np.float32))


def test_adjacency_is_symmetric_normalised_by_hand():
    adj = normalised_adjacency(R).toarray()
    # Degrees: users 2, 1; items 1, 2, 0. Entry (u, i) = 1 / sqrt(d_u d_i).
    expected = np.zeros((5, 5))
    for u, i in [(0, 0), (0, 1), (1, 1)]:
        d_u, d_i = [2, 1][u], [1, 2, 0][i]
        expected[u, 2 + i] = expected[2 + i, u] = 1 / np.sqrt(d_u * d_i)
    np.testing.assert_allclose(adj, expected, rtol=1e-6)
    np.testing.assert_allclose(adj, adj.T)
    assert not adj[4].any() and not adj[:, 4].any()  # the cold item is isolated


def test_one_layer_equals_the_hand_computed_product():
    ego = torch.arange(10, dtype=torch.float32).reshape(5, 2)
    adj = SparseGraph(normalised_adjacency(R))
    e = ego.numpy()
    s2 = 1 / np.sqrt(2)
    # user 0 <- items 0 (d=1), 1 (d=2); user 1 <- item 1; item 0 <- user 0; item 1 <- users 0, 1.
    layer1 = np.array(
        [
            e[2] / np.sqrt(2 * 1) + e[3] / np.sqrt(2 * 2),
            e[3] / np.sqrt(1 * 2),
            e[0] / np.sqrt(2 * 1),
            e[0] / np.sqrt(2 * 2) + e[1] * s2,
            np.zeros(2),
        ]
    )
    np.testing.assert_allclose((adj @ ego).numpy(), layer1, rtol=1e-6)
    np.testing.assert_allclose(propagate(adj, ego, 1).numpy(), (e + layer1) / 2, rtol=1e-6)


def test_a_symmetric_graph_keeps_one_tensor_and_a_lopsided_one_its_transpose():
    assert SparseGraph(normalised_adjacency(R)).symmetric
    lopsided = SparseGraph(sp.csr_matrix(np.array([[0, 1], [0, 0]], dtype=np.float32)))
    assert not lopsided.symmetric
    np.testing.assert_array_equal(lopsided.transpose.to_dense().numpy(), [[0, 0], [1, 0]])


@given(
    st.integers(1, 6),
    st.lists(st.tuples(st.integers(0, 5), st.integers(0, 5), st.floats(-2, 2, width=32)), max_size=20),
    st.booleans(),
)
def test_products_and_gradients_equal_the_dense_ones(n, entries, symmetrise):
    # Any small graph, duplicates and explicit zeros included; LightGCN's are symmetric, LATTICE's kNN graphs are not.
    entries = [(r % n, c % n, v) for r, c, v in entries]
    rows, cols, vals = (list(x) for x in zip(*entries, strict=True)) if entries else ([], [], [])
    graph = sp.coo_matrix((np.asarray(vals, np.float32), (rows, cols)), shape=(n, n)).tocsr()
    if symmetrise:
        graph = graph + graph.T
    dense = torch.from_numpy(graph.toarray().astype(np.float32))
    ego = torch.randn(n, 3, generator=torch.Generator().manual_seed(0))
    weights = torch.randn(n, 3, generator=torch.Generator().manual_seed(1))
    sparse = SparseGraph(graph)
    if sparse.symmetric:  # one tensor serves both ways only when it equals its transpose
        np.testing.assert_array_equal(dense.numpy(), dense.numpy().T)
    assert sparse.symmetric or not symmetrise
    np.testing.assert_array_equal(sparse.to_dense().numpy(), dense.numpy())
    outputs, grads = [], []
    for adj in (sparse, dense):
        leaf = ego.clone().requires_grad_(True)
        out = propagate(adj, leaf, 2)
        (out * weights).sum().backward()
        outputs.append(out.detach().numpy())
        grads.append(leaf.grad.numpy())
    np.testing.assert_allclose(outputs[0], outputs[1], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(grads[0], grads[1], rtol=1e-5, atol=1e-5)
