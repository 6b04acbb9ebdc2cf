"""Gray-box oracle in torch: float64 by default, on CPU or CUDA, batched over K inputs.

One oracle serves a block of K inputs at once: CasADi passes ``U`` (n_in x K, one input per
column) and gets ``Y`` (n_out x K); the Jacobian and Hessian are block diagonal. Weights stay
on the device; only U, the multipliers and the results cross. Values, Jacobian, the forward
state and the last Hessian are cached per point, so IPOPT's function, Jacobian and Hessian
requests at one iterate cost one forward pass, and repeated requests of CasADi's own
derivative construction cost a copy each. It is an evaluator
(:mod:`nncas.oracles.evaluator`): ``value``, ``jacobian``, ``hessian`` and
``second_derivative`` give numpy arrays; ``*_tensor`` the same blocks as tensors on the device.

Two derivative paths (``method``):

- ``"structured"``: for MLPs (affine layers, elementwise activations, softmax or affine head),
  reverse-mode Jacobian and a tangent-propagation Hessian of dense matrix products
  (:mod:`nncas.oracles.mlp`);
- ``"generic"``: any differentiable model, with ``torch.func`` (``jacrev`` for the Jacobian,
  ``jacfwd`` over ``grad`` for the Hessian of :math:`\\lambda^T NN(u)`);
- ``"auto"`` (default): structured when the model translates to an MLP of dense layers, else
  generic (also for convolutional chains, where torch's own kernels win).

``hessian_dtype`` (default: ``dtype``): the type the Lagrangian Hessian alone is computed in, from
a second copy of the weights in that type and the forward state of the point cast to it. Values
and Jacobians stay in ``dtype``, so IPOPT's feasibility and optimality tests are unchanged and
only its Newton steps use the rounded Hessian: float32 cuts the Hessian's time where the
float64 matrix products are the cost (a 2048² product on this project's 2 cores: 173 against
77 GFLOP/s; MNIST-274M's Hessian 4.7 against 7.8 s).
"""
from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import scipy.sparse
import torch
from torch.func import grad, jacfwd, jacrev, vmap

from ..errors import InputError, InputTypeError
from ..layers import Affine
from ..torch_import import from_torch
from ..tensors import to_numpy
from .mlp import StructuredMLP

METHODS = ("auto", "structured", "generic")


@dataclass(eq=False)
class _Point:
    """What is known at one input: its bytes (the cache key), u (K, n_in), y, the structured
    forward state, and, once asked for, the Jacobian and the per-layer output adjoints
    dy/da_l that let a Hessian at this point skip its own reverse sweep."""

    key: bytes
    u: torch.Tensor
    y: torch.Tensor
    state: list | None
    jacobian: torch.Tensor | None = None
    output_adjoints: list | None = None
    hessian_key: bytes | None = None
    hessian: torch.Tensor | None = None


def _has_sparse_maps(network) -> bool:
    """Whether the network holds convolutions or pooling (affine layers with sparse weights)."""
    return any(isinstance(layer, Affine) and scipy.sparse.issparse(layer.weight) for layer in network.layers)


