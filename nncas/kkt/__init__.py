r"""Which linear solver factorizes IPOPT's KKT matrix, and the dense one nncas ships.

IPOPT solves, every iteration and often more than once (inertia correction), the symmetric
indefinite system

.. math:: K = \begin{bmatrix} W + \Sigma + \delta_w I & J^T \\ J & -\delta_c I \end{bmatrix}

(W the Lagrangian Hessian, J the constraint Jacobian, slacks included). A reduced-space or
gray-box network makes W dense: at 784 inputs K is a 785 x 785 matrix that is 99 % nonzero,
where MUMPS's sparse machinery only adds cost. ``libnncas_dense_ldlt.so`` (``dense_ldlt.c``,
built with the package by ``pip install``) factorizes K densely (scaled Bunch-Kaufman LDL^T, LAPACK ``dsytrf``)
and reports its inertia; IPOPT loads it through MA27's run-time interface (``hsllib``).

``kkt_solver`` of :func:`nncas.nlpsol` and :func:`nncas.solver`:

- ``"auto"`` (default): the dense solver when K is dense — at most :data:`DENSE_ROWS_MAX` rows,
  at least :data:`DENSE_FILL_MIN` of its lower triangle nonzero, and not a set of independent
  blocks (the dense cost :math:`N^3` at most :data:`BLOCK_COST_RATIO` times the blocks'
  :math:`\sum_i n_i^3`), estimated from the sparsity of W and J — and the library is built;
  otherwise IPOPT's default (MUMPS). "Dense" is judged after the solver's first step: the
  variables with a diagonal Hessian row (a lifted layer's inputs) and the slacks are
  eliminated first, when each such variable touches most of the constraint rows (see
  :class:`KktShape`). A linear solver named in the options
  (``ipopt.linear_solver``, ``hsllib``, ``pardisolib``) wins.
- ``"dense"``: the dense solver whatever the structure.
- ``"ipopt"``: leave IPOPT's options as given (stock MUMPS unless they say otherwise).

:func:`choice` tells which one an NLP gets. Where the dense solver is chosen, IPOPT options it
cannot honour (``linear_system_scaling="mc19"``: MC19 is HSL's) are refused with an
:class:`~nncas.errors.InputError` before the solve.

Modules: :mod:`~nncas.kkt.library` (the dense solver's library, loaded and bound),
:mod:`~nncas.kkt.shape` (the KKT matrix's size and fill), :mod:`~nncas.kkt.solvers` (the table
of linear solvers and auto's rule), :mod:`~nncas.kkt.plan` (nlp -> derivative functions ->
shape -> solver -> options, for :func:`nncas.nlpsol`, :func:`nncas.solver` and :func:`choice`).
"""
from __future__ import annotations

from ..nlp import checked_nlp
from .library import HOW_TO_BUILD, LIBRARY, DenseSolverMissing, dense_library, dense_options, load, scipy_openblas
from .plan import Plan, plan
from .shape import (BLOCK_COST_RATIO, CLIQUE_COST_RATIO, DENSE_FILL_MIN, DENSE_ROWS_MAX, KktShape, bounds_as_bounds,
                    kkt_shape, nlp_shape)
from .solvers import CHOICES, SCALINGS, SOLVERS, solver_for_shape

__all__ = ["BLOCK_COST_RATIO", "CHOICES", "CLIQUE_COST_RATIO", "DENSE_FILL_MIN", "DENSE_ROWS_MAX", "HOW_TO_BUILD",
           "LIBRARY", "SCALINGS", "SOLVERS", "DenseSolverMissing", "KktShape", "Plan", "bounds_as_bounds", "choice",
           "dense_library", "dense_options", "kkt_shape", "load", "nlp_shape", "plan", "scipy_openblas",
           "solver_for_shape"]


def choice(nlp: dict, plugin: str = "ipopt", options: dict | None = None, kkt_solver: str = "auto") -> str:
    """``"dense"`` or ``"ipopt"``: the linear solver :func:`nncas.nlpsol` gives ``nlp`` (an nlp
    dict) with these arguments."""
    return plan(*checked_nlp(nlp), plugin, options, kkt_solver).kkt_solver
