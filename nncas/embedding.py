"""``embed``: a trained torch network as CasADi expressions, variables and constraints.

One implementation for every sink: :func:`embed` returns the pieces of an nlp dict
(``casadi.nlpsol`` users), :func:`nncas.add_predictor` puts the same pieces into an ``Opti``.
"""
from __future__ import annotations

import math
import numbers
import warnings

import casadi as ca
import numpy as np
import torch

from . import layers
from .devices import resolve_device
from .errors import InputError, InputTypeError
from .formulation import Embedding, LayerHandle
from .full_space import add_full_space, add_full_space_graph
from .graph import GraphNetwork
from .network import Network
from .torch_import import from_torch, hooks_of, own_forward, parse_input_shape
from .tensors import to_numpy
from .verification import Unverifiable, Verification, verify as verify_embedding

FORMULATIONS = ("full", "reduced", "graybox")
BACKENDS = ("torch", "l4casadi")
GRAYBOX_OUTPUTS = ("variables", "expression")
GRAYBOX_INPUTS = ("auto", "direct", "lifted")
#: ``graybox_input="auto"`` lifts a leading ``nn.Linear`` with at most this share of outputs per
#: input: IPOPT's KKT matrix then holds a dense block of about twice the layer's width instead
#: of the input size, and the gray box's Hessian is the layer's width squared (MNIST-128,
#: 784 -> 128: problem 7 in 0.25-0.30 s against 0.85-0.91 s, docs/kkt.md). Past about 0.4 the
#: dense block (2 x width) costs more than the input-size one.
LIFT_WIDTH_SHARE = 0.4


def embed(net, x, *, formulation: str = "full", backend: str = "torch", device: str = "cpu",
          config: dict | None = None, input_bounds=None, relaxation: float = 0.0, x0=None,
          translations: dict | None = None, graybox_output: str = "expression",
          graybox_input: str = "auto", input_shape: tuple | None = None, verify: bool = True,
          **oracle_options) -> Embedding:
    r"""Embed ``y = net(x)``; return an :class:`Embedding` for an nlp dict.

    Parameters
    ----------
    net : torch.nn.Module (or :class:`nncas.Network` for "full"/"reduced")
        Evaluated with evaluation-mode semantics (dropout off, batch norm from running stats).
    x : casadi.MX or casadi.SX column (n_in, 1), or matrix (n_in, K) for K inputs at once
        Any expression of the decision variables and parameters (SX for "full" and "reduced"
        only). CasADi vectors are columns; with K columns ``y`` is (n_out, K) and a gray box
        evaluates all K in one batched call.
    formulation : "full" | "reduced" | "graybox"
        full: variables and constraints per layer; reduced: one nested expression;
        graybox: one constraint NN(x) - y = 0 whose function and derivatives come from torch.
    backend : "torch" | "l4casadi"
        Gray-box evaluator: nncas's float64 torch oracle or l4casadi (float32).
    device : "cpu" | "cuda"
        Where the gray box runs.
    config : dict
        Per-layer-type choices for the full space, keyed by layer class or name
        (``{"Tanh": "reduced", "ReLU": "complementarity"}``); see :mod:`nncas.full_space`.
    input_bounds : (lo, hi)
        The box :math:`lo \le x \le hi` (constraint rows in ``g``, every formulation); the full
        space also bounds every intermediate variable by interval propagation of the box.
    relaxation : float
        :math:`\varepsilon` in the ReLU complementarity :math:`r(r+z) \le \varepsilon`.
    x0 : array (n_in,) or (n_in, K)
        Where the start values come from (a forward pass): default the middle of
        ``input_bounds`` where finite, else 0.
    translations : dict
        ``{torch module type: rule}`` for module types nncas does not translate (or to override
        its rules) in this call; ``rule(module)`` returns a list of :mod:`nncas.layers`.
    input_shape : tuple
        The shape of one input without the batch axis, e.g. ``(1, 28, 28)`` for an image:
        x's column holds it in torch's C order (channel, row, column). Needed by convolutions
        and pooling; a gray box reshapes each column to it before calling the network.
    graybox_output : "expression" | "variables"
        Gray box: ``y = NN(x)`` as an expression (default: no variables, no rows; IPOPT sees the
        network only where ``y`` is used; fewer iterations and less linear algebra, see
        docs/kkt.md), or ``y`` as new variables with the rows ``NN(x) - y = 0`` (the paper's layout).
    graybox_input : "auto" | "direct" | "lifted"
        Gray box whose network starts with ``nn.Linear`` (W, b): "lifted" makes that layer's
        output variables z with the linear rows ``W x + b - z = 0`` and evaluates the rest of
        the network at z, so IPOPT's Hessian and KKT matrix are dense in z, not x; "direct"
        evaluates the whole network at x; "auto" (default) lifts when the layer has at most
        :data:`LIFT_WIDTH_SHARE` outputs per input.
    verify : bool
        Check the embedding against ``net(x)`` before returning it (default; see
        :mod:`nncas.verification`): outputs at x0 and at a few points of the input box, and
        the Jacobian where affordable. A difference raises :class:`nncas.VerificationError`.
        ``False`` skips the check, for models already verified once.
    oracle_options
        Passed to the torch gray-box oracle (e.g. ``dtype``, ``method``).

    Example
    -------
    >>> import casadi as ca, torch, nncas
    >>> net = torch.nn.Sequential(torch.nn.Linear(2, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1))
    >>> x = ca.MX.sym("x", 2)
    >>> e = nncas.embed(net, x, formulation="full")
    >>> nlp = {"x": ca.vertcat(x, e.w), "f": ca.sumsqr(x) - e.y, "g": e.g}
    >>> S = ca.nlpsol("S", "ipopt", nlp, {"ipopt.print_level": 0, "print_time": False})
    >>> e.y.shape, e.w.shape, e.g.shape
    ((1, 1), (17, 1), (17, 1))
    """
    x = _as_inputs(x)
    kind = type(x)
    return build(net, x, _start(x0, x.shape, input_bounds), lambda rows, cols: kind.sym("w", rows, cols),
                 formulation=formulation, backend=backend, device=device, config=config,
                 input_bounds=input_bounds, relaxation=relaxation, translations=translations,
                 graybox_output=graybox_output, graybox_input=graybox_input, input_shape=input_shape,
                 verify=verify, **oracle_options)


