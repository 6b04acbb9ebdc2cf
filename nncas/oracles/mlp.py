r"""Structured derivatives of a multilayer perceptron, batched over K inputs, in torch.

The network is :math:`z_1 = W_1 u + b_1,\ a_l = \sigma_l(z_l),\ z_{l+1} = W_{l+1} a_l + b_{l+1}`,
optionally ending in a softmax or log-softmax head :math:`y = h(z_L)`.

- Jacobian, reverse mode (cost :math:`2 m P` for m outputs and P weights):
  :math:`G \leftarrow G\,\mathrm{diag}(\sigma'(z_l))`, :math:`G \leftarrow G W_l`, from :math:`G = \partial h`.
- Hessian of :math:`\lambda^T y` (cost about :math:`2 r P + 2 r^2 \sum_l \mathrm{width}_l` in r
  coordinates: the n inputs, or the first layer's outputs when that layer narrows, plus
  :math:`2 r n (r + n)` to map back):
  with forward tangents :math:`T_l = \partial z_l / \partial u` and the adjoints
  :math:`\bar a_l = \partial(\lambda^T y)/\partial a_l`,

  .. math:: H = \sum_l T_l^T \mathrm{diag}(\sigma_l''(z_l) \odot \bar a_l) T_l + T_L^T \nabla^2 (\lambda^T h) T_L.

Tensors carry a leading batch axis K; tangents are stored transposed, (K, r, width). The
Hessian's work arrays (tangents, the Gram sum) are kept between calls, one set per thread:
allocated afresh, each multi-megabyte array costs page faults on every call.
"""
from __future__ import annotations

import math
import threading

import torch
from torch.func import jvp

from ..layers import TORCH_OPS, Affine, Elementwise, LogSoftmax, Scale, Sigmoid, Tanh
from ..network import Network


def _tanh_derivatives(z):
    t = torch.tanh(z)
    slope = 1 - t * t
    return t, slope, -2 * t * slope


def _sigmoid_derivatives(z):
    s = torch.sigmoid(z)
    slope = s * (1 - s)
    return s, slope, slope * (1 - 2 * s)


# closed forms for the paper's activations (a few elementwise kernels instead of nested AD)
_CLOSED_FORMS = {Tanh: _tanh_derivatives, Sigmoid: _sigmoid_derivatives}


