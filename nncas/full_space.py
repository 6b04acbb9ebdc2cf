r"""Full-space formulation: every layer's output becomes a decision variable.

For an affine layer :math:`z_l = W_l a_{l-1} + b_l` and an activation :math:`a_l = \sigma(z_l)`,
both are added as equality constraints on new variables. Start values come from a forward
pass at the input's start value; variable bounds come from interval propagation of the input box.

Per-layer alternatives are picked by ``config`` (keyed by layer type name; a class, nncas's or
torch's, stands for its name):

- ``"full"`` (default): a variable and an equality constraint;
- ``"reduced"``: no variable, the layer's expression is passed on to the next layer;
- ``"complementarity"`` (default for ReLU, LeakyReLU and MaxPool): for max pooling see
  :func:`_max_complementarity`; for ReLU, with :math:`r = \max(-z, 0)`,
  :math:`r \ge 0` (a variable bound), :math:`r + z \ge 0,\ r (r + z) \le \varepsilon,\ a = z + (1 - s) r`
  (slope :math:`s`; :math:`\varepsilon` = ``relaxation``, 0 for exact complementarity).
"""
from __future__ import annotations

import casadi as ca
import numpy as np

from .errors import InputError
from .formulation import Embedding, LayerHandle
from .layers import LeakyReLU, MaxPool, ReLU

CHOICES = ("full", "reduced", "complementarity")
#: layers with a complementarity formulation (their default in the full space)
PIECEWISE = (ReLU, LeakyReLU, MaxPool)


def layer_choice(layer, config: dict) -> str:
    """The formulation of ``layer`` from ``config`` (keyed by layer type name)."""
    kind = type(layer)
    choice = config.get(kind.__name__)
    if choice is None:
        choice = "complementarity" if isinstance(layer, PIECEWISE) else "full"
    if choice not in CHOICES:
        raise InputError(f"config[{kind.__name__}] = {choice!r}; choose one of {CHOICES}.")
    if choice == "complementarity" and not isinstance(layer, PIECEWISE):
        raise InputError(f"config[{kind.__name__}] = 'complementarity' applies to ReLU, LeakyReLU and "
                         "MaxPool only.")
    return choice


def add_full_space(form: Embedding, net, x, x0: np.ndarray, box, config: dict, relaxation: float):
    """Add the layers of ``net`` on the input column ``x`` to ``form``; return the output column.

    Variables start at a forward pass from ``x0``; with an input ``box`` every variable gets
    the interval bounds of its layer (widened by 1e-8 relative) as variable bounds.
    """
    values = x0
    bounds = net.interval(*box) if box is not None else [None] * len(net.layers)
    current = x
    for index, (layer, bound) in enumerate(zip(net.layers, bounds)):
        handle = LayerHandle(index, layer, current)
        z0, values = values, layer.numpy(values)
        lower, upper = _widened(bound)
        choice = layer_choice(layer, config)
        if choice == "reduced":
            current = layer.casadi(current)
        elif choice == "complementarity" and isinstance(layer, MaxPool):
            current = _max_complementarity(form, handle, layer, current, z0, values, relaxation, lower, upper)
        elif choice == "complementarity":
            current = _complementarity(form, handle, layer, current, z0, values, relaxation, lower, upper)
        else:
            out = form.add_variable(layer.n_out, 1, values, lower, upper, handle)
            form.add_constraint(out - layer.casadi(current), handle=handle)
            current = out
        handle.output = current
        form.layers.append(handle)
    return current


def _complementarity(form, handle, layer, z, z0, a0, relaxation, lower, upper):
    slope = layer.negative_slope if isinstance(layer, LeakyReLU) else 0.0
    r = form.add_variable(layer.n_out, 1, np.maximum(-z0, 0), 0.0, np.inf, handle)
    a = form.add_variable(layer.n_out, 1, a0, lower, upper, handle)
    form.add_constraint(r + z, 0.0, np.inf, handle)
    form.add_constraint(r * (r + z), -np.inf, relaxation, handle)
    form.add_constraint(a - (z + (1 - slope) * r), handle=handle)
    return a


def _max_complementarity(form, handle, layer, z, z0, y0, relaxation, lower, upper):
    r"""Max pooling, :math:`y_j = \max_{i \in W_j} z_i`, as :math:`y_j - z_i \ge 0`,
    :math:`\lambda_{ji} \ge 0`, :math:`\sum_i \lambda_{ji} = 1`,
    :math:`\lambda_{ji} (y_j - z_i) \le \varepsilon` (some entry attains the maximum);
    :math:`\lambda` starts at 1 on the arg-max of the start point."""
    rows, cols = layer.entries()
    y = form.add_variable(layer.n_out, 1, y0, lower, upper, handle)
    padded = np.concatenate([np.asarray(z0, dtype=float).reshape(-1), [-np.inf]])
    winners = np.argmax(padded[layer.windows], axis=1)  # slot of each window's maximum
    _, slots = np.nonzero(layer.windows >= 0)
    lam0 = (slots == winners[rows]).astype(float)
    lam = form.add_variable(rows.size, 1, lam0, 0.0, 1.0, handle)
    gap = y[rows.tolist()] - z[cols.tolist()]
    form.add_constraint(gap, 0.0, np.inf, handle)
    choose = ca.DM(ca.Sparsity.triplet(layer.n_out, rows.size, rows.tolist(), list(range(rows.size))), 1.0)
    form.add_constraint(ca.mtimes(choose, lam), 1.0, 1.0, handle)
    form.add_constraint(lam * gap, -np.inf, relaxation, handle)
    return y


def _widened(bound):
    """Interval bounds widened by 1e-8 (1 + width) so the forward pass stays strictly inside;
    (-inf, inf) without a box."""
    if bound is None:
        return -np.inf, np.inf
    lo, hi = bound
    pad = 1e-8 * (1 + np.abs(hi - lo))
    return lo - pad, hi + pad


def add_full_space_graph(form: Embedding, graph, x, x0: np.ndarray, box, config: dict, relaxation: float):
    """The full space of a :class:`nncas.graph.GraphNetwork`: each chain as :func:`add_full_space`
    (on its input's interval bounds), sums and concatenations passed on as expressions. Each
    node carries (expression, start value)."""
    bounds = graph.interval(*box) if box is not None else None

    def chain(node, pair):
        sub_box = bounds[node.inputs[0]] if bounds is not None else None
        return (add_full_space(form, node.chain, pair[0], pair[1], sub_box, config, relaxation),
                node.chain.numpy(pair[1]))

    def total(pairs, node):
        return tuple(node.constant + sum(c * p[i] for c, p in zip(node.coefficients, pairs)) for i in (0, 1))

    def stack(pairs):
        return ca.vertcat(*[p[0] for p in pairs]), np.concatenate([p[1] for p in pairs])

    return graph.walk((x, x0), chain, total, stack)[graph.nodes[-1].name][0]
