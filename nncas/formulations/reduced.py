"""The reduced space: ``y`` is one nested CasADi expression of x, no variables, no rows."""
from __future__ import annotations

import casadi as ca

from ..embedding import Embedding
from .base import Context, Formulation, embedding_of, network_of, warn_piecewise_linear


class ReducedSpace(Formulation):
    r""":math:`y = f_L(\dots f_1(x))` as one expression (CasADi differentiates it)."""

    kind = "reduced"

    def build(self, net, x, x0, new_symbol, context: Context) -> Embedding:
        network = network_of(net, x, context)
        warn_piecewise_linear([type(l).__name__ for l in network.layers if l.piecewise_linear], self.kind)
        form = embedding_of(self, network, x, new_symbol)
        form.outputs = ca.horzcat(*[network.casadi(x[:, k]) for k in range(x.size2())])
        return form