class TorchOracle:
    """Value, block-diagonal Jacobian and Lagrangian Hessian of a torch model (a
    :class:`~nncas.oracles.evaluator.GrayBoxEvaluator`)."""

    def __init__(self, module: torch.nn.Module, n_in: int, n_out: int, device: torch.device,
                 batch: int = 1, dtype: torch.dtype = torch.float64, method: str = "auto",
                 translations: dict | None = None, hessian_dtype: torch.dtype | None = None):
        if method not in METHODS:
            raise InputError(f"method={method!r}; choose one of {METHODS}.")
        if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
            raise InputTypeError(f"dtype={dtype!r}; give a torch floating-point dtype such as "
                            "torch.float64 (the default) or torch.float32.")
        hessian_dtype = dtype if hessian_dtype is None else hessian_dtype
        if not isinstance(hessian_dtype, torch.dtype) or not hessian_dtype.is_floating_point:
            raise InputTypeError(f"hessian_dtype={hessian_dtype!r}; give a torch floating-point dtype such as "
                                 "torch.float32, or None for the oracle's dtype.")
        self.n_in, self.n_out, self.batch = n_in, n_out, batch
        self.device, self.dtype, self.hessian_dtype = device, dtype, hessian_dtype
        self.method, network = self._choose(module, method, translations)
        self._mlp, self._model = self._numerics(network, module, dtype)
        self._hessian_mlp, self._hessian_model = ((self._mlp, self._model) if hessian_dtype == dtype
                                                  else self._numerics(network, module, hessian_dtype))
        self._point: _Point | None = None
        self.evaluations = {"forward": 0, "jacobian": 0, "hessian": 0}

    def _choose(self, module, method, translations):
        """(method, the module's MLP translation, or None for the generic path)."""
        if method != "generic":
            try:
                network = from_torch(module, n_in=self.n_in, translations=translations)
                # convolutions as dense products lose to torch's own kernels: measured on the
                # MNIST CNN, Hessian 805 vs 517 ms and Jacobian 70 vs 7.5 ms (docs/oracle.md)
                wanted = method == "structured" or not _has_sparse_maps(network)
                if network.is_mlp() and wanted:
                    return "structured", network
            except (TypeError, ValueError):
                pass  # not translatable: only the generic path applies
            if method == "structured":
                raise InputError(f"method='structured' needs an MLP of supported layers; "
                                 f"{type(module).__name__} is not one. Use method='generic'.")
        return "generic", None

    def _numerics(self, network, module, dtype):
        """(structured MLP, None) for a translated ``network``, else (None, a copy of ``module``),
        on the oracle's device in ``dtype``."""
        if network is not None:
            return StructuredMLP(network, self.device, dtype), None
        model = copy.deepcopy(module).to(device=self.device, dtype=dtype).eval()
        model.requires_grad_(False)
        return None, model

    # numerical core -----------------------------------------------------------------
    def _tensor(self, flat: np.ndarray, rows: int) -> torch.Tensor:
        """CasADi (rows x K) nonzeros, column-major (one sample after another) -> torch (K, rows)."""
        return torch.tensor(flat, dtype=self.dtype, device=self.device).reshape(-1, rows)

    def _at(self, u: np.ndarray) -> "_Point":
        """Forward state at ``u`` (nonzeros of the n_in x K input), computed once per point."""
        key = u.tobytes()
        if self._point is None or self._point.key != key:
            self.evaluations["forward"] += 1
            ut = self._tensor(u, self.n_in)
            with torch.no_grad():
                if self._mlp is not None:
                    y, state = self._mlp.forward(ut)
                else:
                    y, state = self._model(ut), None
            self._point = _Point(key, ut, y, state)
        return self._point

    def value(self, u: np.ndarray) -> np.ndarray:
        """y (K, n_out) at ``u``, the column-major values of the n_in x K input."""
        return to_numpy(self._at(u).y, dtype=None)

    def jacobian(self, u: np.ndarray) -> np.ndarray:
        """:meth:`jacobian_tensor` as an array."""
        return to_numpy(self.jacobian_tensor(u), dtype=None)

    def hessian(self, u: np.ndarray, lam: np.ndarray) -> np.ndarray:
        """:meth:`hessian_tensor` as an array."""
        return to_numpy(self.hessian_tensor(u, lam), dtype=None)

    def second_derivative(self, u: np.ndarray) -> np.ndarray:
        """:meth:`second_derivative_tensor` as an array."""
        return to_numpy(self.second_derivative_tensor(u), dtype=None)

    def jacobian_tensor(self, u: np.ndarray) -> torch.Tensor:
        """dy/du per sample (K, n_out, n_in)."""
        point = self._at(u)
        if point.jacobian is None:
            self.evaluations["jacobian"] += 1
            with torch.no_grad():
                if self._mlp is not None:
                    point.jacobian, point.output_adjoints = self._mlp.jacobian(point.state, point.y)
                else:
                    point.jacobian = vmap(jacrev(self._single))(point.u)
        return point.jacobian

    def hessian_tensor(self, u: np.ndarray, lam: np.ndarray) -> torch.Tensor:
        """Hessian of lam_k^T y_k with respect to u_k, per sample (K, n_in, n_in), computed in
        ``hessian_dtype`` and returned in ``dtype``."""
        point = self._at(u)
        key = lam.tobytes()
        if point.hessian_key != key:
            low = self.hessian_dtype
            lam_t = self._tensor(lam, self.n_out).to(low)
            self.evaluations["hessian"] += 1
            with torch.no_grad():
                if self._hessian_mlp is not None:
                    state = [(kind, *(t.to(low) for t in tensors)) for kind, *tensors in point.state]
                    adjoints = None if point.output_adjoints is None else [a.to(low) for a in point.output_adjoints]
                    hess = self._hessian_mlp.hessian(state, lam_t, adjoints)
                else:
                    model = self._hessian_model
                    hess = vmap(lambda v, l: jacfwd(grad(lambda w: (l * model(w[None])[0]).sum()))(v))(
                        point.u.to(low), lam_t)
            point.hessian_key, point.hessian = key, hess.to(self.dtype)
        return point.hessian

    def second_derivative_tensor(self, u: np.ndarray) -> torch.Tensor:
        """d^2 y_a / du_b du_c per sample (K, n_out, n_in, n_in), by torch.func (any model;
        needed only when CasADi differentiates the Jacobian function itself)."""
        return vmap(jacfwd(jacrev(self._single)))(self._at(u).u)

    def _single(self, v):
        """The network on one sample (n_in,) -> (n_out,), differentiable by torch.func."""
        if self._mlp is not None:
            return self._mlp.forward(v[None])[0][0]
        return self._model(v[None])[0]