def _derivatives(layer, z):
    """sigma(z), sigma'(z), sigma''(z) of an elementwise layer: closed form where known, else
    by nested forward-mode AD of the layer's own definition."""
    closed = _CLOSED_FORMS.get(type(layer))
    if closed is not None:
        return closed(z)
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
                weight = layer.dense_weight() if isinstance(layer, Affine) else None
                scale = None if weight is not None else torch.as_tensor(layer.scale, dtype=dtype, device=device)
                bias = layer.bias if weight is not None else layer.offset
                self.steps.append(("affine",
                                   None if weight is None else torch.as_tensor(weight, dtype=dtype, device=device),
                                   scale, torch.as_tensor(bias, dtype=dtype, device=device)))
            elif isinstance(layer, Elementwise):
                self.steps.append(("act", layer))
            else:
                self.steps.append(("head", layer))
        self._start, self._input_map = self._narrowing_input_map(device, dtype)
        self._coordinates = self.n_in if self._input_map is None else self._input_map.shape[0]
        self._workspaces = threading.local()

    def __getstate__(self):
        return {key: value for key, value in self.__dict__.items() if key != "_workspaces"}

    def __setstate__(self, state):
        self.__dict__.update(state, _workspaces=threading.local())

    def _workspace(self) -> "_Workspace":
        """This thread's Hessian work arrays."""
        workspace = getattr(self._workspaces, "arrays", None)
        if workspace is None:
            workspace = self._workspaces.arrays = _Workspace()
        return workspace

    def _narrowing_input_map(self, device, dtype):
        """The leading affine layers as one matrix M (r x n_in) when they narrow (r < n_in).

        Tangents then start in the r coordinates z = M u + b, and H = M^T H_z M, which saves
        work when the first layer is narrower than the input (e.g. 784 pixels into 512).
        """
        count, M = 0, torch.eye(self.n_in, dtype=dtype, device=device)
        while count < len(self.steps) and self.steps[count][0] == "affine":
            _, weight, scale, _ = self.steps[count]
            M = weight @ M if weight is not None else scale[:, None] * M
            count += 1
        if count == 0 or M.shape[0] >= self.n_in:
            return 0, None
        return count, M

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

    def _backward(self, state):
        """Steps in reverse order, each with its saved state (None for affine layers)."""
        saved = iter(reversed(state))
        for step in reversed(self.steps):
            yield step, (None if step[0] == "affine" else next(saved))

    # derivatives ---------------------------------------------------------------------
    def _reverse(self, state, seed):
        """Reverse sweep from ``seed`` (K, q, m): seed @ dy/du (K, q, n), and seed @ dy/da_l
        (K, q, width_l) at every activation layer's output, in forward order."""
        g, output_adjoints = seed, []
        for step, saved in self._backward(state):
            if step[0] == "affine":
                g = self._pullback(step, g)
            elif step[0] == "act":
                output_adjoints.append(g)
                g = g * saved[1][:, None, :]
            else:
                g = g @ self._head_jacobian(step[1], saved[1])
        output_adjoints.reverse()
        return g, output_adjoints

    def jacobian(self, state, y):
        """dy/du (K, m, n) by reverse accumulation of an identity seed, and the output adjoints
        dy/da_l (K, m, width_l) of every activation layer, in forward order."""
        identity = torch.eye(self.n_out, dtype=y.dtype, device=y.device)
        return self._reverse(state, identity.expand(y.shape[0], -1, -1))

    def hessian(self, state, lam, output_adjoints=None):
        """Hessian of lam^T y with respect to u (K, n, n).

        ``output_adjoints`` (from :meth:`jacobian` at the same point) give the adjoints
        lam^T dy/da_l by small products instead of a reverse sweep through the weights, which
        on a GPU is memory-bound (a large network's weights are read once more).
        """
        weights = iter(self._curvature_weights(state, lam, output_adjoints))
        saved_states = iter(state)
        K, r = lam.shape[0], self._coordinates
        workspace = self._workspace()
        tangent = _Tangent(torch.ones(K, r, dtype=lam.dtype, device=lam.device), workspace)
        gram = _Gram(K, r, lam.dtype, lam.device, workspace)
        for index, step in enumerate(self.steps):
            if index < self._start:
                continue
            if step[0] == "affine":
                tangent.push(step)
                continue
            saved = next(saved_states)
            if step[0] == "act":
                tangent.accumulate(gram, next(weights))
                tangent.scale(saved[1])
            else:
                tangent.accumulate_head(gram, self._head_hessian(step[1], saved[1], lam))
        hess = gram.total()
        if self._input_map is None:
            return hess
        return self._input_map.T @ (hess @ self._input_map)

    def _curvature_weights(self, state, lam, output_adjoints=None):
        """sigma''(z_l) * (adjoint of a_l) per activation layer, in forward order; the adjoints
        lam^T dy/da_l come from ``output_adjoints`` when given, else from a reverse sweep."""
        if output_adjoints is None:
            _, adjoints = self._reverse(state, lam[:, None, :])
        else:
            adjoints = [lam[:, None, :] @ g for g in output_adjoints]
        curvatures = [saved[2] for saved in state if saved[0] == "act"]
        return [c * a[:, 0, :] for c, a in zip(curvatures, adjoints)]


