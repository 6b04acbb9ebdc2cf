r"""Full-space formulation: every layer's output becomes a decision variable.

For an affine layer :math:`z_l = W_l a_{l-1} + b_l` and an activation :math:`a_l = \sigma(z_l)`,
both are added as equality constraints on new variables. Start values come from a forward
pass at the input's initial value; bounds come from interval propagation of the input box.

Per-layer alternatives are picked by ``config`` (keyed by layer class or class name):

- ``"full"`` (default): a variable and an equality constraint;
- ``"reduced"``: no variable, the layer's expression is passed on to the next layer;
- ``"complementarity"`` (default for ReLU and LeakyReLU): with :math:`r = \max(-z, 0)`,
  :math:`r \ge 0,\ r + z \ge 0,\ r (r + z) \le \varepsilon,\ a = z + (1 - s) r`
  (slope :math:`s`; :math:`\varepsilon` = ``relaxation``, 0 for exact complementarity).
"""
from __future__ import annotations

import casadi as ca
import numpy as np

from .formulation import Formulation, LayerHandle
from .layers import LeakyReLU, ReLU

CHOICES = ("full", "reduced", "complementarity")


def layer_choice(layer, config: dict) -> str:
    kind = type(layer)
    choice = config.get(kind, config.get(kind.__name__))
    if choice is None:
        choice = "complementarity" if isinstance(layer, (ReLU, LeakyReLU)) else "full"
    if choice not in CHOICES:
        raise ValueError(f"config[{kind.__name__}] = {choice!r}; choose one of {CHOICES}.")
    if choice == "complementarity" and not isinstance(layer, (ReLU, LeakyReLU)):
        raise ValueError(f"config[{kind.__name__}] = 'complementarity' applies to ReLU and LeakyReLU only.")
    return choice


def add_full_space(opti: ca.Opti, form: Formulation, net, x0: np.ndarray, box, config: dict,
                   relaxation: float) -> ca.MX:
    """Add the layers of ``net`` to ``opti``; return the output column."""
    values = x0
    bounds = net.interval(*box) if box is not None else [None] * len(net.layers)
    current = form.inputs
    for index, (layer, bound) in enumerate(zip(net.layers, bounds)):
        handle = LayerHandle(index, layer, current)
        z0, values = values, layer.numpy(values)
        choice = layer_choice(layer, config)
        if choice == "reduced":
            current = layer.casadi(current)
        elif choice == "complementarity":
            current = _complementarity(opti, form, handle, layer, current, z0, values, relaxation)
        else:
            out = form.add_variable(opti, layer.n_out, values, handle)
            form.add_constraint(opti, out == layer.casadi(current), handle)
            current = out
        if bound is not None and choice != "reduced":
            _bound(opti, form, handle, current, *bound)
        handle.output = current
        form.layers.append(handle)
    return current


def _complementarity(opti, form, handle, layer, z, z0, a0, relaxation):
    slope = layer.negative_slope if isinstance(layer, LeakyReLU) else 0.0
    r = form.add_variable(opti, layer.n_out, np.maximum(-z0, 0), handle)
    a = form.add_variable(opti, layer.n_out, a0, handle)
    form.add_constraint(opti, r >= 0, handle)
    form.add_constraint(opti, r + z >= 0, handle)
    form.add_constraint(opti, r * (r + z) <= relaxation, handle)
    form.add_constraint(opti, a == z + (1 - slope) * r, handle)
    return a


def _bound(opti, form, handle, v, lo, hi):
    """Add ``lo <= v <= hi`` on the finite entries (interval bounds widened by 1e-8)."""
    finite = np.flatnonzero(np.isfinite(lo) & np.isfinite(hi))
    if finite.size == 0:
        return
    pad = 1e-8 * (1 + np.abs(hi[finite] - lo[finite]))
    rows = v[finite.tolist()] if finite.size < v.numel() else v
    form.add_constraint(opti, opti.bounded(lo[finite] - pad, rows, hi[finite] + pad), handle)
