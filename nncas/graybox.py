r"""Gray-box formulation: one vector constraint :math:`NN(u) - y = 0` evaluated by torch.

The solver sees only the inputs ``u`` and the outputs ``y`` (new variables). When ``x`` is
not a plain Opti variable, ``u`` is a new variable with ``u == x``. The oracle supplies the
function, its dense Jacobian and the Hessian of :math:`\lambda^T NN(u)`; :func:`nncas.solver`
places those blocks into the NLP's Jacobian and Lagrangian Hessian.
"""
from __future__ import annotations

import weakref
from dataclasses import dataclass

import casadi as ca
import numpy as np

from .formulation import Formulation, LayerHandle

_BLOCKS: "weakref.WeakKeyDictionary[ca.Opti, list[GrayBoxBlock]]" = weakref.WeakKeyDictionary()


@dataclass(eq=False)
class GrayBoxBlock:
    """A gray-box constraint ``oracle(u) - y == 0`` inside an Opti problem."""

    oracle: object
    inputs: ca.MX
    outputs: ca.MX
    call: ca.MX
    constraint: ca.MX


def blocks_of(opti: ca.Opti) -> list[GrayBoxBlock]:
    """The gray-box blocks added to ``opti`` so far."""
    return _BLOCKS.get(opti, [])


def add_graybox(opti: ca.Opti, form: Formulation, x0: np.ndarray, oracle) -> ca.MX:
    u = form.inputs
    batch = u.size2()
    if not u.is_symbolic():
        u = form.add_variable(opti, form.n_in, x0, columns=batch)
        form.add_constraint(opti, u == form.inputs)
    y = form.add_variable(opti, form.n_out, oracle.function(x0), columns=batch)
    call = oracle.function(u)
    constraint = form.add_constraint(opti, call - y == 0)
    form.layers.append(LayerHandle(0, oracle, y, [y], [constraint]))
    form.oracle = oracle
    _BLOCKS.setdefault(opti, []).append(GrayBoxBlock(oracle, u, y, call, constraint))
    return y