class _Tangent:
    r"""Transposed tangents :math:`\hat T = (\partial z / \partial v)^T`, (K, r, width), for
    coordinates v of dimension r; kept as a diagonal (K, r) until the first weight matrix. Dense
    tangents live in two arrays of ``workspace`` used in turn."""

    def __init__(self, diagonal: torch.Tensor, workspace: "_Workspace"):
        self.diagonal, self.dense = diagonal, None
        self._workspace, self._turn = workspace, 0

    def _next(self, shape, like: torch.Tensor) -> torch.Tensor:
        self._turn = 1 - self._turn
        return self._workspace.array(f"tangent{self._turn}", shape, like)

    def push(self, step):
        """Through an affine layer."""
        _, weight, scale, _ = step
        if self.dense is not None:
            if weight is not None:
                out = self._next((*self.dense.shape[:2], weight.shape[0]), weight)
                self.dense = torch.matmul(self.dense, weight.T, out=out)
            else:
                self.dense.mul_(scale)
        elif weight is not None:
            # written row-major: a product would take weight.T's column-major layout, with
            # which the CPU's later batched products ran 1.7-3x slower
            out = self._next((*self.diagonal.shape, weight.shape[0]), weight)
            self.dense, self.diagonal = torch.mul(self.diagonal[:, :, None], weight.T, out=out), None
        else:
            self.diagonal = self.diagonal * scale

    def scale(self, slope):
        """Through an elementwise activation with derivative ``slope`` (K, width)."""
        if self.dense is not None:
            self.dense.mul_(slope[:, None, :])
        else:
            self.diagonal = self.diagonal * slope

    def accumulate(self, gram: "_Gram", c):
        """Add T^T diag(c) T."""
        if self.dense is not None:
            gram.add(self.dense, c)
        else:
            gram.dense += torch.diag_embed(c * self.diagonal ** 2)

    def accumulate_head(self, gram: "_Gram", head_hessian):
        """Add T^T H_head T."""
        if self.dense is not None:
            gram.dense += self.dense @ head_hessian @ self.dense.transpose(1, 2)
        else:
            gram.dense += self.diagonal[:, :, None] * head_hessian * self.diagonal[:, None, :]


class _Gram:
    r"""The sum :math:`\sum_l \hat T_l \,\mathrm{diag}(c_l)\, \hat T_l^T` over layers, (K, r, r),
    plus the dense terms added to ``dense`` (head, diagonal tangents).

    One batched product per layer. On a CPU with r >= ``SPLIT_MIN`` the r rows are cut into
    ``SPLIT_BLOCKS`` blocks and only the blocks on and above the diagonal are multiplied (the
    sum is symmetric), which saves 3/8 of those flops; on a GPU the extra, smaller products cost
    more than they save. (Concatenating all layers into one product measured no faster on the
    CPU: the copies cost what the larger product gains.)
    """

    SPLIT_MIN, SPLIT_BLOCKS = 256, 4

    def __init__(self, K, r, dtype, device, workspace: "_Workspace"):
        self.dense = torch.zeros(K, r, r, dtype=dtype, device=device)
        self._upper = workspace.array("gram", (K, r, r), self.dense).zero_()
        self._workspace = workspace
        blocks = self.SPLIT_BLOCKS if device.type == "cpu" and r >= self.SPLIT_MIN else 1
        self._edges = [round(i * r / blocks) for i in range(blocks + 1)]

    def add(self, tangent, c):
        """Add T diag(c) T^T, accumulated in place by the products (only the upper blocks are
        formed; each block of T diag(c) is scaled just before its product, while in cache)."""
        right = tangent.transpose(1, 2)
        for start, stop in zip(self._edges[:-1], self._edges[1:]):
            block = tangent[:, start:stop, :]
            left = torch.mul(block, c[:, None, :], out=self._workspace.array("left", block.shape, block))
            self._upper[:, start:stop, start:].baddbmm_(left, right[..., start:])

    def total(self):
        """The symmetric sum (a new tensor: the work arrays serve the next call)."""
        for start, stop in zip(self._edges[:-1], self._edges[1:]):
            self._upper[:, stop:, start:stop] = self._upper[:, start:stop, stop:].transpose(1, 2)
        return self.dense.add_(self._upper)


class _Workspace:
    """Arrays kept between Hessian calls, by name; one grows when a call needs more."""

    def __init__(self):
        self._arrays: dict[str, torch.Tensor] = {}

    def array(self, name: str, shape, like: torch.Tensor) -> torch.Tensor:
        """An uninitialized array of ``shape`` with the dtype and device of ``like``."""
        size = math.prod(shape)
        array = self._arrays.get(name)
        if array is None or array.numel() < size or array.dtype != like.dtype or array.device != like.device:
            array = self._arrays[name] = torch.empty(size, dtype=like.dtype, device=like.device)
        return array[:size].view(shape)
