r"""A gray box :math:`Y = NN(U)` as a CasADi Function that supplies its own derivatives.

For K samples (``U`` is n x K, one sample per column; ``Y`` is m x K) the oracle's function
``F`` hands CasADi, through its derivative hooks, the callbacks

- ``JF``: (U, Y) -> :math:`\partial\,\mathrm{vec}(Y) / \partial\,\mathrm{vec}(U)`, block diagonal
  with blocks :math:`J_k = \partial y_k / \partial u_k` (m x n);
- ``ADJ`` (reverse mode, ``nadj`` directions side by side): (U, Y, \bar Y) ->
  :math:`\bar U`, :math:`\bar u_{d,k} = J_k^T \bar y_{d,k}`;
- ``JADJ``, the Jacobian of ``ADJ``: (U, Y, \bar Y, \bar U) ->
  :math:`[\partial \bar U/\partial U,\ \partial \bar U/\partial Y,\ \partial \bar U/\partial \bar Y]
  = [H_k(u_k, \bar y_{d,k}),\ 0,\ J_k^T]`, where :math:`H_k(u, \lambda) = \nabla^2_u (\lambda^T NN(u))`;
- the Jacobian of ``JF`` (second-derivative tensor :math:`\partial^2 y_{k,a} / \partial u_{k,b}
  \partial u_{k,c}`), where the evaluator offers one.

So a gradient of any expression in ``Y`` calls ``ADJ`` and the Hessian of that gradient calls
``JADJ``: IPOPT's exact Hessian works through plain ``casadi.nlpsol`` and ``Opti``. Forward
derivatives are products with ``JF`` (CasADi's default for a function with a Jacobian). Every
block's sparsity is declared, so samples never couple.

The numbers come from an evaluator (:class:`nncas.oracles.evaluator.GrayBoxEvaluator`:
``value``, ``jacobian``, ``hessian``, optionally ``second_derivative``, numpy arrays per
sample), which caches per point, so the many calls CasADi's own derivative construction
makes at one point cost one forward pass. Everything here is numpy: any backend fits.
"""
from __future__ import annotations

import casadi as ca
import numpy as np

from .callback import BufferCallback, write
from .evaluator import GrayBoxEvaluator


def block_diagonal(rows: int, cols: int, blocks: int) -> ca.Sparsity:
    """Sparsity of ``blocks`` dense (rows x cols) blocks on the diagonal."""
    return ca.diagcat(*[ca.Sparsity.dense(rows, cols)] * blocks)


def graybox_function(name: str, evaluator: GrayBoxEvaluator, n_in: int, n_out: int, batch: int) -> BufferCallback:
    """The function ``F`` (see the module docstring); it keeps its derivative callbacks."""
    return _Chain(name, evaluator, n_in, n_out, batch).function()


