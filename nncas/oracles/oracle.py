r"""A gray-box oracle: the CasADi Functions of :math:`Y = NN(U)` over any evaluator.

:class:`GrayBoxOracle` turns an evaluator (:mod:`nncas.oracles.evaluator`) into

- ``function``: U (n x K) -> Y (m x K), a CasADi Function with all its derivatives
  (:mod:`nncas.oracles.graybox_function`) that keeps its evaluator alive while any graph
  calls it (:mod:`nncas.oracles.keeper`);
- ``jacobian``: U -> :math:`\partial\,\mathrm{vec}(Y)/\partial\,\mathrm{vec}(U)` (block diagonal);
- ``hessian``: (U, :math:`\Lambda`) -> :math:`\nabla^2 \sum_k \lambda_k^T NN(u_k)` (block diagonal).

Every gray-box Function nncas makes (``function`` and the callback ``F`` it calls, which is
what a graph holds once ``function`` is inlined) is named with :data:`MARKER`;
:func:`is_graybox` is how nncas recognizes one in an expression graph
(:mod:`nncas.derivatives`), and any other called function (an interpolant, a user's external
or callback) stays algebra that CasADi differentiates itself.
"""
from __future__ import annotations

import casadi as ca

from .evaluator import GrayBoxEvaluator
from .graybox_function import graybox_function
from .keeper import kept

#: the name prefix of every gray-box Function nncas makes
MARKER = "nncas_graybox_"


def is_graybox(function: ca.Function) -> bool:
    """Whether ``function`` is one of nncas's gray boxes (by its name)."""
    return function.name().startswith(MARKER)


def callback_of(function: ca.Function) -> ca.Function:
    """The callback ``F`` that differentiates the gray box ``function``: ``function`` itself, or
    the one the keeper's wrapper ``G`` calls."""
    if function.class_name() != "MXFunction":
        return function
    for k in range(function.n_instructions()):
        if function.instruction_id(k) == ca.OP_CALL:
            inner = function.instruction_MX(k).which_function()
            if is_graybox(inner):
                return inner
    raise ValueError(f"{function.name()} calls no gray-box callback")


class GrayBoxOracle:
    """``function``, ``jacobian`` and ``hessian`` (the module docstring) of ``evaluator``.

    Other attributes are the evaluator's (``evaluations``, the torch oracle's
    ``hessian_tensor``, l4casadi's ``external``, ...).
    """

    def __init__(self, evaluator: GrayBoxEvaluator, name: str):
        self.evaluator = evaluator
        self.name = f"{MARKER}{name}"
        callback = graybox_function(f"{self.name}_callback", evaluator, evaluator.n_in, evaluator.n_out,
                                    evaluator.batch)
        self.function = kept(self.name, callback)
        u = ca.MX.sym("u", callback.sparsity_in(0))
        lam = ca.MX.sym("lam", callback.sparsity_out(0))
        y = self.function(u)  # the nominal output through `function`: these keep the gray box too
        self.jacobian = ca.Function(f"{self.name}_jacobian", [u], [callback.jacobian()(u, y)], ["u"], ["jac"])
        hess = callback.reverse(1).jacobian()(u, y, lam, ca.MX(u.sparsity()))[0]
        self.hessian = ca.Function(f"{self.name}_hessian", [u, lam], [hess], ["u", "lam"], ["hess"])

    def __getattr__(self, attribute):
        if attribute == "evaluator":  # not set yet (during __init__, or a copy being built)
            raise AttributeError(attribute)
        return getattr(self.evaluator, attribute)
