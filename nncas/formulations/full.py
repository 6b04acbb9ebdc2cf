r"""The full space: every layer's output becomes a decision variable.

For an affine layer :math:`z_l = W_l a_{l-1} + b_l` and an activation :math:`a_l = \sigma(z_l)`,
both are added as equality constraints on new variables. Start values come from a forward
pass at the input's start value; variable bounds come from interval propagation of the input box.

Per-layer alternatives are picked by ``config`` (keyed by layer type name; a class, nncas's or
torch's, stands for its name):

- ``"full"`` (default): a variable :math:`a` and the equality :math:`a - f(z) = 0`;
- ``"reduced"``: no variable, the layer's expression is passed on to the next layer;
- the layer type's own form in :data:`RULES` (its default where it has one):
  ``"complementarity"`` for ReLU and LeakyReLU (:func:`relu_complementarity`) and MaxPool
  (:func:`max_complementarity`). A new layer's full-space form is one entry there, or per
  formulation ``FullSpace(rules={LayerType: FullSpaceRule(name, add)})``.
"""
from __future__ import annotations

import numbers
from dataclasses import dataclass
from typing import Callable

import casadi as ca
import numpy as np

from ..embedding import Embedding, LayerHandle
from ..errors import InputError, InputTypeError
from ..graph import stack_interval
from ..layers import Layer, LeakyReLU, MaxPool, ReLU
from .base import Context, Formulation, embedding_of, network_of

#: the forms every layer takes
GENERIC = ("full", "reduced")


@dataclass(frozen=True)
class FullSpaceRule:
    """A layer type's own full-space form, chosen by ``name`` in ``config``.

    ``add(form, handle, layer, z, z0, a0, lower, upper, relaxation)`` adds the layer on its input
    expression ``z`` (start ``z0``) to ``form`` (:meth:`Embedding.add_variable`,
    :meth:`Embedding.add_constraint`, with ``handle``) and returns its output expression; ``a0``
    is the output's start value, ``(lower, upper)`` its interval bounds (-inf, inf without a box).
    """

    name: str
    add: Callable


def relu_complementarity(form, handle, layer, z, z0, a0, lower, upper, relaxation):
    r"""ReLU and LeakyReLU (slope :math:`s`) with :math:`r = \max(-z, 0)`: :math:`r \ge 0`
    (a variable bound), :math:`r + z \ge 0`, :math:`r (r + z) \le \varepsilon`,
    :math:`a = z + (1 - s) r`."""
    slope = layer.negative_slope if isinstance(layer, LeakyReLU) else 0.0
    r = form.add_variable(layer.n_out, 1, np.maximum(-z0, 0), 0.0, np.inf, handle)
    a = form.add_variable(layer.n_out, 1, a0, lower, upper, handle)
    form.add_constraint(r + z, 0.0, np.inf, handle)
    form.add_constraint(r * (r + z), -np.inf, relaxation, handle)
    form.add_constraint(a - (z + (1 - slope) * r), handle=handle)
    return a


def max_complementarity(form, handle, layer, z, z0, y0, lower, upper, relaxation):
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


#: layer type -> its own full-space form (subclasses included)
RULES: dict[type, FullSpaceRule] = {
    ReLU: FullSpaceRule("complementarity", relu_complementarity),
    LeakyReLU: FullSpaceRule("complementarity", relu_complementarity),
    MaxPool: FullSpaceRule("complementarity", max_complementarity),
}