def build(net, x, x0: np.ndarray, new_symbol, *, formulation, backend, device, config, input_bounds,
          relaxation, translations=None, graybox_output="expression", graybox_input="auto", input_shape=None,
          verify=True, **oracle_options) -> Embedding:
    """The embedding of ``net`` at ``x`` with variables from ``new_symbol(rows, cols)`` (any
    sink); ``x0`` (n_in, K) seeds the start values."""
    if formulation not in FORMULATIONS:
        raise InputError(f"formulation={formulation!r}; choose one of {FORMULATIONS}.")
    if not isinstance(verify, bool):
        raise InputTypeError(f"verify={verify!r}; give True (check the embedding against torch) or False.")
    if formulation != "graybox":
        given = {name: value for name, value, default in (
            ("backend", backend, "torch"), ("device", device, "cpu"), ("graybox_output", graybox_output, "expression"),
            ("graybox_input", graybox_input, "auto")) if value != default}
        if given:
            raise InputError(f"{', '.join(f'{k}={v!r}' for k, v in given.items())} apply to formulation='graybox' "
                             f"only (got formulation={formulation!r}); drop them or use the gray box.")
    if isinstance(net, torch.nn.Module):
        _check_evaluation_mode(net)
    if config and formulation != "full":
        raise InputError(f"config applies to formulation='full' only (got formulation={formulation!r}); "
                         "drop it or use the full space.")
    if not (isinstance(relaxation, numbers.Real) and not isinstance(relaxation, bool) and np.isfinite(relaxation)
            and relaxation >= 0):
        raise InputError(f"relaxation must be a finite number >= 0 (the ReLU complementarity's epsilon), "
                         f"got {relaxation!r}.")
    relaxation = float(relaxation)
    if input_shape is not None:
        input_shape = _checked_input_shape(input_shape, x.size1())
    if not np.all(np.isfinite(x0)):
        raise InputError("the start point of x holds NaN or Inf (x0=, or opti.set_initial / set_value); "
                         "give finite start values.")
    box = None if input_bounds is None else _box(input_bounds, x.size1())
    if formulation == "graybox":
        form = _graybox(_with_input_shape(net, input_shape), x, x0, new_symbol, backend, device,
                        translations, graybox_output, graybox_input, oracle_options)
    else:
        if oracle_options:
            raise InputTypeError(f"unexpected options {sorted(oracle_options)} for formulation={formulation!r}.")
        form = _algebraic(net, x, x0, new_symbol, formulation, config, input_bounds, relaxation, translations,
                          input_shape)
    if verify and isinstance(net, torch.nn.Module):
        form.verification = _verified(form, net, x, x0, box, input_shape, formulation, backend,
                                      dict(device=device, config=config, relaxation=relaxation,
                                           translations=translations, graybox_output=graybox_output,
                                           graybox_input=graybox_input, input_shape=input_shape,
                                           **oracle_options))
    if box is not None:
        form.add_constraint(x, box[0][:, None], box[1][:, None])
    return form


