r"""Structured derivatives of a multilayer perceptron, batched over K inputs, in torch.

The network is :math:`z_1 = W_1 u + b_1,\ a_l = \sigma_l(z_l),\ z_{l+1} = W_{l+1} a_l + b_{l+1}`,
optionally ending in a softmax or log-softmax head :math:`y = h(z_L)`.

- Jacobian, reverse mode (cost :math:`2 m P` for m outputs and P weights):
  :math:`G \leftarrow G\,\mathrm{diag}(\sigma'(z_l))`, :math:`G \leftarrow G W_l`, from :math:`G = \partial h`.
- Hessian of :math:`\lambda^T y` (cost :math:`2 n P + 2 n^2 \sum_l \mathrm{width}_l`):
  with forward tangents :math:`T_l = \partial z_l / \partial u` and the adjoints
  :math:`\bar a_l = \partial(\lambda^T y)/\partial a_l`,

  .. math:: H = \sum_l T_l^T \mathrm{diag}(\sigma_l''(z_l) \odot \bar a_l) T_l + T_L^T \nabla^2 (\lambda^T h) T_L.

Tensors carry a leading batch axis K; tangents are stored transposed, (K, n, width).
"""
from __future__ import annotations

import torch
from torch.func import jvp

from ..layers import TORCH_OPS, Affine, Elementwise, LogSoftmax, Scale, Softmax
from ..network import Network


def _derivatives(layer, z):
    """sigma(z), sigma'(z), sigma''(z) of an elementwise layer, by nested forward-mode AD."""
    ones = torch.ones_like(z)

    def value_and_slope(w):
        return jvp(lambda v: layer.apply(v, TORCH_OPS), (w,), (ones,))

    (value, slope), (_, curvature) = jvp(value_and_slope, (z,), (ones,))
    return value, slope, curvature


