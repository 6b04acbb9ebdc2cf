"""``add_predictor``: put a trained torch network into a CasADi ``Opti`` problem."""
from __future__ import annotations

import warnings

import casadi as ca
import numpy as np
import torch

from . import layers
from .devices import resolve_device
from .formulation import Formulation
from .full_space import add_full_space
from .graybox import add_graybox
from .network import Network
from .torch_import import from_torch

FORMULATIONS = ("full", "reduced", "graybox")
BACKENDS = ("torch", "l4casadi")


def add_predictor(opti: ca.Opti, net, x, *, formulation: str = "full", backend: str = "torch",
                  device: str = "cpu", config: dict | None = None, input_bounds=None,
                  relaxation: float = 0.0, **oracle_options):
    r"""Embed ``y = net(x)`` in ``opti``; return ``(y, formulation_record)``.

    Parameters
    ----------
    opti : casadi.Opti
    net : torch.nn.Module (or :class:`nncas.Network` for "full"/"reduced")
        Evaluated with evaluation-mode semantics (dropout off, batch norm from running stats).
    x : casadi.MX column (n_in, 1), or matrix (n_in, K) for K inputs at once
        Opti variables or expressions of them. CasADi vectors are columns; with K columns
        ``y`` is (n_out, K) and a gray box evaluates all K in one batched call.
    formulation : "full" | "reduced" | "graybox"
        full: variables and constraints per layer; reduced: one nested expression;
        graybox: one constraint NN(u) - y = 0 whose function and derivatives come from torch.
    backend : "torch" | "l4casadi"
        Gray-box evaluator (ignored otherwise): nncas's float64 torch oracle or l4casadi (float32).
    device : "cpu" | "cuda"
        Where the gray box runs.
    config : dict
        Per-layer-type choices for the full space, keyed by layer class or name
        (``{"Tanh": "reduced", "ReLU": "complementarity"}``); see :mod:`nncas.full_space`.
    input_bounds : (lo, hi)
        Box on ``x`` used to bound every full-space intermediate (interval propagation).
    relaxation : float
        :math:`\varepsilon` in the ReLU complementarity :math:`r(r+z) \le \varepsilon`.
    oracle_options
        Passed to the torch gray-box oracle (e.g. ``dtype``, ``method``).

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
        raise TypeError(f"add_predictor needs a casadi.Opti as first argument, got {type(opti).__name__}.")
    if formulation not in FORMULATIONS:
        raise ValueError(f"formulation={formulation!r}; choose one of {FORMULATIONS}.")
    x = _as_inputs(x)
    # densify: inputs with structural zeros (e.g. offline units) would come back as a sparse matrix
    x0 = np.asarray(opti.value(ca.densify(x), opti.initial() + opti.value_parameters()), dtype=float)
    x0 = x0.reshape(x.shape)

    if formulation == "graybox":
        return _graybox(opti, net, x, x0, backend, device, oracle_options)
    if oracle_options:
        raise TypeError(f"unexpected options {sorted(oracle_options)} for formulation={formulation!r}.")

    network = net if isinstance(net, Network) else from_torch(net)
    _check_input_size(network.n_in, x)
    form = Formulation(formulation, network.name, network.n_in, network.n_out, network.n_params,
                       inputs=x, outputs=None, network=network)
    if formulation == "reduced":
        _warn_piecewise_linear([type(l) for l in network.layers], "reduced")
        columns = [network.casadi(x[:, k]) for k in range(x.size2())]
    else:
        box = None if input_bounds is None else _box(input_bounds, network.n_in)
        columns = [add_full_space(opti, form, network, x0[:, k], box, dict(config or {}), relaxation)
                   for k in range(x.size2())]
    form.outputs = ca.horzcat(*columns)
    return form.outputs, form


def _graybox(opti, net, x, x0, backend, device, oracle_options):
    if backend not in BACKENDS:
        raise ValueError(f"backend={backend!r}; choose one of {BACKENDS}.")
    if not isinstance(net, torch.nn.Module):
        raise TypeError(f"formulation='graybox' needs a torch.nn.Module, got {type(net).__name__}.")
    dev = resolve_device(device)
    n_in, batch = x.shape
    n_out = _output_size(net, n_in)
    _warn_piecewise_linear([type(m) for m in net.modules()], "graybox")
    if backend == "l4casadi":
        if oracle_options:
            raise TypeError(f"backend='l4casadi' takes no oracle options, got {sorted(oracle_options)}.")
        from .oracles.l4casadi_oracle import L4CasADiOracle
        oracle = L4CasADiOracle(net, n_in, n_out, dev, batch=batch)
    else:
        from .oracles.torch_oracle import TorchOracle
        oracle = TorchOracle(net, n_in, n_out, dev, batch=batch, **oracle_options)
    n_params = sum(p.numel() for p in net.parameters())
    form = Formulation("graybox", type(net).__name__, n_in, n_out, n_params, inputs=x, outputs=None,
                       backend=backend, device=str(dev))
    form.outputs = add_graybox(opti, form, x0, oracle)
    return form.outputs, form


def _as_inputs(x) -> ca.MX:
    if not isinstance(x, ca.MX):
        raise TypeError(f"x must be a casadi.MX column of Opti variables or expressions, got "
                        f"{type(x).__name__}.")
    if x.numel() == 0:
        raise ValueError("x is empty; pass a column of the network's inputs.")
    return x


def _check_input_size(n_in: int, x: ca.MX) -> None:
    if x.size1() != n_in:
        hint = " x is a row; CasADi vectors are columns: pass x.T." if x.size1() == 1 and x.size2() == n_in else ""
        raise ValueError(f"the network expects {n_in} inputs but x has {x.size1()} rows "
                         f"(shape {x.shape}); one input per column.{hint}")


def _output_size(net: torch.nn.Module, n_in: int) -> int:
    param = next(iter(net.parameters()), None)
    probe = torch.zeros(1, n_in, dtype=param.dtype if param is not None else torch.float64,
                        device=param.device if param is not None else "cpu")
    try:
        with torch.no_grad():
            out = net(probe)
    except RuntimeError as err:
        hint = (" x is a row; CasADi vectors are columns: pass x.T." if n_in == 1 else
                " One input per column of x.")
        raise ValueError(f"the network rejected an input of {n_in} entries (the rows of x): "
                         f"{err}.{hint}") from err
    if out.dim() != 2 or out.shape[0] != 1:
        raise ValueError(f"the network maps a (1, {n_in}) batch to shape {tuple(out.shape)}; "
                         "a gray box needs a (1, n_out) output.")
    return int(out.shape[1])


def _box(bounds, n):
    try:
        lo, hi = bounds
    except (TypeError, ValueError):
        raise ValueError("input_bounds must be a pair (lower, upper) of scalars or arrays of the "
                         f"network's {n} inputs.") from None
    lo, hi = (np.asarray(b, dtype=float).reshape(-1) for b in (lo, hi))
    for name, b in (("lower", lo), ("upper", hi)):
        if b.size not in (1, n):
            raise ValueError(f"input_bounds: the {name} bound has {b.size} entries; the network "
                             f"has {n} inputs (give {n} entries or one scalar).")
    lo, hi = np.broadcast_to(lo, (n,)).copy(), np.broadcast_to(hi, (n,)).copy()
    if np.any(lo > hi):
        raise ValueError("input_bounds: some lower bounds exceed their upper bounds.")
    return lo, hi


PIECEWISE_LINEAR = (torch.nn.ReLU, torch.nn.LeakyReLU, layers.ReLU, layers.LeakyReLU)


def _warn_piecewise_linear(kinds: list[type], formulation: str) -> None:
    kinds = sorted({k.__name__ for k in kinds if issubclass(k, PIECEWISE_LINEAR)})
    if kinds:
        warnings.warn(
            f"{', '.join(kinds)} in a {formulation} formulation: second derivatives vanish almost "
            "everywhere, so IPOPT sees no curvature from these layers and may stall at kinks. "
            "The full-space complementarity formulation treats them exactly.", stacklevel=3)
