"""Translate torch modules into nncas layers through tables keyed by module type.

A rule ``rule(module) -> list[Layer]`` per type: the built-in table, overridden by the rules a
user registers explicitly (:func:`register_translation`), overridden by those passed per call::

    nncas.from_torch(net, translations={MyScale: lambda m: [nncas.layers.Scale(m.s, m.t)]})
    nncas.embed(net, x, translations={MyScale: ...})      # or add_predictor, the same option
    nncas.register_translation(MyScale, rule)             # for every later call in this process
"""
from __future__ import annotations

import math
from typing import Callable

import numpy as np
import torch
from torch import nn

from . import layers as L
from .errors import InputError, InputTypeError, UnsupportedLayerError
from .graph import from_fx
from .linear_maps import SHAPED_RULES, Shape, batchnorm_channels
from .network import Network
from .tensors import to_numpy

Translation = Callable[[nn.Module], list]
#: rules the user registered with register_translation (the only mutable table)
_REGISTERED: dict[type, Translation] = {}


class AffineScaling(nn.Module):
    r"""Elementwise input or output scaling :math:`y = s \odot x + t` as a torch module.

    Put it first or last in an ``nn.Sequential`` to embed normalised models; it runs in
    torch (gray box) and translates to :class:`nncas.layers.Scale` (full, reduced).
    """

    def __init__(self, scale, offset):
        super().__init__()
        self.register_buffer("scale", torch.as_tensor(np.asarray(scale, dtype=float)).reshape(-1))
        self.register_buffer("offset", torch.as_tensor(np.asarray(offset, dtype=float)).reshape(-1))

    def forward(self, x):
        return x * self.scale.to(x.dtype) + self.offset.to(x.dtype)


def _check_rules(translations: dict, where: str) -> None:
    for module_type, rule in translations.items():
        if not (isinstance(module_type, type) and issubclass(module_type, nn.Module)):
            raise InputTypeError(f"{where}: {module_type!r} is not a torch.nn.Module subclass.")
        if not callable(rule):
            raise InputTypeError(f"{where}: the rule for {module_type.__name__} is not callable.")


def register_translation(module_type: type, translation: Translation) -> None:
    """Make ``translation(module) -> list[Layer]`` the rule for ``module_type`` in every later
    translation in this process (pass ``translations=`` per call to keep it local)."""
    _check_rules({module_type: translation}, "register_translation")
    _REGISTERED[module_type] = translation


def _table(translations: dict | None) -> dict[type, Translation]:
    return {**BUILTIN_TRANSLATIONS, **_REGISTERED, **(translations or {})}


def supported_modules(translations: dict | None = None) -> list[str]:
    return sorted(t.__name__ for t in _table(translations))


def _linear(m: nn.Linear):
    bias = to_numpy(m.bias) if m.bias is not None else np.zeros(m.out_features)
    return [L.Affine(to_numpy(m.weight), bias)]


def _batchnorm(m: nn.BatchNorm1d):
    if m.running_mean is None:
        raise UnsupportedLayerError(
            f"{m}: BatchNorm1d without running statistics (track_running_stats=False) has no "
            "fixed evaluation-mode map; retrain with track_running_stats=True.")
    scale = 1 / np.sqrt(to_numpy(m.running_var) + m.eps)
    gamma = to_numpy(m.weight) if m.affine else np.ones_like(scale)
    beta = to_numpy(m.bias) if m.affine else np.zeros_like(scale)
    return [L.Scale(gamma * scale, beta - gamma * scale * to_numpy(m.running_mean))]


def _feature_dim(m, dim):
    if dim not in (-1, 1, None):
        raise UnsupportedLayerError(
            f"{m}: only softmax over the feature dimension (dim=-1 or dim=1) can be embedded.")


def _softmax(m):
    _feature_dim(m, m.dim)
    return [L.LogSoftmax() if isinstance(m, nn.LogSoftmax) else L.Softmax()]


def _gelu(m: nn.GELU):
    return [L.GELU(m.approximate)]


#: the rules nncas ships
BUILTIN_TRANSLATIONS: dict[type, Translation] = {
    nn.Linear: _linear,
    nn.Tanh: lambda m: [L.Tanh()],
    nn.Sigmoid: lambda m: [L.Sigmoid()],
    nn.Softplus: lambda m: [L.Softplus(m.beta, m.threshold)],
    nn.SiLU: lambda m: [L.SiLU()],
    nn.GELU: _gelu,
    nn.ELU: lambda m: [L.ELU(m.alpha)],
    nn.ReLU: lambda m: [L.ReLU()],
    nn.LeakyReLU: lambda m: [L.LeakyReLU(m.negative_slope)],
    nn.Softmax: _softmax,
    nn.LogSoftmax: _softmax,
    nn.Identity: lambda m: [],
    nn.Dropout: lambda m: [],
    nn.BatchNorm1d: _batchnorm,
    AffineScaling: lambda m: [L.Scale(to_numpy(m.scale), to_numpy(m.offset))],
}


