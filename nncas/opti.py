"""``add_predictor``: the Opti sink of the embedding pipeline (:func:`nncas.building.build`).

The embedding's variables are Opti variables, its start values and constraints go to the Opti,
and the Opti keeps the embedding in its record (:func:`nncas.opti_state.opti_state`). A gray
box's oracle is kept alive by the expression graphs that call it (:mod:`nncas.oracles.keeper`);
the Opti's record is what keeps it only where the keeper library is missing.
"""
from __future__ import annotations

import casadi as ca
import numpy as np

from .building import _as_inputs, build
from .embedding import Embedding
from .errors import InputTypeError
from .formulations import resolve
from .opti_state import opti_state


def add_predictor(opti: ca.Opti, net, x, formulation="full", *, input_bounds=None, input_shape: tuple | None = None,
                  translations: dict | None = None, verify: bool = True, **options):
    r"""Embed ``y = net(x)`` in ``opti``; return ``(y, embedding)``.

    ``x`` is an MX column (n_in, 1) or matrix (n_in, K) of Opti variables, parameters or
    expressions of them; start values come from a forward pass at ``x``'s initial value
    (``opti.set_initial`` before calling). The other arguments are :func:`nncas.embed`'s.
    Variable bounds of the embedding become ``opti.bounded`` constraints (variable bounds for
    IPOPT with the ``detect_simple_bounds`` option, which :func:`nncas.solver` sets where the KKT
    matrix is dense).

    Example
    -------
    >>> import casadi as ca, torch, nncas
    >>> net = torch.nn.Sequential(torch.nn.Linear(2, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1))
    >>> opti = ca.Opti(); x = opti.variable(2)
    >>> y, form = nncas.add_predictor(opti, net, x, nncas.ReducedSpace())
    >>> y.shape, form.kind
    ((1, 1), 'reduced')
    """
    formulation = resolve(formulation, **options)
    if not isinstance(opti, ca.Opti):
        raise InputTypeError(f"add_predictor needs a casadi.Opti as first argument, got {type(opti).__name__}.")
    x = _as_inputs(x)
    if not isinstance(x, ca.MX):
        raise InputTypeError("x must be casadi.MX (Opti variables, parameters or expressions of them).")
    # densify: inputs with structural zeros (e.g. offline units) would come back as a sparse matrix
    x0 = np.asarray(opti.value(ca.densify(x), opti.initial() + opti.value_parameters()), dtype=float)
    x0 = x0.reshape(x.shape)
    form = build(net, x, x0, lambda rows, cols: opti.variable(rows, cols), formulation, input_bounds=input_bounds,
                 input_shape=input_shape, translations=translations, verify=verify)
    _add_to(opti, form)
    return form.outputs, form


def _add_to(opti: ca.Opti, form: Embedding) -> None:
    for v in form.variable_blocks:
        opti.set_initial(v.symbol, v.start)
        _subject_to(opti, v.symbol, v.lower, v.upper)
    for c in form.constraint_blocks:
        c.opti_constraint = _subject_to(opti, c.expression, c.lower, c.upper)
    # the graph keeps a gray box's oracle (nncas.oracles.keeper); without the keeper library, this does
    opti_state(opti).embeddings.append(form)


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
