"""What nncas keeps on an ``Opti``: one record per Opti, in one attribute.

The record holds the embeddings added to the Opti (their gray boxes live as long as the graphs
calling them, :mod:`nncas.oracles.keeper`; the record keeps them where the keeper library is
missing), the stale-problem guards of :func:`nncas.solver`, and the facts
:func:`nncas.problem_stats` reports (the linear solver chosen).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import casadi as ca

_ATTRIBUTE = "_nncas"


@dataclass(eq=False)
class OptiState:
    """The embeddings added to an Opti, the guards of its solver, the linear solver chosen."""

    embeddings: list = field(default_factory=list)
    guards: list = field(default_factory=list)
    linear_solver: str = ""


def opti_state(opti: ca.Opti) -> OptiState:
    """The record of ``opti``, created on first use."""
    state = getattr(opti, _ATTRIBUTE, None)
    if state is None:
        state = OptiState()
        setattr(opti, _ATTRIBUTE, state)
    return state
