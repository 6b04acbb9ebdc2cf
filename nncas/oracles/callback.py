"""A CasADi function whose outputs a Python function writes straight into CasADi's memory.

CasADi hands :meth:`BufferCallback.eval_buffer` its input and output buffers (nonzeros in
column-major order); wrapping them as numpy arrays avoids building a ``DM`` per call, which
costs tens of milliseconds for a dense 784 x 784 Hessian.

CasADi holds no reference to a callback's Python object: a Function built on it (an
``nlpsol``, ``opti.to_function(...)``) fails with "Callback object has been deleted" once that
object is collected, e.g. after the ``Opti`` that held it is gone. So every callback is pinned
here until :func:`unpin` lets it go (``TorchOracle.release`` does so for all of an oracle's).
"""
from __future__ import annotations

from typing import Callable, Sequence

import casadi as ca
import numpy as np
import torch


#: callbacks kept alive for CasADi, by id
_PINNED: dict[int, "BufferCallback"] = {}


class BufferCallback(ca.Callback):
    """``evaluate(inputs, outputs)`` fills ``outputs`` (writable flat float64 arrays, one per
    output, empty when CasADi does not want that output) from ``inputs`` (flat arrays)."""

    def __init__(self, name: str, sparsity_in: Sequence[ca.Sparsity], sparsity_out: Sequence[ca.Sparsity],
                 evaluate: Callable[[list, list], None], jacobian: ca.Function | None = None):
        ca.Callback.__init__(self)
        self._sparsity_in, self._sparsity_out = list(sparsity_in), list(sparsity_out)
        self._evaluate, self._jacobian = evaluate, jacobian
        self.construct(name, {})
        _PINNED[id(self)] = self

    def get_n_in(self):
        return len(self._sparsity_in)

    def get_n_out(self):
        return len(self._sparsity_out)

    def get_sparsity_in(self, i):
        return self._sparsity_in[i]

    def get_sparsity_out(self, i):
        return self._sparsity_out[i]

    def has_eval_buffer(self):
        return True

    def eval_buffer(self, arg, res):
        inputs = [np.frombuffer(a, dtype=np.float64) for a in arg]
        outputs = [np.frombuffer(r, dtype=np.float64) for r in res]
        self._evaluate(inputs, outputs)
        return 0

    def has_jacobian(self):
        return self._jacobian is not None

    def get_jacobian(self, name, inames, onames, opts):
        return self._jacobian


def unpin(callback: BufferCallback) -> None:
    """Let ``callback`` be collected once nothing else holds it; CasADi Functions that use it
    then fail with "Callback object has been deleted"."""
    _PINNED.pop(id(callback), None)


def write(out: np.ndarray, values: torch.Tensor) -> None:
    """Copy ``values`` (any device and dtype; flattened) into the CasADi buffer ``out``."""
    if out.size:
        torch.from_numpy(out).copy_(values.reshape(-1))