def _verified(form, net, x, x0, box, input_shape, formulation, backend, options) -> Verification:
    """:func:`nncas.verification.verify` of ``form``; an embedding whose x is an SX expression
    (not evaluable on its own) is checked through a twin built on a fresh SX symbol."""
    dtype = torch.float32 if backend == "l4casadi" else options.get("dtype", torch.float64)
    try:
        return verify_embedding(form, net, x0, box, input_shape, dtype, formulation)
    except Unverifiable:
        twin = build(net, ca.SX.sym("x", *x.shape), x0, lambda rows, cols: ca.SX.sym("w", rows, cols),
                     formulation=formulation, backend=backend, input_bounds=None, verify=False, **options)
        return verify_embedding(twin, net, x0, box, input_shape, dtype, formulation)


def _algebraic(net, x, x0, new_symbol, formulation, config, input_bounds, relaxation,
               translations, input_shape) -> Embedding:
    network = net if isinstance(net, (Network, GraphNetwork)) else _translated(net, x, translations, input_shape)
    _check_input_size(network.n_in, x)
    form = Embedding(formulation, network.name, network.n_in, network.n_out, network.n_params,
                     inputs=x, network=network, new_symbol=new_symbol)
    config = _check_config(config, network)
    if formulation == "reduced":
        _warn_piecewise_linear([type(l) for l in network.layers], "reduced")
        columns = [network.casadi(x[:, k]) for k in range(x.size2())]
    else:
        box = None if input_bounds is None else _box(input_bounds, network.n_in)
        build_full = add_full_space_graph if isinstance(network, GraphNetwork) else add_full_space
        columns = [build_full(form, network, x[:, k], x0[:, k], box, config, relaxation)
                   for k in range(x.size2())]
    form.outputs = ca.horzcat(*columns)
    return form


def _graybox(net, x, x0, new_symbol, backend, device, translations, output, graybox_input,
             oracle_options) -> Embedding:
    if backend not in BACKENDS:
        raise InputError(f"backend={backend!r}; choose one of {BACKENDS}.")
    if output not in GRAYBOX_OUTPUTS:
        raise InputError(f"graybox_output={output!r}; choose one of {GRAYBOX_OUTPUTS}.")
    if graybox_input not in GRAYBOX_INPUTS:
        raise InputError(f"graybox_input={graybox_input!r}; choose one of {GRAYBOX_INPUTS}.")
    if not isinstance(net, torch.nn.Module):
        raise InputTypeError(f"formulation='graybox' needs a torch.nn.Module, got {type(net).__name__}.")
    if not isinstance(x, ca.MX):
        raise InputTypeError("formulation='graybox' needs x as casadi.MX (a gray box is a function call, "
                        "which SX cannot hold); use MX, or the 'full' or 'reduced' formulation.")
    dev = resolve_device(device)
    _check_module(net)
    n_in, batch = x.shape
    n_out = _output_size(net, n_in)
    _warn_piecewise_linear([type(m) for m in net.modules()], "graybox")
    unknown = sorted(set(oracle_options) - ({"dtype", "method"} if backend == "torch" else set()))
    if unknown:
        raise InputTypeError(f"unexpected options {unknown} for backend={backend!r}"
                             + ("; the torch oracle takes dtype and method." if backend == "torch" else "."))
    first, rest = _lifted_layer(net, graybox_input)
    n_params = sum(p.numel() for p in net.parameters())
    form = Embedding("graybox", type(net).__name__, n_in, n_out, n_params, inputs=x, backend=backend,
                     device=str(dev), new_symbol=new_symbol)
    box_input, box_x0 = x, x0
    if first is not None:
        box_input, box_x0 = _add_lifted_layer(form, first, x, x0)
    if backend == "l4casadi":
        from .oracles.l4casadi_oracle import L4CasADiOracle
        oracle = L4CasADiOracle(rest, box_input.size1(), n_out, dev, batch=batch)
    else:
        from .oracles.torch_oracle import TorchOracle
        oracle = TorchOracle(rest, box_input.size1(), n_out, dev, batch=batch, translations=translations,
                             **oracle_options)
    form.oracle = oracle
    handle = LayerHandle(len(form.layers), oracle, None)
    y = oracle.function(ca.densify(box_input))
    if output == "variables":
        value, y = y, form.add_variable(n_out, batch, np.asarray(oracle.function(box_x0)), handle=handle)
        form.add_constraint(value - y, handle=handle)
    handle.output = y
    form.layers.append(handle)
    form.outputs = y
    return form


