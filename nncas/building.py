"""The pipeline every sink shares, and ``embed``, its nlp-dict sink.

:func:`build` checks the inputs, resolves the formulation (:func:`nncas.formulations.resolve`),
lets it build the :class:`~nncas.embedding.Embedding`, checks that against the torch module
(:mod:`nncas.verification`) and adds the input box's rows. :func:`embed` hands the result to
``casadi.nlpsol`` users; :func:`nncas.add_predictor` (:mod:`nncas.opti`) to an ``Opti``.
"""
from __future__ import annotations

import math

import casadi as ca
import numpy as np
import torch

from .embedding import Embedding
from .errors import InputError, InputTypeError
from .formulations import Context, Formulation, resolve
from .torch_import import parse_input_shape
from .verification import Unverifiable, Verification, verify as verify_embedding


def embed(net, x, formulation="full", *, input_bounds=None, x0=None, input_shape: tuple | None = None,
          translations: dict | None = None, verify: bool = True, **options) -> Embedding:
    r"""Embed ``y = net(x)``; return an :class:`Embedding` for an nlp dict.

    Parameters
    ----------
    net : torch.nn.Module (or a translated :class:`nncas.Network` for the full and reduced space)
        Evaluated with evaluation-mode semantics (dropout off, batch norm from running stats).
    x : casadi.MX or casadi.SX column (n_in, 1), or matrix (n_in, K) for K inputs at once
        Any expression of the decision variables and parameters (SX for the full and reduced
        space only). With K columns ``y`` is (n_out, K); a gray box evaluates all K in one call.
    formulation : nncas.FullSpace | nncas.ReducedSpace | nncas.GrayBox, or "full" | "reduced" | "graybox"
        full: variables and constraints per layer; reduced: one nested expression; graybox: torch
        evaluates ``NN(x)`` and its derivatives. A string takes the object's options as flat
        keywords (``options``): ``config``, ``relaxation`` (full); ``backend``, ``device``,
        ``graybox_output``, ``graybox_input``, ``dtype``, ``method`` (graybox).
    input_bounds : (lo, hi)
        The box :math:`lo \le x \le hi` (rows of ``g``, every formulation); the full space also
        bounds every intermediate variable by interval propagation of the box.
    x0 : array (n_in,) or (n_in, K)
        Where the start values come from (a forward pass): default the middle of
        ``input_bounds`` where finite, else 0.
    input_shape : tuple
        The shape of one input without the batch axis, e.g. ``(1, 28, 28)``: x's column holds it
        in torch's C order. Needed by convolutions and pooling.
    translations : dict
        ``{torch module type: rule}`` for this call; ``rule(module)`` returns :mod:`nncas.layers`.
    verify : bool
        Check the embedding against ``net(x)`` before returning it (:mod:`nncas.verification`);
        a difference raises :class:`nncas.VerificationError`. ``False`` skips the check.

    Example
    -------
    >>> import casadi as ca, torch, nncas
    >>> net = torch.nn.Sequential(torch.nn.Linear(2, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1))
    >>> x = ca.MX.sym("x", 2)
    >>> e = nncas.embed(net, x, nncas.FullSpace(config={"Tanh": "reduced"}))
    >>> nlp = {"x": ca.vertcat(x, e.w), "f": ca.sumsqr(x) - e.y, "g": e.g}
    >>> e.y.shape, e.w.shape, e.g.shape
    ((1, 1), (9, 1), (9, 1))
    """
    formulation = resolve(formulation, **options)
    x = _as_inputs(x)
    kind = type(x)
    return build(net, x, _start(x0, x.shape, input_bounds), lambda rows, cols: kind.sym("w", rows, cols),
                 formulation, input_bounds=input_bounds, input_shape=input_shape, translations=translations,
                 verify=verify)


def build(net, x, x0: np.ndarray, new_symbol, formulation: Formulation, *, input_bounds, input_shape,
          translations, verify) -> Embedding:
    """The embedding of ``net`` at ``x`` by ``formulation`` with variables from
    ``new_symbol(rows, cols)`` (any sink); ``x0`` (n_in, K) seeds the start values."""
    if not isinstance(verify, bool):
        raise InputTypeError(f"verify={verify!r}; give True (check the embedding against torch) or False.")
    if isinstance(net, torch.nn.Module):
        _check_evaluation_mode(net)
    if input_shape is not None:
        input_shape = _checked_input_shape(input_shape, x.size1())
    if not np.all(np.isfinite(x0)):
        raise InputError("the start point of x holds NaN or Inf (x0=, or opti.set_initial / set_value); "
                         "give finite start values.")
    box = None if input_bounds is None else _box(input_bounds, x.size1())
    context = Context(box, translations, input_shape)
    form = formulation.build(net, x, x0, new_symbol, context)
    if verify and isinstance(net, torch.nn.Module):
        form.verification = _verified(form, net, x, x0, context)
    if box is not None:
        form.add_constraint(x, box[0][:, None], box[1][:, None])
    return form


