r"""Convolutions, pooling and per-channel normalization on C-order vectors.

A convolution (any stride, padding, dilation, groups), an average pooling or an adaptive
average pooling is an affine map :math:`y = W x + b` of the input flattened in torch's C order
(channel, then row, then column). Each output entry depends on one kernel window, so ``W`` is
sparse: it holds the kernel entries at every output position and nothing else. ``W`` is read off
the module itself, applied in float64 to the unit vectors (in chunks), so padding modes and
every option mean exactly what torch means by them.

Max pooling is not affine: its windows (the input entries each output takes the maximum of) are
read off the module the same way, by pooling the entries' indices.

Each rule takes the module and its input shape (without the batch axis) and returns nncas layers
and the output shape.
"""
from __future__ import annotations

import copy
import math

import numpy as np
import scipy.sparse
import torch
import torch.nn.functional as F
from torch import nn

from . import layers as L
from .errors import InputError, UnsupportedLayerError
from .tensors import to_numpy

Shape = tuple[int, ...]
#: unit vectors per probing batch (bounds the dense responses held at once)
CHUNK = 256


def affine_map(module: nn.Module, shape: Shape) -> tuple[list, Shape]:
    """``module`` (linear plus a constant) as one sparse :class:`nncas.layers.Affine`."""
    probe = copy.deepcopy(module).to("cpu", torch.float64).eval()
    n = math.prod(shape)
    with torch.no_grad():
        try:
            offset = probe(torch.zeros(1, *shape, dtype=torch.float64))
        except RuntimeError as err:
            raise InputError(f"{module} does not take an input of shape {shape}; pass input_shape=(channels, ...) "
                             f"for the network's input (x's column holds it in torch's C order).") from err
        out_shape = tuple(offset.shape[1:])
        offset = offset.reshape(-1)
        columns = []
        for start in range(0, n, CHUNK):
            count = min(CHUNK, n - start)
            unit = torch.zeros(count, n, dtype=torch.float64)
            unit[torch.arange(count), start + torch.arange(count)] = 1.0
            response = probe(unit.reshape(count, *shape)).reshape(count, -1) - offset
            columns.append(scipy.sparse.csr_matrix(to_numpy(response)))
    weight = scipy.sparse.vstack(columns).T.tocsr()
    parameters = sum(p.numel() for p in module.parameters())
    return [L.Affine(weight, to_numpy(offset), parameters=parameters)], out_shape


def max_pool(module: nn.Module, shape: Shape) -> tuple[list, Shape]:
    """MaxPool1d/2d as :class:`nncas.layers.MaxPool`: the windows read off the module by pooling
    the entries' indices (padding marked -1)."""
    if getattr(module, "ceil_mode", False) or getattr(module, "return_indices", False):
        raise UnsupportedLayerError(f"{module}: ceil_mode and return_indices cannot be embedded.")
    n = math.prod(shape)
    index = torch.arange(n, dtype=torch.float64).reshape(1, *shape)
    spatial = len(shape) - 1
    kernel, stride, padding, dilation = (_tuple(getattr(module, k), spatial) for k in
                                         ("kernel_size", "stride", "padding", "dilation"))
    stride = stride if module.stride is not None else kernel
    if spatial == 1:  # one spatial axis: as an image of height 1
        index = index.unsqueeze(2)
        kernel, stride, padding, dilation = ((1, *kernel), (1, *stride), (0, *padding), (1, *dilation))
    elif spatial != 2:
        raise UnsupportedLayerError(f"{module}: only 1-D and 2-D max pooling can be embedded.")
    channels = shape[0]
    # each channel's windows over its own entries; padded positions read -1
    patches = F.unfold(index + 1, kernel, dilation=dilation, padding=padding, stride=stride) - 1
    k = math.prod(kernel)
    windows = patches.reshape(channels, k, -1).permute(0, 2, 1).reshape(-1, k)
    probe = module(torch.zeros(1, *shape, dtype=torch.float64))
    out_shape = tuple(probe.shape[1:])
    if windows.shape[0] != math.prod(out_shape):
        raise UnsupportedLayerError(f"{module}: its windows do not match its output {out_shape}.")
    return [L.MaxPool(np.rint(to_numpy(windows)), n)], out_shape


