"""Framework-neutral network layers: numpy weights, one math definition per layer.

A layer maps a column vector ``z`` (length ``n_in``) to a column vector (length
``n_out``). Each layer writes its math once, in :meth:`Layer.apply`, against a small
namespace of array operations (``ops``); the same code then evaluates with numpy,
builds CasADi expressions (SX, MX, DM) or runs in torch. No CasADi object is needed
to test a layer.

Layers also propagate interval bounds (used for full-space intermediate bounds).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from types import SimpleNamespace

import casadi as ca
import numpy as np
import scipy.sparse
import scipy.special
import torch

from .errors import InputError

# Array operations per backend. Every layer's math is written against these names.
# numpy arrays are handled as (n, batch) matrices: one column per point.
NUMPY_OPS = SimpleNamespace(
    tanh=np.tanh, exp=np.exp, log=np.log, log1p=np.log1p, erf=scipy.special.erf, sqrt=np.sqrt,
    where=np.where, maximum=np.maximum, max=lambda z: np.max(z, axis=0, keepdims=True),
    sum=lambda z: np.sum(z, axis=0, keepdims=True),
    matmul=lambda W, z: W @ z, column=lambda v: v[:, None],
)
CASADI_OPS = SimpleNamespace(
    tanh=ca.tanh, exp=ca.exp, log=ca.log, log1p=ca.log1p, erf=ca.erf, sqrt=ca.sqrt,
    where=ca.if_else, maximum=ca.fmax, max=ca.mmax, sum=ca.sum1,
    matmul=lambda W, z: ca.mtimes(ca.DM(W), z), column=ca.DM,
)
# torch tensors are (batch, features): reductions run over the last axis. Only activations
# are evaluated this way (the torch oracle applies affine layers itself).
TORCH_OPS = SimpleNamespace(
    tanh=torch.tanh, exp=torch.exp, log=torch.log, log1p=torch.log1p, erf=torch.special.erf, sqrt=torch.sqrt,
    where=torch.where, maximum=torch.maximum, max=lambda z: z.amax(dim=-1, keepdim=True),
    sum=lambda z: z.sum(dim=-1, keepdim=True),
)


class Layer:
    """Base class: ``apply(z, ops)`` holds the math; ``n_in``/``n_out`` the sizes."""

    n_in: int
    n_out: int
    #: True when second derivatives vanish almost everywhere (IPOPT sees no curvature from the
    #: layer where it is an expression: the reduced space and the gray box warn)
    piecewise_linear: bool = False

    def apply(self, z, ops):
        raise NotImplementedError

    def numpy(self, z: np.ndarray) -> np.ndarray:
        """Evaluate on a vector (n_in,) or a matrix (n_in, batch) of float64 values."""
        z = np.asarray(z, dtype=float)
        out = self.apply(z.reshape(z.shape[0], -1), NUMPY_OPS)
        return out.reshape(-1) if z.ndim == 1 else out

    def casadi(self, z):
        """CasADi expression (SX, MX or DM column of length ``n_in``)."""
        return self.apply(z, CASADI_OPS)

    def interval(self, lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Bounds on the output for every input in the box ``[lo, hi]``."""
        raise NotImplementedError

    def with_size(self, n: int) -> "Layer":
        """Elementwise layers learn their size from the layer before them."""
        return self


@dataclass(eq=False)
class Affine(Layer):
    r"""Affine map :math:`y = W z + b`, ``W`` of shape (n_out, n_in): a dense array, or a
    ``scipy.sparse`` matrix kept sparse (a convolution: its kernel at every output position).

    ``parameters`` counts the trained weights it stands for (a convolution's kernel and bias);
    by default the entries of ``W`` and ``b``.
    """

    weight: np.ndarray
    bias: np.ndarray
    parameters: int | None = None

    def __post_init__(self):
        if scipy.sparse.issparse(self.weight):
            self.weight = scipy.sparse.csr_matrix(self.weight, dtype=float)
            entries = self.weight.data
        else:
            self.weight = entries = np.atleast_2d(np.asarray(self.weight, dtype=float))
        self.bias = np.asarray(self.bias, dtype=float).reshape(-1)
        if self.bias.shape[0] != self.weight.shape[0]:
            raise InputError(
                f"Affine layer: bias has {self.bias.shape[0]} entries but the weight has "
                f"{self.weight.shape[0]} rows; they must match.")
        if not (np.all(np.isfinite(entries)) and np.all(np.isfinite(self.bias))):
            raise InputError("Affine layer: weight or bias holds NaN or Inf; "
                             "check the trained model before embedding it.")

    n_in = property(lambda self: self.weight.shape[1])
    n_out = property(lambda self: self.weight.shape[0])

    @property
    def n_params(self) -> int:
        if self.parameters is not None:
            return self.parameters
        return self.weight.shape[0] * self.weight.shape[1] + self.bias.size

    def dense_weight(self) -> np.ndarray:
        return self.weight.toarray() if scipy.sparse.issparse(self.weight) else self.weight

    def apply(self, z, ops):
        return ops.matmul(self.weight, z) + ops.column(self.bias)

    def interval(self, lo, hi):
        center, radius = (hi + lo) / 2, (hi - lo) / 2
        mid = self.weight @ center + self.bias
        spread = abs(self.weight) @ radius
        return mid - spread, mid + spread


