"""``add_predictor``: put a trained torch network into a CasADi ``Opti`` problem.

A thin sink over :func:`nncas.embedding.build`: the embedding's variables are Opti variables,
its start values and constraints go to the Opti. The Opti keeps the embedding (and so a gray
box's oracle) alive.
"""
from __future__ import annotations

import casadi as ca
import numpy as np

from .embedding import _as_inputs, build
from .errors import InputTypeError
from .formulation import Embedding


def add_predictor(opti: ca.Opti, net, x, *, formulation: str = "full", backend: str = "torch",
                  device: str = "cpu", config: dict | None = None, input_bounds=None,
                  relaxation: float = 0.0, translations: dict | None = None,
                  graybox_output: str = "expression", graybox_input: str = "auto",
                  input_shape: tuple | None = None, verify: bool = True, **oracle_options):
    r"""Embed ``y = net(x)`` in ``opti``; return ``(y, embedding)``.

    ``x`` is an MX column (n_in, 1) or matrix (n_in, K) of Opti variables, parameters or
    expressions of them; start values come from a forward pass at ``x``'s initial value
    (``opti.set_initial`` before calling). The options are :func:`nncas.embed`'s. Variable
    bounds of the embedding become ``opti.bounded`` constraints (variable bounds for IPOPT
    with the ``detect_simple_bounds`` option, which :func:`nncas.solver` sets where the KKT
    matrix is dense).

    Example
    -------
    >>> import casadi as ca, torch, nncas
    >>> net = torch.nn.Sequential(torch.nn.Linear(2, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1))
    >>> opti = ca.Opti(); x = opti.variable(2)
    >>> y, form = nncas.add_predictor(opti, net, x, formulation="reduced")
    >>> y.shape
    (1, 1)
    """
    if not isinstance(opti, ca.Opti):
        raise InputTypeError(f"add_predictor needs a casadi.Opti as first argument, got {type(opti).__name__}.")
    x = _as_inputs(x)
    if not isinstance(x, ca.MX):
        raise InputTypeError("x must be casadi.MX (Opti variables, parameters or expressions of them).")
    # densify: inputs with structural zeros (e.g. offline units) would come back as a sparse matrix
    x0 = np.asarray(opti.value(ca.densify(x), opti.initial() + opti.value_parameters()), dtype=float)
    x0 = x0.reshape(x.shape)
    form = build(net, x, x0, lambda rows, cols: opti.variable(rows, cols), formulation=formulation,
                 backend=backend, device=device, config=config, input_bounds=input_bounds,
                 relaxation=relaxation, translations=translations, graybox_output=graybox_output,
                 graybox_input=graybox_input, input_shape=input_shape, verify=verify, **oracle_options)
    _add_to(opti, form)
    return form.outputs, form


def _add_to(opti: ca.Opti, form: Embedding) -> None:
    for v in form.variable_blocks:
        opti.set_initial(v.symbol, v.start)
        _subject_to(opti, v.symbol, v.lower, v.upper)
    for c in form.constraint_blocks:
        c.opti_constraint = _subject_to(opti, c.expression, c.lower, c.upper)
    # CasADi holds no reference to a Python callback: the Opti keeps the embedding's oracle
    opti._nncas_embeddings = getattr(opti, "_nncas_embeddings", []) + [form]


def _subject_to(opti: ca.Opti, expression, lower: np.ndarray, upper: np.ndarray):
    """``lower <= expression <= upper`` on the entries with a finite bound; returns the
    constraint added (None when every bound is infinite)."""
    finite = np.isfinite(lower) | np.isfinite(upper)
    if not finite.any():
        return None
    if not finite.all():
        index = np.flatnonzero(finite.reshape(-1, order="F")).tolist()
        expression, lower, upper = ca.vec(expression)[index], lower.reshape(-1, order="F")[index], \
            upper.reshape(-1, order="F")[index]
    if np.array_equal(lower, upper):
        constraint = expression == lower
    elif np.isinf(lower).all():
        constraint = expression <= upper
    elif np.isinf(upper).all():
        constraint = expression >= lower
    else:
        constraint = opti.bounded(lower, expression, upper)
    opti.subject_to(constraint)
    return constraint