#: the nncas layer type a torch module type stands for: what a gray box, which runs the module
#: untranslated, knows of its traits (:attr:`nncas.layers.Layer.piecewise_linear`)
LAYER_TYPES: dict[type, type] = {
    nn.Linear: L.Affine, nn.Tanh: L.Tanh, nn.Sigmoid: L.Sigmoid, nn.Softplus: L.Softplus, nn.SiLU: L.SiLU,
    nn.GELU: L.GELU, nn.ELU: L.ELU, nn.ReLU: L.ReLU, nn.LeakyReLU: L.LeakyReLU, nn.Softmax: L.Softmax,
    nn.LogSoftmax: L.LogSoftmax, nn.MaxPool1d: L.MaxPool, nn.MaxPool2d: L.MaxPool, nn.LayerNorm: L.LayerNorm,
    nn.BatchNorm1d: L.Scale, nn.BatchNorm2d: L.Scale, nn.BatchNorm3d: L.Scale, AffineScaling: L.Scale,
}


def piecewise_linear(module: nn.Module) -> bool:
    """Whether ``module``'s own computation is piecewise linear (the trait of its layer type)."""
    layer = next((LAYER_TYPES[kind] for kind in type(module).__mro__ if kind in LAYER_TYPES), None)
    return layer is not None and layer.piecewise_linear


def own_forward(module: nn.Module) -> bool:
    """Whether ``module`` is an ``nn.Sequential`` whose class replaces Sequential's ``forward``
    (it then computes something else than the chain of its children)."""
    return isinstance(module, nn.Sequential) and type(module).forward is not nn.Sequential.forward


def hooks_of(module: nn.Module, recurse: bool = True) -> list[str]:
    """Where hooks are registered on ``module`` (and its submodules with ``recurse``), and
    torch's global module hooks: a translation reads parameters, so it would miss what they do."""
    kinds = ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks", "_backward_pre_hooks")
    modules = module.named_modules() if recurse else [("", module)]
    found = [f"{name or type(module).__name__}.{kind.strip('_')}" for name, sub in modules
             for kind in kinds if getattr(sub, kind, None)]
    globals_ = torch.nn.modules.module
    for kind in ("_global_forward_hooks", "_global_forward_pre_hooks", "_global_backward_hooks",
                 "_global_backward_pre_hooks"):
        if getattr(globals_, kind, None):
            found.append(f"torch.nn.modules.module.{kind.strip('_')}")
    return found


def _translate(module: nn.Module, table: dict, shape: Shape | None) -> tuple[list, Shape | None]:
    """The layers of ``module`` and its output shape, for an input of ``shape`` (without the
    batch axis; None while unknown: a chain that starts without a fixed size)."""
    kind = type(module)
    if own_forward(module) and kind not in table:
        raise UnsupportedLayerError(
            f"{kind.__name__} is an nn.Sequential with its own forward inside a chain; nncas translates it only "
            "as the whole model (traced with torch.fx) or with a rule: translations={"
            f"{kind.__name__}: rule}}; or embed the model with formulation='graybox'.")
    shaped = SHAPED_RULES.get(kind)
    if kind is nn.BatchNorm1d and shape is not None and len(shape) == 2:
        shaped = batchnorm_channels  # over the channels of a (C, L) input
    if shaped is not None and table.get(kind) is BUILTIN_TRANSLATIONS.get(kind):  # not overridden
        if shape is None:
            raise InputError(f"{module} needs the input's shape: pass input_shape=(channels, ...) for the "
                             "network's input (x's column holds it in torch's C order).")
        return shaped(module, shape)
    rule = table.get(kind)
    if rule is not None:
        layers = list(rule(module))
        return layers, _shape_after(module, layers, shape)
    if isinstance(module, nn.Sequential):
        layers = []
        for child in module:
            more, shape = _translate(child, table, shape)
            layers += more
        return layers, shape
    supported = sorted({t.__name__ for t in table} | {t.__name__ for t in SHAPED_RULES})
    raise UnsupportedLayerError(
        f"nncas cannot translate the torch module {kind.__name__} ({kind.__module__}.{kind.__qualname__}). "
        f"Supported modules: {', '.join(supported)}, and nn.Sequential of them. "
        f"Pass a translation, translations={{{kind.__name__}: rule}}, or register one with "
        f"nncas.register_translation({kind.__name__}, rule), where rule(module) returns a list of "
        "nncas.layers objects; or embed the model with formulation='graybox', which runs any "
        "differentiable torch model.")