class _Chain:
    """Builds F and, on CasADi's request, its derivative callbacks."""

    def __init__(self, name, evaluator, n, m, K):
        self.name, self.ev, self.n, self.m, self.K = name, evaluator, n, m, K
        self.dense_u, self.dense_y = ca.Sparsity.dense(n, K), ca.Sparsity.dense(m, K)
        self._sparsity: dict[int, list[ca.Sparsity]] = {}

    def function(self) -> BufferCallback:
        ev = self.ev

        def evaluate(inputs, outputs):
            write(outputs[0], ev.value(inputs[0]))

        jac = block_diagonal(self.m, self.n, self.K)
        return BufferCallback(self.name, [self.dense_u], [self.dense_y], evaluate,
                              jacobian=self.jacobian, reverse=self.reverse,
                              jac_sparsity=lambda oind, iind: jac)

    # first derivatives -----------------------------------------------------------------
    def jacobian(self) -> BufferCallback:
        ev, n, m, K = self.ev, self.n, self.m, self.K

        def evaluate(inputs, outputs):
            write(outputs[0], ev.jacobian(inputs[0]).transpose(0, 2, 1))

        has_second = hasattr(ev, "second_derivative")
        return BufferCallback(f"jac_{self.name}", [self.dense_u, self.dense_y],
                              [block_diagonal(m, n, K)], evaluate,
                              jacobian=self.jacobian_of_jacobian if has_second else None,
                              jac_sparsity=self._jacobian_of_jacobian_sparsity)

    def reverse(self, nadj: int) -> BufferCallback:
        ev, n, m, K = self.ev, self.n, self.m, self.K
        vjp = getattr(ev, "vjp", None)

        def evaluate(inputs, outputs):
            seeds = inputs[2].reshape(nadj, K, m)
            if vjp is not None:
                write(outputs[0], vjp(inputs[0], seeds))
            else:  # u_bar[d, k] = seeds[d, k] J_k: (nadj, K, 1, m) @ (K, m, n)
                write(outputs[0], np.matmul(seeds[:, :, None, :], ev.jacobian(inputs[0])))

        return BufferCallback(f"adj{nadj}_{self.name}",
                              [self.dense_u, self.dense_y, ca.Sparsity.dense(m, K * nadj)],
                              [ca.Sparsity.dense(n, K * nadj)], evaluate,
                              jacobian=lambda: self.reverse_jacobian(nadj),
                              jac_sparsity=lambda oind, iind: self._reverse_jacobian_sparsity(nadj)[iind])

    # second derivatives ----------------------------------------------------------------
    def _reverse_jacobian_sparsity(self, nadj: int) -> list[ca.Sparsity]:
        """Blocks of the Jacobian of ADJ with respect to U, Y and the seeds (built once per nadj:
        CasADi asks block by block)."""
        if nadj not in self._sparsity:
            n, m, K = self.n, self.m, self.K
            hessians = ca.repmat(block_diagonal(n, n, K), nadj, 1)
            self._sparsity[nadj] = [hessians, ca.Sparsity(n * K * nadj, m * K), block_diagonal(n, m, K * nadj)]
        return self._sparsity[nadj]

    def reverse_jacobian(self, nadj: int) -> BufferCallback:
        ev, n, m, K = self.ev, self.n, self.m, self.K

        def evaluate(inputs, outputs):
            u, seeds = inputs[0], inputs[2].reshape(nadj, m * K)
            if outputs[0].size:
                # rows of direction d, sample k, entry a; columns of sample k, entry b
                H = np.stack([ev.hessian(u, seeds[d]) for d in range(nadj)])
                write(outputs[0], H.transpose(1, 3, 0, 2))
            if outputs[2].size:
                write(outputs[2], np.broadcast_to(ev.jacobian(u), (nadj, K, m, n)))

        sparsity_out = self._reverse_jacobian_sparsity(nadj)
        sparsity_in = [self.dense_u, self.dense_y, ca.Sparsity.dense(m, K * nadj),
                       ca.Sparsity.dense(n, K * nadj)]
        return BufferCallback(f"jac_adj{nadj}_{self.name}", sparsity_in, sparsity_out, evaluate)

    def _jacobian_of_jacobian_sparsity(self, oind: int, iind: int) -> ca.Sparsity:
        """d vec(J)/d vec(U): entry J[k m + a, k n + b] depends on u_k only; nothing on Y."""
        n, m, K = self.n, self.m, self.K
        if iind == 1:
            return ca.Sparsity(m * K * n * K, m * K)
        if K == 1:  # dense; built in C++ (the triplets of a 784-input network took 1.6 s)
            return ca.Sparsity.dense(m * n, n)
        k, c, b, a = np.meshgrid(*(np.arange(s) for s in (K, n, n, m)), indexing="ij")
        rows = ((k * n + b) * m * K + k * m + a).ravel()
        cols = (k * n + c).ravel()
        return ca.Sparsity.triplet(m * K * n * K, n * K, rows.tolist(), cols.tolist())

    def jacobian_of_jacobian(self) -> BufferCallback:
        ev, n, m, K = self.ev, self.n, self.m, self.K

        def evaluate(inputs, outputs):
            # column (k, c), then rows in order (b, a): T[k, a, b, c] as (k, c, b, a)
            write(outputs[0], ev.second_derivative(inputs[0]).transpose(0, 3, 2, 1))

        sparsity_in = [self.dense_u, self.dense_y, block_diagonal(m, n, K)]
        sparsity_out = [self._jacobian_of_jacobian_sparsity(0, 0), self._jacobian_of_jacobian_sparsity(0, 1)]
        return BufferCallback(f"jac_jac_{self.name}", sparsity_in, sparsity_out, evaluate)
