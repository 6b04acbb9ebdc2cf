"""The gray box: ``y = NN(x)`` as one call of a CasADi Function whose value and derivatives come
from the torch module itself (an oracle of :mod:`nncas.oracles.backends`)."""
from __future__ import annotations

import casadi as ca
import numpy as np
import torch

from ..devices import resolve_device
from ..embedding import Embedding, LayerHandle
from ..errors import InputError, InputTypeError
from ..oracles.backends import backend_name, backend_options, check_backend, evaluation_dtype, gray_box_oracle
from ..tensors import to_numpy
from ..torch_import import hooks_of, own_forward, piecewise_linear
from .base import Context, Formulation, warn_piecewise_linear

OUTPUTS = ("variables", "expression")
INPUTS = ("auto", "direct", "lifted")
#: ``input="auto"`` lifts a leading ``nn.Linear`` with at most this share of outputs per
#: input: IPOPT's KKT matrix then holds a dense block of about twice the layer's width instead
#: of the input size, and the gray box's Hessian is the layer's width squared (MNIST-128,
#: 784 -> 128: problem 7 in 0.25-0.30 s against 0.85-0.91 s, docs/kkt.md). Past about 0.4 the
#: dense block (2 x width) costs more than the input-size one.
LIFT_WIDTH_SHARE = 0.4


class GrayBox(Formulation):
    r"""``y = NN(x)`` evaluated by torch.

    ``backend``: "torch" (nncas's float64 oracle), "l4casadi" (float32), or an evaluator class of
    one's own (:mod:`nncas.oracles.backends`); ``device``: "cpu" or
    "cuda"; ``output``: "expression" (y is the call) or "variables" (y new variables with the rows
    :math:`NN(x) - y = 0`); ``input``: "lifted" (a leading ``nn.Linear`` (W, b) becomes variables
    z with the rows :math:`W x + b - z = 0` and the box evaluates the rest at z), "direct", or
    "auto" (lift at most :data:`LIFT_WIDTH_SHARE` outputs per input); ``oracle_options``: the
    backend's own (torch: ``dtype``, ``method``).
    """

    kind = "graybox"
    keywords = {"backend": ("backend", "torch"), "device": ("device", "cpu"),
                "graybox_output": ("output", "expression"), "graybox_input": ("input", "auto")}

    def __init__(self, backend="torch", device: str = "cpu", output: str = "expression",
                 input: str = "auto", **oracle_options):
        check_backend(backend, oracle_options)
        if output not in OUTPUTS:
            raise InputError(f"graybox_output={output!r} (GrayBox's output); choose one of {OUTPUTS}.")
        if input not in INPUTS:
            raise InputError(f"graybox_input={input!r} (GrayBox's input); choose one of {INPUTS}.")
        self.backend, self.device, self.output, self.input = backend, device, output, input
        self.torch_device = resolve_device(device)
        self.oracle_options = oracle_options

    @property
    def tolerance_dtype(self) -> torch.dtype:
        return evaluation_dtype(self.backend, self.oracle_options)

    def __repr__(self):
        extra = "".join(f", {k}={v!r}" for k, v in self.oracle_options.items())
        return f"{super().__repr__()[:-1]}{extra})"

    def build(self, net, x, x0, new_symbol, context: Context) -> Embedding:
        if not isinstance(net, torch.nn.Module):
            raise InputTypeError(f"formulation='graybox' needs a torch.nn.Module, got {type(net).__name__}.")
        if not isinstance(x, ca.MX):
            raise InputTypeError("formulation='graybox' needs x as casadi.MX (a gray box is a function call, "
                                 "which SX cannot hold); use MX, or the 'full' or 'reduced' formulation.")
        net = _with_input_shape(net, context.input_shape)
        _check_module(net)
        n_in, batch = x.shape
        n_out = _output_size(net, n_in)
        warn_piecewise_linear([type(m).__name__ for m in net.modules() if piecewise_linear(m)], self.kind)
        first, rest = lifted_layer(net, self.input)
        form = Embedding(self.kind, type(net).__name__, n_in, n_out, sum(p.numel() for p in net.parameters()),
                         inputs=x, backend=backend_name(self.backend), device=str(self.torch_device),
                         formulation=self, new_symbol=new_symbol)
        box_input, box_x0 = x, x0
        if first is not None:
            box_input, box_x0 = _add_lifted_layer(form, first, x, x0)
        options = dict(self.oracle_options)
        if context.translations and "translations" in backend_options(self.backend):
            options["translations"] = context.translations  # the backend reads the user's rules
        form.oracle = gray_box_oracle(self.backend, rest, box_input.size1(), n_out, self.torch_device, batch,
                                      **options)
        handle = LayerHandle(len(form.layers), form.oracle, None)
        y = form.oracle.function(ca.densify(box_input))
        if self.output == "variables":
            value, y = y, form.add_variable(n_out, batch, np.asarray(form.oracle.function(box_x0)), handle=handle)
            form.add_constraint(value - y, handle=handle)
        handle.output = y
        form.layers.append(handle)
        form.outputs = y
        return form