@dataclass(eq=False)
class Scale(Layer):
    r"""Elementwise affine map :math:`y = s \odot z + t` (input/output scaling, BatchNorm)."""

    scale: np.ndarray
    offset: np.ndarray

    def __post_init__(self):
        self.scale = np.asarray(self.scale, dtype=float).reshape(-1)
        self.offset = np.asarray(self.offset, dtype=float).reshape(-1) * np.ones_like(self.scale)
        if not (np.all(np.isfinite(self.scale)) and np.all(np.isfinite(self.offset))):
            raise InputError("Scale layer: scale or offset holds NaN or Inf.")

    n_in = property(lambda self: self.scale.shape[0])
    n_out = n_in

    def apply(self, z, ops):
        return ops.column(self.scale) * z + ops.column(self.offset)

    def interval(self, lo, hi):
        a, b = self.scale * lo + self.offset, self.scale * hi + self.offset
        return np.minimum(a, b), np.maximum(a, b)


class Activation(Layer):
    """A parameter-light activation whose size follows the layer before it."""

    n_in = n_out = None
    _derived = ("n_in", "n_out", "minimum", "monotone")

    def with_size(self, n):
        sized = self.__class__.__new__(self.__class__)
        sized.__dict__.update(self.__dict__)
        sized.n_in = sized.n_out = n
        return sized

    def __repr__(self):
        params = ", ".join(f"{k}={v}" for k, v in self.__dict__.items() if k not in self._derived)
        return f"{type(self).__name__}({params})"


class Elementwise(Activation):
    """A scalar activation applied to every coordinate."""

    #: True when the scalar function is nondecreasing (bounds map endpoints to endpoints)
    monotone: bool = True
    #: (argmin, min value) of a non-monotone, quasi-convex activation
    minimum: tuple[float, float] | None = None

    def interval(self, lo, hi):
        a, b = self.numpy(lo), self.numpy(hi)
        if self.monotone:
            return a, b
        zmin, vmin = self.minimum
        low = np.where((lo <= zmin) & (zmin <= hi), vmin, np.minimum(a, b))
        return low, np.maximum(a, b)


class Tanh(Elementwise):
    r""":math:`\tanh(z)`."""

    def apply(self, z, ops):
        return ops.tanh(z)


class Sigmoid(Elementwise):
    r""":math:`1/(1+e^{-z}) = (1 + \tanh(z/2))/2` (the tanh form never overflows)."""

    def apply(self, z, ops):
        return 0.5 * (1 + ops.tanh(0.5 * z))


class Softplus(Elementwise):
    r""":math:`\log(1 + e^{\beta z})/\beta`, and :math:`z` where :math:`\beta z >` threshold (as torch)."""

    def __init__(self, beta: float = 1.0, threshold: float = 20.0):
        self.beta, self.threshold = float(beta), float(threshold)

    def apply(self, z, ops):
        bz = self.beta * z
        safe = ops.where(bz > self.threshold, 0 * bz, bz)
        return ops.where(bz > self.threshold, z, ops.log1p(ops.exp(safe)) / self.beta)


class SiLU(Elementwise):
    r""":math:`z\,\sigma(z)`; minimum -0.27846 at z = -1.27846."""

    monotone = False
    minimum = (-1.2784645427610738, -0.2784645427610738)

    def apply(self, z, ops):
        return z * 0.5 * (1 + ops.tanh(0.5 * z))


class GELU(Elementwise):
    r""":math:`z\,\Phi(z) = z(1 + \mathrm{erf}(z/\sqrt2))/2`, or torch's tanh approximation."""

    monotone = False

    def __init__(self, approximate: str = "none"):
        if approximate not in ("none", "tanh"):
            raise InputError(f"GELU: approximate={approximate!r}; use 'none' or 'tanh'.")
        self.approximate = approximate
        self.minimum = (-0.7517916, -0.1699884) if approximate == "none" else (-0.7522, -0.1700)

    def apply(self, z, ops):
        if self.approximate == "tanh":
            return 0.5 * z * (1 + ops.tanh(math.sqrt(2 / math.pi) * (z + 0.044715 * z ** 3)))
        return 0.5 * z * (1 + ops.erf(z / math.sqrt(2)))

    def interval(self, lo, hi):
        low, high = super().interval(lo, hi)
        return low - 1e-6, high  # the tabulated minimum is rounded