def _verified(form: Embedding, net, x, x0, context: Context) -> Verification:
    """:func:`nncas.verification.verify` of ``form``; an embedding whose x is an SX expression
    (not evaluable on its own) is checked through a twin built on a fresh SX symbol."""
    dtype = form.formulation.tolerance_dtype
    try:
        return verify_embedding(form, net, x0, context.box, context.input_shape, dtype)
    except Unverifiable:
        twin = form.formulation.build(net, ca.SX.sym("x", *x.shape), x0, lambda rows, cols: ca.SX.sym("w", rows, cols),
                                      Context(None, context.translations, context.input_shape))
        return verify_embedding(twin, net, x0, context.box, context.input_shape, dtype)


def _checked_input_shape(input_shape, rows: int) -> tuple:
    """``input_shape`` parsed, and holding exactly x's rows."""
    shape = parse_input_shape(input_shape)
    if math.prod(shape) != rows:
        raise InputError(f"input_shape {shape} holds {math.prod(shape)} entries, but x has {rows} rows "
                         "(one input per column, in torch's C order).")
    return shape


def _check_evaluation_mode(net: torch.nn.Module) -> None:
    """Dropout and batch norm mean something else in training mode: refuse them there."""
    for name, module in net.named_modules():
        stochastic = isinstance(module, (torch.nn.modules.dropout._DropoutNd, torch.nn.modules.batchnorm._BatchNorm))
        if stochastic and module.training:
            raise InputError(f"{name or type(net).__name__} ({type(module).__name__}) is in training mode, where "
                             "it acts differently; call net.eval() before embedding the network.")


def _as_inputs(x):
    if not isinstance(x, (ca.MX, ca.SX)):
        raise InputTypeError(f"x must be a casadi.MX or casadi.SX column of decision variables or "
                             f"expressions, got {type(x).__name__}.")
    if x.numel() == 0:
        raise InputError("x is empty; pass a column of the network's inputs.")
    return x


def _start(x0, shape, input_bounds) -> np.ndarray:
    """Start point (n_in, K) for the forward pass: ``x0``, else the middle of the box, else 0."""
    n, K = shape
    if x0 is not None:
        try:
            a = np.asarray(x0, dtype=float)
        except (TypeError, ValueError):
            raise InputError(f"x0 must be numbers (an array of x's shape), got {x0!r}.") from None
        if a.shape not in {(n,), (n, 1), (n, K), (n * K,)}:
            shapes = f"({n},)" if K == 1 else f"({n},) or ({n}, 1) for all columns, ({n}, {K}) or ({n * K},)"
            raise InputError(f"x0 has shape {a.shape}; x is {n} x {K}: give {shapes}.")
        return np.broadcast_to(a.reshape(n, -1, order="F"), shape).copy()
    if input_bounds is None:
        return np.zeros(shape)
    lo, hi = _box(input_bounds, n)
    middle = np.where(np.isfinite(lo) & np.isfinite(hi), (lo + hi) / 2,
                      np.where(np.isfinite(lo), lo, np.where(np.isfinite(hi), hi, 0.0)))
    return np.repeat(middle[:, None], K, axis=1)


def _box(bounds, n):
    try:
        lo, hi = bounds
    except (TypeError, ValueError):
        raise InputError("input_bounds must be a pair (lower, upper) of scalars or arrays of the "
                         f"network's {n} inputs.") from None
    try:
        lo, hi = (np.asarray(b, dtype=float).reshape(-1) for b in (lo, hi))
    except (TypeError, ValueError):
        raise InputError(f"input_bounds=({lo!r}, {hi!r}); give numbers (scalars or arrays of the network's "
                         f"{n} inputs, -inf/inf for no bound).") from None
    for name, b in (("lower", lo), ("upper", hi)):
        if b.size not in (1, n):
            raise InputError(f"input_bounds: the {name} bound has {b.size} entries; the network "
                             f"has {n} inputs (give {n} entries or one scalar).")
    lo, hi = np.broadcast_to(lo, (n,)).copy(), np.broadcast_to(hi, (n,)).copy()
    if np.isnan(lo).any() or np.isnan(hi).any():
        raise InputError("input_bounds hold NaN; give numbers (-inf/inf for no bound).")
    if np.any(lo == np.inf) or np.any(hi == -np.inf):
        raise InputError("input_bounds: a lower bound of +inf or an upper bound of -inf leaves no input; "
                         "use -inf/inf for no bound.")
    if np.any(lo > hi):
        raise InputError("input_bounds: some lower bounds exceed their upper bounds.")
    return lo, hi