class StructuredMLP:
    """Batched value, Jacobian and Lagrangian Hessian of an MLP held on ``device``."""

    def __init__(self, network: Network, device: torch.device, dtype: torch.dtype):
        if not network.is_mlp():
            raise ValueError(f"{network.name} is not an MLP of affine and elementwise layers.")
        self.n_in, self.n_out = network.n_in, network.n_out
        self.steps = []
        for layer in network.layers:
            if isinstance(layer, (Affine, Scale)):
                weight = layer.weight if isinstance(layer, Affine) else None
                scale = None if weight is not None else torch.as_tensor(layer.scale, dtype=dtype, device=device)
                bias = layer.bias if weight is not None else layer.offset
                self.steps.append(("affine",
                                   None if weight is None else torch.as_tensor(weight, dtype=dtype, device=device),
                                   scale, torch.as_tensor(bias, dtype=dtype, device=device)))
            elif isinstance(layer, Elementwise):
                self.steps.append(("act", layer))
            else:
                self.steps.append(("head", layer))

    # forward pass -------------------------------------------------------------------
    def forward(self, u: torch.Tensor):
        """Output (K, m) and the per-layer state the derivatives need.

        The state holds ("act", sigma', sigma'') per activation and ("head", z) for a head.
        """
        a, state = u, []
        for step in self.steps:
            if step[0] == "affine":
                a = self._affine(step, a)
            elif step[0] == "act":
                a, slope, curvature = _derivatives(step[1], a)
                state.append(("act", slope, curvature))
            else:
                state.append(("head", a))
                a = step[1].apply(a, TORCH_OPS)
        return a, state

    @staticmethod
    def _affine(step, a):
        _, weight, scale, bias = step
        return (a @ weight.T if weight is not None else a * scale) + bias

    @staticmethod
    def _pullback(step, g):
        """g @ d(affine)/d(input): (K, r, out) -> (K, r, in)."""
        _, weight, scale, _ = step
        return g @ weight if weight is not None else g * scale

    @staticmethod
    def _pushforward(step, tangent):
        """Transposed tangents through an affine layer: (K, n, in) -> (K, n, out)."""
        _, weight, scale, _ = step
        return tangent @ weight.T if weight is not None else tangent * scale

    @staticmethod
    def _head_jacobian(layer, z):
        """dh/dz (K, m, m) of the softmax or log-softmax head at z (K, m)."""
        s = torch.softmax(z, dim=-1)
        if isinstance(layer, LogSoftmax):
            eye = torch.eye(z.shape[-1], dtype=z.dtype, device=z.device)
            return eye - s[:, None, :]
        return torch.diag_embed(s) - s[:, :, None] * s[:, None, :]

    @staticmethod
    def _head_hessian(layer, z, lam):
        r"""Hessian of lam^T h(z) (K, m, m); for softmax with :math:`v = s \odot (\lambda - \lambda^T s)`
        it is :math:`\mathrm{diag}(v) - v s^T - s v^T`."""
        s = torch.softmax(z, dim=-1)
        if isinstance(layer, LogSoftmax):
            total = lam.sum(-1)[:, None, None]
            return -total * (torch.diag_embed(s) - s[:, :, None] * s[:, None, :])
        v = s * (lam - (lam * s).sum(-1, keepdim=True))
        return torch.diag_embed(v) - v[:, :, None] * s[:, None, :] - s[:, :, None] * v[:, None, :]

    @staticmethod
    def _first_tangent(step):
        """Transposed tangent of the first affine layer: W^T (the identity pushed through)."""
        _, weight, scale, _ = step
        return weight.T if weight is not None else torch.diag(scale)

    def _backward(self, state):
        """Steps in reverse order, each with its saved state (None for affine layers)."""
        saved = iter(reversed(state))
        for step in reversed(self.steps):
            yield step, (None if step[0] == "affine" else next(saved))

    # derivatives ---------------------------------------------------------------------
    def jacobian(self, state, y):
        """dy/du (K, m, n) by reverse accumulation of an identity seed."""
        g = torch.eye(self.n_out, dtype=y.dtype, device=y.device).expand(y.shape[0], -1, -1)
        for step, saved in self._backward(state):
            if step[0] == "affine":
                g = self._pullback(step, g)
            elif step[0] == "act":
                g = g * saved[1][:, None, :]
            else:
                g = g @ self._head_jacobian(step[1], saved[1])
        return g

    def hessian(self, state, lam):
        """Hessian of lam^T y with respect to u (K, n, n)."""
        # reverse sweep: c_l = sigma''(z_l) * adjoint of a_l
        curvature_weights, adj = [], lam[:, None, :]
        for step, saved in self._backward(state):
            if step[0] == "affine":
                adj = self._pullback(step, adj)
            elif step[0] == "act":
                curvature_weights.append(saved[2] * adj[:, 0, :])
                adj = adj * saved[1][:, None, :]
            else:
                adj = adj @ self._head_jacobian(step[1], saved[1])
        curvature_weights.reverse()
        # forward sweep with tangents T (K, n, width), starting from the identity
        K = lam.shape[0]
        eye = torch.eye(self.n_in, dtype=lam.dtype, device=lam.device)
        tangent = eye.expand(K, -1, -1)
        hess = torch.zeros(K, self.n_in, self.n_in, dtype=lam.dtype, device=lam.device)
        weights, saved_states = iter(curvature_weights), iter(state)
        for index, step in enumerate(self.steps):
            if step[0] == "affine":
                tangent = (self._first_tangent(step).expand(K, -1, -1) if index == 0
                           else self._pushforward(step, tangent))
                continue
            saved = next(saved_states)
            if step[0] == "act":
                c = next(weights)
                hess += (tangent * c[:, None, :]) @ tangent.transpose(1, 2)
                tangent = tangent * saved[1][:, None, :]
            else:
                hess += tangent @ self._head_hessian(step[1], saved[1], lam) @ tangent.transpose(1, 2)
        return hess