class ELU(Elementwise):
    r""":math:`z` for :math:`z>0`, else :math:`\alpha(e^z-1)`."""

    def __init__(self, alpha: float = 1.0):
        self.alpha = float(alpha)
        self.monotone = self.alpha >= 0
        self.minimum = None if self.monotone else (-np.inf, -self.alpha)

    def apply(self, z, ops):
        return ops.where(z > 0, z, self.alpha * (ops.exp(ops.where(z > 0, 0 * z, z)) - 1))


class ReLU(Elementwise):
    r""":math:`\max(0, z)`."""

    piecewise_linear = True

    def apply(self, z, ops):
        return ops.maximum(z, 0 * z)


class LeakyReLU(Elementwise):
    r""":math:`\max(z, 0) + s\min(z, 0)` with slope ``s`` in [0, 1)."""

    piecewise_linear = True

    def __init__(self, negative_slope: float = 0.01):
        self.negative_slope = float(negative_slope)

    def apply(self, z, ops):
        return ops.where(z > 0, z, self.negative_slope * z)


@dataclass(eq=False)
class MaxPool(Layer):
    r""":math:`y_j = \max_{i \in W_j} z_i` over index windows: row j of ``windows`` lists W_j's
    entries of z (-1 marks padding, which never wins). Piecewise linear: the full space embeds it
    by complementarity (:mod:`nncas.formulations.full`), the reduced space as CasADi's ``mmax``."""

    windows: np.ndarray
    inputs: int
    piecewise_linear = True

    def __post_init__(self):
        self.windows = np.asarray(self.windows, dtype=np.int64)
        if self.windows.ndim != 2 or (self.windows >= self.inputs).any() or (self.windows.max(axis=1) < 0).any():
            raise InputError("MaxPool layer: every window must list entries of the input (and at least one).")

    n_in = property(lambda self: self.inputs)
    n_out = property(lambda self: self.windows.shape[0])

    def entries(self) -> tuple[np.ndarray, np.ndarray]:
        """(output j, input i) of every window entry, padding left out."""
        rows, slots = np.nonzero(self.windows >= 0)
        return rows, self.windows[rows, slots]

    def apply(self, z, ops):
        if ops is CASADI_OPS:
            return ca.vertcat(*[ca.mmax(z[[int(i) for i in w if i >= 0]]) for w in self.windows])
        if ops is NUMPY_OPS:
            padded = np.concatenate([z, np.full((1, z.shape[1]), -np.inf)])  # index -1: padding
            return padded[self.windows].max(axis=1)
        raise NotImplementedError("MaxPool runs in torch only inside a gray box.")

    def interval(self, lo, hi):
        pad = np.array([-np.inf])
        return (np.concatenate([lo, pad])[self.windows].max(axis=1),
                np.concatenate([hi, pad])[self.windows].max(axis=1))


class LayerNorm(Activation):
    r""":math:`y = \gamma \odot (z - \mu) / \sqrt{\sigma^2 + \epsilon} + \beta` with the mean
    :math:`\mu` and (biased) variance :math:`\sigma^2` of all n entries of z."""

    def __init__(self, eps: float = 1e-5, weight=None, bias=None):
        self.eps = float(eps)
        self.weight = None if weight is None else np.asarray(weight, dtype=float).reshape(-1)
        self.bias = None if bias is None else np.asarray(bias, dtype=float).reshape(-1)

    def apply(self, z, ops):
        n = self.n_in
        centered = z - ops.sum(z) / n
        y = centered / ops.sqrt(ops.sum(centered * centered) / n + self.eps)
        if self.weight is not None:
            y = ops.column(self.weight) * y
        if self.bias is not None:
            y = y + ops.column(self.bias)
        return y

    def interval(self, lo, hi):
        """Normalized entries lie in [-sqrt(n - 1), sqrt(n - 1)]."""
        reach = math.sqrt(max(self.n_in - 1, 0)) * (np.ones(self.n_in) if self.weight is None else np.abs(self.weight))
        centre = np.zeros(self.n_in) if self.bias is None else self.bias
        return centre - reach, centre + reach


class Softmax(Activation):
    r""":math:`y_i = e^{z_i - m} / \sum_j e^{z_j - m}`, :math:`m = \max_j z_j` (shift for stability)."""

    def apply(self, z, ops):
        e = ops.exp(z - ops.max(z))
        return e / ops.sum(e)

    def interval(self, lo, hi):
        e_lo, e_hi = np.exp(lo - hi.max()), np.exp(hi - hi.max())
        rest_hi, rest_lo = e_hi.sum() - e_hi, e_lo.sum() - e_lo
        return e_lo / (e_lo + rest_hi), e_hi / (e_hi + rest_lo)


class LogSoftmax(Softmax):
    r""":math:`y_i = z_i - m - \log\sum_j e^{z_j - m}`."""

    def apply(self, z, ops):
        shifted = z - ops.max(z)
        return shifted - ops.log(ops.sum(ops.exp(shifted)))

    def interval(self, lo, hi):
        low, high = Softmax.interval(self, lo, hi)
        return np.log(low), np.log(high)
