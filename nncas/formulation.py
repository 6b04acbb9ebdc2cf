"""The record of what an embedding added to an optimization problem."""
from __future__ import annotations

from dataclasses import dataclass, field

import casadi as ca

from .network import Network


@dataclass
class LayerHandle:
    """One layer's part of a formulation: its output (variable or expression) and constraints."""

    index: int
    layer: object
    output: ca.MX
    variables: list = field(default_factory=list)
    constraints: list = field(default_factory=list)


@dataclass
class Formulation:
    """What :func:`nncas.add_predictor` added: variables, constraints and per-layer handles.

    ``outputs`` is the MX column the caller received as ``y``.
    """

    kind: str
    model_name: str
    n_in: int
    n_out: int
    n_params: int
    inputs: ca.MX
    outputs: ca.MX
    variables: list = field(default_factory=list)
    constraints: list = field(default_factory=list)
    layers: list[LayerHandle] = field(default_factory=list)
    backend: str | None = None
    device: str | None = None
    oracle: object = None
    #: the translated layers (full and reduced space); None for a gray box
    network: Network | None = None

    @property
    def n_variables(self) -> int:
        return sum(v.numel() for v in self.variables)

    @property
    def n_constraints(self) -> int:
        """Scalar constraint rows added (a bound pair ``lo <= v <= hi`` counts once per entry)."""
        return sum(c.numel() for c in self.constraints)

    def add_variable(self, opti: ca.Opti, n: int, initial=None, handle: LayerHandle | None = None,
                     columns: int = 1):
        v = opti.variable(n, columns)
        if initial is not None:
            opti.set_initial(v, initial)
        self.variables.append(v)
        if handle is not None:
            handle.variables.append(v)
        return v

    def add_constraint(self, opti: ca.Opti, constraint, handle: LayerHandle | None = None):
        opti.subject_to(constraint)
        self.constraints.append(constraint)
        if handle is not None:
            handle.constraints.append(constraint)
        return constraint

    def __str__(self):
        where = f", backend={self.backend}, device={self.device}" if self.backend else ""
        lines = [
            f"{self.kind} formulation of {self.model_name} "
            f"({self.n_in} -> {self.n_out}, {self.n_params:,} parameters{where})",
            f"  added {self.n_variables} variables and {self.n_constraints} constraint rows",
        ]
        for h in self.layers:
            lines.append(
                f"  [{h.index}] {type(h.layer).__name__:<11} out {h.output.numel():>6}"
                f"  vars {sum(v.numel() for v in h.variables):>6}"
                f"  cons {sum(c.numel() for c in h.constraints):>6}")
        return "\n".join(lines)