def _lifted_layer(net: torch.nn.Module, graybox_input: str):
    """(the leading ``nn.Linear`` to lift, or None; the network the gray box evaluates)."""
    why_not = _not_liftable(net)
    if graybox_input == "direct" or why_not:
        if graybox_input == "lifted":
            raise InputError(f"graybox_input='lifted' needs an nn.Sequential whose first module is nn.Linear and "
                             f"which has more after it; {why_not}. Use graybox_input='auto' or 'direct'.")
        return None, net
    leading = net[0]
    if graybox_input == "auto" and leading.out_features > LIFT_WIDTH_SHARE * leading.in_features:
        return None, net
    return leading, torch.nn.Sequential(*list(net)[1:])


def _not_liftable(net: torch.nn.Module) -> str:
    """Why the first layer of ``net`` cannot be lifted out of the gray box ("" when it can)."""
    name = type(net).__name__
    if isinstance(net, torch.nn.Linear):
        return "a bare nn.Linear leaves nothing for the gray box (use the full or reduced space)"
    if not isinstance(net, torch.nn.Sequential):
        return f"{name} is not an nn.Sequential"
    if own_forward(net):
        return f"{name} has a forward of its own"
    if len(net) < 2 or not isinstance(net[0], torch.nn.Linear):
        first = type(net[0]).__name__ if len(net) else "nothing"
        return f"{name} starts with {first}" + (", and nothing after it" if len(net) < 2 else "")
    hooked = list(dict.fromkeys(hooks_of(net, recurse=False) + hooks_of(net[0], recurse=False)))
    if hooked:
        return f"{name} has hooks ({', '.join(hooked)})"
    return ""


def _add_lifted_layer(form: Embedding, layer: torch.nn.Linear, x, x0: np.ndarray):
    """Variables z = W x + b (start values at x0) with the rows ``W x + b - z = 0``; returns
    (z, its start values)."""
    weight = to_numpy(layer.weight)
    bias = to_numpy(layer.bias) if layer.bias is not None else np.zeros(layer.out_features)
    handle = LayerHandle(0, layer, None)
    z0 = weight @ x0 + bias[:, None]
    z = form.add_variable(layer.out_features, x.shape[1], z0, handle=handle)
    form.add_constraint(ca.mtimes(ca.DM(weight), x) + ca.repmat(ca.DM(bias), 1, x.shape[1]) - z, handle=handle)
    handle.output = z
    form.layers.append(handle)
    return z, z0


def _translated(net, x, translations, input_shape) -> Network:
    """``from_torch`` for x's rows (a vector of them unless ``input_shape`` says otherwise)."""
    try:
        return from_torch(net, n_in=x.size1(), translations=translations, input_shape=input_shape)
    except InputError as err:
        if x.size1() == 1 and x.size2() > 1:
            raise InputError(f"{err} x is a row; CasADi vectors are columns: pass x.T.") from err
        raise


def _checked_input_shape(input_shape, rows: int) -> tuple:
    """``input_shape`` parsed, and holding exactly x's rows."""
    shape = parse_input_shape(input_shape)
    if math.prod(shape) != rows:
        raise InputError(f"input_shape {shape} holds {math.prod(shape)} entries, but x has {rows} rows "
                         "(one input per column, in torch's C order).")
    return shape


