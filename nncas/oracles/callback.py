"""A CasADi function whose outputs a Python function writes straight into CasADi's memory.

CasADi hands :meth:`BufferCallback.eval_buffer` its input and output buffers (nonzeros in
column-major order); wrapping them as numpy arrays avoids building a ``DM`` per call, which
costs tens of milliseconds for a dense 784 x 784 Hessian.

A callback can supply its own derivatives through CasADi's hooks: a Jacobian, reverse-mode
functions, and the sparsity of each Jacobian block. The functions it hands out are created on
the first request and kept by the callback, because CasADi holds no reference to a Python
object: a CasADi Function built on a callback works while the callback's Python object lives
(a gray box's graph keeps it: :mod:`nncas.oracles.keeper`).
"""
from __future__ import annotations

from typing import Callable, Sequence

import casadi as ca
import numpy as np

from ..interrupts import check_interrupt


class BufferCallback(ca.Callback):
    """``evaluate(inputs, outputs)`` fills ``outputs`` (writable flat float64 arrays, one per
    output, empty when CasADi does not want that output) from ``inputs`` (flat arrays).

    Optional derivative hooks, each called at most once per argument (the result is kept):

    - ``jacobian()``: the Jacobian function (CasADi's signature: inputs, then nominal outputs;
      one output per (output, input) pair);
    - ``reverse(nadj)``: the reverse-mode function for ``nadj`` directions (inputs, nominal
      outputs, output seeds -> input sensitivities); None where unsupported;
    - ``jac_sparsity(oind, iind)``: the sparsity of that Jacobian block (default: dense).
    """

    def __init__(self, name: str, sparsity_in: Sequence[ca.Sparsity], sparsity_out: Sequence[ca.Sparsity],
                 evaluate: Callable[[list, list], None], *, jacobian: Callable[[], ca.Function] | None = None,
                 reverse: Callable[[int], ca.Function | None] | None = None,
                 jac_sparsity: Callable[[int, int], ca.Sparsity] | None = None):
        ca.Callback.__init__(self)
        self._sparsity_in, self._sparsity_out = list(sparsity_in), list(sparsity_out)
        self._evaluate = evaluate
        self._jacobian_factory, self._reverse_factory = jacobian, reverse
        self._jac_sparsity = jac_sparsity
        self._jacobian: ca.Function | None = None
        self._reverse: dict[int, ca.Function | None] = {}
        self.construct(name, {})

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
        check_interrupt()  # a Ctrl-C that CasADi's bindings swallowed ends the solve here
        # CasADi passes no buffer for an input that is all zeros or an output it does not want
        inputs = [np.zeros(sp.nnz()) if a is None else np.frombuffer(a, dtype=np.float64)
                  for a, sp in zip(arg, self._sparsity_in)]
        outputs = [np.empty(0) if r is None else np.frombuffer(r, dtype=np.float64) for r in res]
        self._evaluate(inputs, outputs)
        return 0

    # derivative hooks ------------------------------------------------------------------
    def has_jacobian(self):
        return self._jacobian_factory is not None

    def get_jacobian(self, name, inames, onames, opts):
        if self._jacobian is None:
            self._jacobian = self._jacobian_factory()
        return self._jacobian

    def _reverse_function(self, nadj: int) -> ca.Function | None:
        if nadj not in self._reverse:
            self._reverse[nadj] = self._reverse_factory(nadj) if self._reverse_factory else None
        return self._reverse[nadj]

    def has_reverse(self, nadj):
        return self._reverse_function(nadj) is not None

    def get_reverse(self, nadj, name, inames, onames, opts):
        return self._reverse_function(nadj)

    def has_jac_sparsity(self, oind, iind):
        return self._jac_sparsity is not None

    def get_jac_sparsity(self, oind, iind, symmetric):
        return self._jac_sparsity(oind, iind)


def write(out: np.ndarray, values: np.ndarray) -> None:
    """Copy ``values`` (an array of ``out.size`` entries in C order, any strides, a floating
    dtype) into the CasADi buffer ``out``, in one pass."""
    if out.size:
        np.copyto(out.reshape(values.shape), values, casting="same_kind")
