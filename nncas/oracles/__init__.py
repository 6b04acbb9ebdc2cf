"""Gray-box oracles: CasADi functions for y = NN(u), its Jacobian and the Hessian of lam^T NN(u).

A backend supplies an evaluator (:class:`GrayBoxEvaluator`: numpy values and derivative
blocks); :class:`GrayBoxOracle` offers on it the three CasADi functions, which
:func:`nncas.solver` assembles into the constraint Jacobian and the Lagrangian Hessian with one
call each per iteration:

- ``function``: u (n_in) -> y (n_out), named with :data:`MARKER` (:func:`is_graybox`)
- ``jacobian``: u -> dy/du (n_out x n_in, dense)
- ``hessian``:  u, lam (n_out) -> d^2 (lam^T NN(u)) / du^2 (n_in x n_in, dense)
"""
from .evaluator import GrayBoxEvaluator
from .oracle import MARKER, GrayBoxOracle, callback_of, is_graybox

__all__ = ["GrayBoxEvaluator", "GrayBoxOracle", "MARKER", "callback_of", "is_graybox"]