def _shape_after(module: nn.Module, layers: list, shape: Shape | None) -> Shape | None:
    """The shape after a module translated by a vector rule: the last sized layer's output;
    layers of a fixed size need a vector input of that size."""
    if shape is not None and len(shape) > 1 and any(isinstance(layer, L.Softmax) for layer in layers):
        raise InputError(f"{module} on an input of shape {shape} normalizes over its last axis only; "
                         "flatten first (nn.Flatten()) to normalize over all features.")
    sized = [layer for layer in layers if getattr(layer, "n_in", None) is not None]
    if not sized:
        return shape
    if shape is not None and (len(shape) != 1 or shape[0] != sized[0].n_in):
        hint = " Add nn.Flatten() before it." if len(shape) > 1 else ""
        raise InputError(f"{module} takes a vector of {sized[0].n_in} entries but its input has shape "
                         f"{shape}.{hint}")
    return (sized[-1].n_out,)


def from_torch(module: nn.Module, n_in: int | None = None, name: str | None = None,
               translations: dict | None = None, input_shape: tuple | None = None):
    """Translate ``module`` (evaluation-mode semantics) into a :class:`Network`.

    ``n_in`` is needed only when the model starts with something other than a Linear layer
    that fixes its size (e.g. only activations). ``input_shape`` (e.g. ``(1, 28, 28)``, without
    the batch axis) is needed by convolutions and pooling: the network's input vector holds
    that tensor in torch's C order. A module with its own ``forward`` (residual blocks, sums,
    concatenations) is traced with torch.fx into a :class:`nncas.graph.GraphNetwork`; chains give
    a :class:`Network`. ``translations`` ({module type: rule}) add to or override
    the built-in and registered rules for this call.
    """
    if not isinstance(module, nn.Module):
        raise InputTypeError(f"expected a torch.nn.Module, got {type(module).__name__}.")
    _check_rules(translations or {}, "translations")
    hooks = hooks_of(module)
    if hooks:
        raise UnsupportedLayerError(
            f"{type(module).__name__} has hooks ({', '.join(hooks[:4])}), which change what the module computes "
            "at run time; a translation would ignore them. Remove them, or embed the model with "
            "formulation='graybox', which calls the module itself.")
    shape = _input_shape(input_shape, n_in)
    table = _table(translations)
    if _is_graph(module, table):
        if shape is None:
            raise InputError(f"{type(module).__name__} is traced as a graph, which needs its input size: "
                             "pass n_in (or input_shape).")
        return from_fx(module, shape, lambda sub, sub_shape: _translate(sub, table, sub_shape),
                       name or type(module).__name__)
    layers, _ = _translate(module, table, shape)
    n_in = math.prod(shape) if shape is not None else _first_size(layers)
    if n_in is None:
        raise InputError(f"cannot infer the input size of {type(module).__name__}; pass n_in.")
    return Network(layers, n_in, name=name or type(module).__name__)


def _is_graph(module: nn.Module, table: dict) -> bool:
    """A model class of the user's own (not a torch module, not one with a rule): traced by
    torch.fx, so residual blocks, sums and concatenations in its ``forward`` embed too."""
    kind = type(module)
    if kind in table or kind in SHAPED_RULES:
        return False
    if isinstance(module, nn.Sequential):
        return any(own_forward(sub) and type(sub) not in table for sub in module.modules())
    return not kind.__module__.startswith("torch.")


def parse_input_shape(input_shape) -> Shape:
    """``input_shape`` as a tuple of positive sizes, or a clear error."""
    try:
        sizes = tuple(input_shape)
    except TypeError:
        raise InputError(f"input_shape={input_shape!r}; give a tuple of sizes such as (1, 28, 28).") from None
    if not all(isinstance(s, (int, np.integer)) and not isinstance(s, bool) for s in sizes):
        raise InputError(f"input_shape={input_shape!r}; give whole numbers such as (1, 28, 28).")
    shape = tuple(int(s) for s in sizes)
    if not shape or min(shape) < 1:
        raise InputError(f"input_shape={input_shape!r}; give positive sizes such as (1, 28, 28).")
    return shape


def _input_shape(input_shape, n_in) -> Shape | None:
    if input_shape is None:
        if n_in is not None and (isinstance(n_in, bool) or not isinstance(n_in, (int, np.integer)) or n_in < 1):
            raise InputError(f"n_in={n_in!r}; give the number of inputs, a positive whole number.")
        return None if n_in is None else (int(n_in),)
    shape = parse_input_shape(input_shape)
    if n_in is not None and math.prod(shape) != n_in:
        raise InputError(f"input_shape {shape} holds {math.prod(shape)} entries, but the input has {n_in}.")
    return shape


def _first_size(layers) -> int | None:
    for layer in layers:
        if layer.n_in is not None:
            return layer.n_in
    return None