def layer_norm(module: nn.LayerNorm, shape: Shape) -> tuple[list, Shape]:
    """LayerNorm over every entry of the input (its normalized_shape is the whole shape)."""
    if tuple(module.normalized_shape) != tuple(shape):
        raise UnsupportedLayerError(f"{module} normalizes over {tuple(module.normalized_shape)} of an input of "
                                    f"shape {shape}; nncas embeds LayerNorm over the whole input only.")
    weight = to_numpy(module.weight) if module.weight is not None else None
    bias = to_numpy(module.bias) if getattr(module, "bias", None) is not None else None
    return [L.LayerNorm(module.eps, weight, bias)], shape


def _tuple(value, size: int) -> tuple:
    return tuple(value) if isinstance(value, (tuple, list)) else (value,) * size


def batchnorm_channels(module: nn.modules.batchnorm._BatchNorm, shape: Shape) -> tuple[list, Shape]:
    r"""BatchNorm over channels (running statistics): :math:`y = \gamma (x - \mu)/\sqrt{\sigma^2 + \epsilon} + \beta`
    per channel, one :class:`nncas.layers.Scale` over the C-order entries."""
    if module.running_mean is None:
        raise UnsupportedLayerError(
            f"{module}: batch norm without running statistics (track_running_stats=False) has no "
            "fixed evaluation-mode map; retrain with track_running_stats=True.")
    values = {k: to_numpy(v)
              for k, v in (("mean", module.running_mean), ("var", module.running_var))}
    scale = 1 / np.sqrt(values["var"] + module.eps)
    gamma = to_numpy(module.weight) if module.affine else np.ones_like(scale)
    beta = to_numpy(module.bias) if module.affine else np.zeros_like(scale)
    if shape[0] != scale.size:
        raise InputError(f"{module} normalizes {scale.size} channels; its input has shape {shape}.")
    per_entry = math.prod(shape[1:])
    return ([L.Scale(np.repeat(gamma * scale, per_entry), np.repeat(beta - gamma * scale * values["mean"], per_entry))],
            shape)


def flatten(module: nn.Flatten, shape: Shape) -> tuple[list, Shape]:
    """Flatten from the first non-batch axis on: nothing to compute in C order."""
    if module.start_dim not in (1, -len(shape)) or module.end_dim != -1:
        raise UnsupportedLayerError(f"{module}: only Flatten(start_dim=1, end_dim=-1) can be embedded.")
    return [], (math.prod(shape),)


def unflatten(module: nn.Unflatten, shape: Shape) -> tuple[list, Shape]:
    """Unflatten the feature axis: nothing to compute in C order."""
    if module.dim not in (1, -1) or len(shape) != 1:
        raise UnsupportedLayerError(f"{module}: only Unflatten(1, sizes) of a vector can be embedded.")
    sizes = tuple(int(s) for s in module.unflattened_size)
    if math.prod(sizes) != shape[0]:
        raise InputError(f"{module}: {sizes} does not hold the {shape[0]} entries of its input.")
    return [], sizes


SHAPED_RULES = {
    nn.Conv1d: affine_map, nn.Conv2d: affine_map, nn.Conv3d: affine_map,
    nn.AvgPool1d: affine_map, nn.AvgPool2d: affine_map,
    nn.AdaptiveAvgPool1d: affine_map, nn.AdaptiveAvgPool2d: affine_map,
    nn.BatchNorm2d: batchnorm_channels, nn.BatchNorm3d: batchnorm_channels,
    nn.Flatten: flatten, nn.Unflatten: unflatten,
    nn.MaxPool1d: max_pool, nn.MaxPool2d: max_pool, nn.LayerNorm: layer_norm,
}
