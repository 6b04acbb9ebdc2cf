"""Gray-box oracle in torch: float64 by default, on CPU or CUDA, batched over K inputs.

One oracle serves a block of K inputs at once: CasADi passes ``U`` (n_in x K, one input per
column) and gets ``Y`` (n_out x K); the Jacobian and Hessian are block diagonal. Weights stay
on the device; only U, the multipliers and the results cross. Values, Jacobian and the
forward state are cached per point, so IPOPT's function, Jacobian and Hessian requests at
one iterate cost one forward pass.

Two derivative paths (``method``):

- ``"structured"``: for MLPs (affine layers, elementwise activations, softmax or affine head),
  reverse-mode Jacobian and a tangent-propagation Hessian of dense matrix products
  (:mod:`nncas.oracles.mlp`);
- ``"generic"``: any differentiable model, with ``torch.func`` (``jacrev`` for the Jacobian,
  ``jacfwd`` over ``grad`` for the Hessian of :math:`\\lambda^T NN(u)`);
- ``"auto"`` (default): structured when the model translates to an MLP, else generic.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass

import casadi as ca
import numpy as np
import torch
from torch.func import grad, jacfwd, jacrev, vmap

from ..placement import Placement
from ..torch_import import from_torch
from .callback import BufferCallback, unpin, write
from .mlp import StructuredMLP

METHODS = ("auto", "structured", "generic")


def block_diagonal(rows: int, cols: int, blocks: int) -> ca.Sparsity:
    """Sparsity of ``blocks`` dense (rows x cols) blocks on the diagonal."""
    return ca.diagcat(*[ca.Sparsity.dense(rows, cols)] * blocks)


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


class TorchOracle:
    """Function, block-diagonal Jacobian and Lagrangian Hessian of a torch model."""

    def __init__(self, module: torch.nn.Module, n_in: int, n_out: int, device: torch.device,
                 batch: int = 1, dtype: torch.dtype = torch.float64, method: str = "auto"):
        if method not in METHODS:
            raise ValueError(f"method={method!r}; choose one of {METHODS}.")
        if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
            raise TypeError(f"dtype={dtype!r}; give a torch floating-point dtype such as "
                            "torch.float64 (the default) or torch.float32.")
        self.n_in, self.n_out, self.batch = n_in, n_out, batch
        self.device, self.dtype = device, dtype
        self.method, self._mlp, self._model = self._choose(module, method)
        self._placed = {}
        self._point: _Point | None = None
        self.evaluations = {"forward": 0, "jacobian": 0, "hessian": 0}
        self._build_functions()

    def _choose(self, module, method):
        if method != "generic":
            try:
                network = from_torch(module, n_in=self.n_in)
                if network.is_mlp():
                    return "structured", StructuredMLP(network, self.device, self.dtype), None
            except (TypeError, ValueError):
                pass  # not translatable: only the generic path applies
            if method == "structured":
                raise ValueError(f"method='structured' needs an MLP of supported layers; "
                                 f"{type(module).__name__} is not one. Use method='generic'.")
        model = copy.deepcopy(module).to(device=self.device, dtype=self.dtype).eval()
        model.requires_grad_(False)
        return "generic", None, model

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

    def value(self, u: np.ndarray) -> torch.Tensor:
        """y (K, n_out) at ``u``, the column-major values of the n_in x K input."""
        return self._at(u).y

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
        """Hessian of lam_k^T y_k with respect to u_k, per sample (K, n_in, n_in)."""
        point = self._at(u)
        lam_t = self._tensor(lam, self.n_out)
        self.evaluations["hessian"] += 1
        with torch.no_grad():
            if self._mlp is not None:
                return self._mlp.hessian(point.state, lam_t, point.output_adjoints)
        return vmap(lambda v, l: jacfwd(grad(lambda w: (l * self._single(w)).sum()))(v))(point.u, lam_t)

    def _single(self, v):
        return self._model(v[None])[0]

    # CasADi functions ------------------------------------------------------------------
    def _build_functions(self):
        n, m, K = self.n_in, self.n_out, self.batch
        dense_u, dense_y = ca.Sparsity.dense(n, K), ca.Sparsity.dense(m, K)
        jac_sp, hess_sp = block_diagonal(m, n, K), block_diagonal(n, n, K)

        def values(inputs, outputs):
            write(outputs[0], self.value(inputs[0]))

        def jacobian(inputs, outputs):
            write(outputs[0], self.jacobian_tensor(inputs[0]).transpose(1, 2))

        def hessian(inputs, outputs):
            write(outputs[0], self.hessian_tensor(inputs[0], inputs[1]).transpose(1, 2))

        self._tag = tag = f"nncas_torch_{id(self):x}"
        self._jacobian_callback = BufferCallback(f"{tag}_jac", [dense_u, dense_y], [jac_sp], jacobian)
        self.function = BufferCallback(f"{tag}_f", [dense_u], [dense_y], values,
                                       jacobian=self._jacobian_callback)
        self.hessian = BufferCallback(f"{tag}_hess", [dense_u, dense_y], [hess_sp], hessian)
        U = ca.MX.sym("u", n, K)
        self.jacobian = ca.Function(f"{tag}_jacobian", [U], [self._jacobian_callback(U, ca.MX(m, K))],
                                    ["u"], ["jac"])

    def placed_jacobian(self, placement: Placement) -> ca.Function:
        """u -> the Jacobian blocks (K, n_out, n_in) written into ``placement.sparsity``."""
        return self._placed_callback("jac", placement, self.jacobian_tensor,
                                     [ca.Sparsity.dense(self.n_in, self.batch)])

    def placed_hessian(self, placement: Placement) -> ca.Function:
        """(u, lam) -> the Hessian blocks (K, n_in, n_in) written into ``placement.sparsity``."""
        return self._placed_callback("hess", placement, self.hessian_tensor,
                                     [ca.Sparsity.dense(self.n_in, self.batch),
                                      ca.Sparsity.dense(self.n_out, self.batch)])

    def _placed_callback(self, kind: str, placement: Placement, blocks, sparsity_in) -> BufferCallback:
        """A callback writing ``blocks(*inputs)`` gathered into ``placement.sparsity``; one per
        kind and placement, reused, so rebuilding a solver does not accumulate them."""
        key = kind, placement.digest()
        if key not in self._placed:
            gather = placement.on(self.device)

            def evaluate(inputs, outputs):
                write(outputs[0], gather(blocks(*inputs)))

            self._placed[key] = BufferCallback(f"{self._tag}_placed_{kind}", sparsity_in,
                                               [placement.sparsity], evaluate)
        return self._placed[key]

    def release(self) -> None:
        """Let this oracle and its device memory go once nothing else holds it.

        Its CasADi callbacks are pinned until then (see :mod:`nncas.oracles.callback`), so that
        solvers and ``opti.to_function`` results keep working after the ``Opti`` is gone.
        Afterwards, those Functions fail with "Callback object has been deleted".
        """
        for callback in (self.function, self._jacobian_callback, self.hessian, *self._placed.values()):
            unpin(callback)
        self._placed.clear()