def _with_input_shape(net, input_shape):
    """``net`` taking (K, n_in) rows: unflattened to ``input_shape`` first, the output flattened."""
    if input_shape is None or not isinstance(net, torch.nn.Module):
        return net
    return torch.nn.Sequential(torch.nn.Unflatten(1, input_shape), net, torch.nn.Flatten())


def _check_config(config, network) -> dict:
    """``config`` keyed by layer type name (a class, nncas's or torch's, stands for its name);
    every key must name a layer type of the network: a typo would be ignored."""
    by_name = {k if isinstance(k, str) else getattr(k, "__name__", repr(k)): v for k, v in (config or {}).items()}
    names = {type(layer).__name__ for layer in network.layers}
    unknown = sorted(set(by_name) - names)
    if unknown:
        raise InputError(f"config names {', '.join(unknown)}, which is no layer of {network.name}; its layer "
                         f"types are {', '.join(sorted(names))}.")
    return by_name


def _check_evaluation_mode(net: torch.nn.Module) -> None:
    """Dropout and batch norm mean something else in training mode: refuse them there."""
    for name, module in net.named_modules():
        stochastic = isinstance(module, (torch.nn.modules.dropout._DropoutNd, torch.nn.modules.batchnorm._BatchNorm))
        if stochastic and module.training:
            raise InputError(f"{name or type(net).__name__} ({type(module).__name__}) is in training mode, where "
                             "it acts differently; call net.eval() before embedding the network.")


def _check_module(net: torch.nn.Module) -> None:
    """Finite weights, and no softmax across the batch (a gray box sees rows of samples)."""
    for name, tensor in list(net.named_parameters()) + list(net.named_buffers()):
        if tensor.is_floating_point() and not torch.isfinite(tensor).all():
            raise InputError(f"the network's {name} holds NaN or Inf; retrain or fix the weights.")
    for name, module in net.named_modules():
        if isinstance(module, (torch.nn.Softmax, torch.nn.LogSoftmax)) and module.dim in (0, -2):
            raise InputError(f"{name or type(net).__name__}: {type(module).__name__}(dim={module.dim}) normalizes "
                             "across the batch of samples; use dim=-1 (the features).")


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


def _check_input_size(n_in: int, x) -> None:
    if x.size1() != n_in:
        hint = " x is a row; CasADi vectors are columns: pass x.T." if x.size1() == 1 and x.size2() == n_in else ""
        raise InputError(f"the network expects {n_in} inputs but x has {x.size1()} rows "
                         f"(shape {x.shape}); one input per column.{hint}")


def _output_size(net: torch.nn.Module, n_in: int) -> int:
    param = next(iter(net.parameters()), None)
    probe = torch.zeros(1, n_in, dtype=param.dtype if param is not None else torch.float64,
                        device=param.device if param is not None else "cpu")
    try:
        with torch.no_grad():
            out = net(probe)
    except (RuntimeError, ValueError, TypeError) as err:
        hint = (" x is a row; CasADi vectors are columns: pass x.T." if n_in == 1 else
                " One input per column of x.")
        raise InputError(f"the network rejected an input of {n_in} entries (the rows of x): "
                         f"{err}.{hint}") from err
    if not isinstance(out, torch.Tensor):
        raise InputTypeError(f"the network returns a {type(out).__name__}; a gray box needs one tensor "
                             "of outputs (wrap the model to return it).")
    if out.dim() != 2 or out.shape[0] != 1 or out.shape[1] == 0:
        raise InputError(f"the network maps a (1, {n_in}) batch to shape {tuple(out.shape)}; "
                         "a gray box needs a (1, n_out) output.")
    return int(out.shape[1])


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


PIECEWISE_LINEAR = (torch.nn.ReLU, torch.nn.LeakyReLU, torch.nn.MaxPool1d, torch.nn.MaxPool2d, layers.ReLU,
                    layers.LeakyReLU, layers.MaxPool)


def _warn_piecewise_linear(kinds: list[type], formulation: str) -> None:
    kinds = sorted({k.__name__ for k in kinds if issubclass(k, PIECEWISE_LINEAR)})
    if kinds:
        warnings.warn(
            f"{', '.join(kinds)} in a {formulation} formulation: second derivatives vanish almost "
            "everywhere, so IPOPT sees no curvature from these layers and may stall at kinks. "
            "The full-space complementarity formulation treats them exactly.", stacklevel=5)
