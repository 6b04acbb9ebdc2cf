r"""What a gray-box backend implements: the numbers of :math:`Y = NN(U)` and its derivatives.

CasADi passes U (n x K, one sample per column) as its column-major nonzeros, a flat float64
array ``u`` of n K entries (sample after sample); ``lam`` holds the m x K multipliers the same
way. An evaluator answers with numpy float64 arrays, one block per sample k:

- ``value(u) -> (K, m)``: :math:`y_k = NN(u_k)`;
- ``jacobian(u) -> (K, m, n)``: :math:`J_k = \partial y_k / \partial u_k`;
- ``hessian(u, lam) -> (K, n, n)``: :math:`H_k = \nabla^2_{u_k} (\lambda_k^T NN(u_k))`;
- optionally ``vjp(u, seeds) -> (D, K, n)``: :math:`\bar u_{d,k} = J_k^T s_{d,k}` for seeds
  (D, K, m), a backward pass; without it nncas multiplies the Jacobian blocks;
- optionally ``second_derivative(u) -> (K, m, n, n)``: :math:`\partial^2 y_{k,a} / \partial
  u_{k,b} \partial u_{k,c}` (only when CasADi differentiates the Jacobian function itself).

CasADi asks for these many times at one point (its derivative construction, IPOPT's function,
Jacobian and Hessian requests), so an evaluator caches by point: one forward pass per
distinct ``u``. It knows nothing of CasADi: :class:`nncas.oracles.oracle.GrayBoxOracle` builds
the CasADi functions on it, and a new backend is one evaluator class, given to the gray box
as it is (:mod:`nncas.oracles.backends`).
"""
from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np

#: the methods every evaluator has (``vjp`` and ``second_derivative`` are optional)
REQUIRED = ("value", "jacobian", "hessian")


@runtime_checkable
class GrayBoxEvaluator(Protocol):
    """The protocol of the module docstring (``vjp`` and ``second_derivative`` optional)."""

    n_in: int
    n_out: int
    batch: int

    def value(self, u: np.ndarray) -> np.ndarray:
        """(K, m) outputs at ``u``."""

    def jacobian(self, u: np.ndarray) -> np.ndarray:
        """(K, m, n) Jacobian blocks at ``u``."""

    def hessian(self, u: np.ndarray, lam: np.ndarray) -> np.ndarray:
        """(K, n, n) Hessians of ``lam``-weighted outputs at ``u``."""