class FullSpace(Formulation):
    r"""Variables and constraints per layer.

    ``config``: ``{layer type or its name: "full" | "reduced" | its own form's name}``;
    ``relaxation``: :math:`\varepsilon \ge 0` of the complementarities; ``rules``:
    ``{layer type: FullSpaceRule}`` added to (or replacing entries of) :data:`RULES` here.
    """

    kind = "full"
    keywords = {"config": ("config", None), "relaxation": ("relaxation", 0.0)}

    def __init__(self, config: dict | None = None, relaxation: float = 0.0, rules: dict | None = None):
        if not (isinstance(relaxation, numbers.Real) and not isinstance(relaxation, bool)
                and np.isfinite(relaxation) and relaxation >= 0):
            raise InputError(f"relaxation must be a finite number >= 0 (the ReLU complementarity's epsilon), "
                             f"got {relaxation!r}.")
        if not isinstance(rules, (dict, type(None))) or not all(
                isinstance(k, type) and issubclass(k, Layer) and isinstance(v, FullSpaceRule)
                for k, v in (rules or {}).items()):
            raise InputTypeError(f"rules={rules!r}; give {{nncas.layers type: FullSpaceRule(name, add)}}.")
        if not isinstance(config, (dict, type(None))):
            raise InputTypeError(f"config={config!r}; give a dict {{layer type or name: form}}, e.g. "
                                 "{'Tanh': 'reduced'}.")
        self.relaxation = float(relaxation)
        self.rules = {**RULES, **(rules or {})}
        self.config = config
        self._choices = {k if isinstance(k, str) else getattr(k, "__name__", repr(k)): v
                         for k, v in (config or {}).items()}
        known = GENERIC + tuple(sorted({rule.name for rule in self.rules.values()}))
        for name, choice in self._choices.items():
            if choice not in known:
                raise InputError(f"config[{name}] = {choice!r}; choose one of {known}.")

    def _rule(self, layer) -> FullSpaceRule | None:
        return next((self.rules[kind] for kind in type(layer).__mro__ if kind in self.rules), None)

    def _form(self, layer) -> str | FullSpaceRule:
        """How ``layer`` is added: "full", "reduced", or by its type's rule."""
        rule = self._rule(layer)
        name = type(layer).__name__
        choice = self._choices.get(name, rule.name if rule is not None else "full")
        if choice in GENERIC:
            return choice
        if rule is None or rule.name != choice:
            owners = sorted({kind.__name__ for kind, r in self.rules.items() if r.name == choice})
            raise InputError(f"config[{name}] = {choice!r} applies to {', '.join(owners)} only.")
        return rule

    def build(self, net, x, x0, new_symbol, context: Context) -> Embedding:
        network = network_of(net, x, context)
        names = {type(layer).__name__ for layer in network.layers}
        unknown = sorted(set(self._choices) - names)
        if unknown:
            raise InputError(f"config names {', '.join(unknown)}, which is no layer of {network.name}; its layer "
                             f"types are {', '.join(sorted(names))}.")
        form = embedding_of(self, network, x, new_symbol)

        def chain(layers, value):
            return self._chain(form, layers, *value)

        def total(values, node):
            box = None if values[0][2] is None else node.total_interval([v[2] for v in values])
            return node.total([v[0] for v in values]), node.total([v[1] for v in values]), box

        def stack(values):
            box = None if values[0][2] is None else stack_interval([v[2] for v in values])
            return ca.vertcat(*[v[0] for v in values]), np.concatenate([v[1] for v in values]), box

        form.outputs = ca.horzcat(*[network.walk((x[:, k], x0[:, k], context.box), chain, total, stack)[0]
                                    for k in range(x.size2())])
        return form

    def _chain(self, form: Embedding, chain, x, x0: np.ndarray, box):
        """The layers of ``chain`` on the input column ``x`` (start ``x0``, interval ``box`` or
        None) added to ``form``; returns (output, its start value, its box). Variables start at
        the forward pass; with a box they get their layer's bounds (widened by 1e-8 relative)."""
        values = x0
        bounds = chain.interval(*box) if box is not None else [None] * len(chain.layers)
        current = x
        for index, (layer, bound) in enumerate(zip(chain.layers, bounds)):
            handle = LayerHandle(index, layer, current)
            z0, values = values, layer.numpy(values)
            lower, upper = _widened(bound)
            rule = self._form(layer)
            if rule == "reduced":
                current = layer.casadi(current)
            elif rule == "full":
                out = form.add_variable(layer.n_out, 1, values, lower, upper, handle)
                form.add_constraint(out - layer.casadi(current), handle=handle)
                current = out
            else:
                current = rule.add(form, handle, layer, current, z0, values, lower, upper, self.relaxation)
            handle.output = current
            form.layers.append(handle)
        return current, values, (bounds[-1] if bounds and box is not None else box)


def _widened(bound):
    """Interval bounds widened by 1e-8 (1 + width) so the forward pass stays strictly inside;
    (-inf, inf) without a box."""
    if bound is None:
        return -np.inf, np.inf
    lo, hi = bound
    pad = 1e-8 * (1 + np.abs(hi - lo))
    return lo - pad, hi + pad