def lifted_layer(net: torch.nn.Module, input: str):
    """(the leading ``nn.Linear`` to lift, or None; the network the gray box evaluates) for
    ``input`` "auto", "direct" or "lifted"."""
    why_not = _not_liftable(net)
    if input == "direct" or why_not:
        if input == "lifted":
            raise InputError(f"graybox_input='lifted' needs an nn.Sequential whose first module is nn.Linear and "
                             f"which has more after it; {why_not}. Use graybox_input='auto' or 'direct'.")
        return None, net
    leading = net[0]
    if input == "auto" and leading.out_features > LIFT_WIDTH_SHARE * leading.in_features:
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


def _with_input_shape(net: torch.nn.Module, input_shape):
    """``net`` taking (K, n_in) rows: unflattened to ``input_shape`` first, the output flattened."""
    if input_shape is None:
        return net
    return torch.nn.Sequential(torch.nn.Unflatten(1, input_shape), net, torch.nn.Flatten())


def _check_module(net: torch.nn.Module) -> None:
    """Finite weights, and no softmax across the batch (a gray box sees rows of samples)."""
    for name, tensor in list(net.named_parameters()) + list(net.named_buffers()):
        if tensor.is_floating_point() and not torch.isfinite(tensor).all():
            raise InputError(f"the network's {name} holds NaN or Inf; retrain or fix the weights.")
    for name, module in net.named_modules():
        if isinstance(module, (torch.nn.Softmax, torch.nn.LogSoftmax)) and module.dim in (0, -2):
            raise InputError(f"{name or type(net).__name__}: {type(module).__name__}(dim={module.dim}) normalizes "
                             "across the batch of samples; use dim=-1 (the features).")


def _output_size(net: torch.nn.Module, n_in: int) -> int:
    param = next(iter(net.parameters()), None)
    probe = torch.zeros(1, n_in, dtype=param.dtype if param is not None else torch.float64,
                        device=param.device if param is not None else "cpu")
    try:
        with torch.no_grad():
            out = net(probe)
    except (RuntimeError, ValueError, TypeError) as err:
        hint = (" x is a row; CasADi vectors are columns: pass x.T." if n_in == 1 else
                " One input per column of x; the model gets one tensor of shape (columns, rows of x): a "
                "forward that takes a dict, several arguments or another container needs a wrapper "
                "module that takes one tensor.")
        raise InputError(f"the network rejected an input of {n_in} entries (the rows of x): "
                         f"{err}.{hint}") from err
    if not isinstance(out, torch.Tensor):
        raise InputTypeError(f"the network returns a {type(out).__name__}; a gray box needs one tensor "
                             "of outputs (wrap the model to return it).")
    if out.dim() != 2 or out.shape[0] != 1 or out.shape[1] == 0:
        raise InputError(f"the network maps a (1, {n_in}) batch to shape {tuple(out.shape)}; "
                         "a gray box needs a (1, n_out) output.")
    return int(out.shape[1])
