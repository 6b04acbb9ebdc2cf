"""The record of an embedding: what ``y = net(x)`` adds to a problem (variables, constraints,
per-layer handles).

An :class:`Embedding` is sink-neutral: its variables are symbols made by a factory (``MX.sym``
or ``SX.sym`` for an nlp dict, ``opti.variable`` for an ``Opti``) with start values and bounds,
and its constraints are expressions with bounds. A formulation (:mod:`nncas.formulations`)
fills it; :func:`nncas.embed` hands it to nlp-dict users as the columns
``w, w0, lbw, ubw, g, lbg, ubg``; :func:`nncas.add_predictor` adds it to an Opti.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import casadi as ca
import numpy as np

from .network import BaseNetwork


@dataclass(eq=False)
class Variable:
    """A block of decision variables with start values and bounds (arrays of its shape)."""

    symbol: object
    start: np.ndarray
    lower: np.ndarray
    upper: np.ndarray


@dataclass(eq=False)
class Constraint:
    """``lower <= expression <= upper`` entrywise (equal bounds: an equality).

    ``opti_constraint`` is the constraint as added to an ``Opti`` (for ``opti.dual``), if it was.
    """

    expression: object
    lower: np.ndarray
    upper: np.ndarray
    opti_constraint: object = None


@dataclass
class LayerHandle:
    """One layer's part of a formulation: its output (variable or expression) and constraints."""

    index: int
    layer: object
    output: object
    variables: list = field(default_factory=list)
    constraints: list = field(default_factory=list)


def _full(shape, value) -> np.ndarray:
    """``value`` (a scalar, a column's entries, or an array of ``shape``) as an array of ``shape``."""
    a = np.asarray(value, dtype=float)
    if a.ndim == 1 and a.size == shape[0] * shape[1]:
        a = a.reshape(shape, order="F")
    return np.broadcast_to(a, shape).copy()


@dataclass(eq=False)
class Embedding:
    """What :func:`nncas.embed` or :func:`nncas.add_predictor` added for ``y = net(x)``.

    nlp columns (``x`` type: MX or SX): ``y`` the outputs (n_out x K); ``w`` the extra decision
    variables as one column (0x1 when none) with numpy ``w0, lbw, ubw``; ``g`` the extra
    constraints as one column (0x1 when none) with numpy ``lbg, ubg``. A gray box's ``oracle``
    is kept alive by the expression graphs that call it (:mod:`nncas.oracles.keeper`); this
    object holds it too, which is all that keeps it where the keeper library is missing.
    """

    #: "full", "reduced" or "graybox": the :attr:`~nncas.formulations.Formulation.kind` of ``formulation``
    kind: str
    model_name: str
    n_in: int
    n_out: int
    n_params: int
    inputs: object
    outputs: object = None
    variable_blocks: list[Variable] = field(default_factory=list)
    constraint_blocks: list[Constraint] = field(default_factory=list)
    layers: list[LayerHandle] = field(default_factory=list)
    backend: str | None = None
    device: str | None = None
    oracle: object = None
    #: the formulation object that built it (:class:`nncas.FullSpace`, ...)
    formulation: object = None
    #: the translated network (full and reduced space); None for a gray box
    network: BaseNetwork | None = None
    #: what the check against the torch module found (:mod:`nncas.verification`); None if skipped
    verification: object = None
    #: makes one block of variables: (rows, columns) -> symbol
    new_symbol: Callable | None = field(default=None, repr=False)

    # building ------------------------------------------------------------------------
    def add_variable(self, rows: int, columns: int = 1, start=0.0, lower=-np.inf, upper=np.inf,
                     handle: LayerHandle | None = None):
        """A new (rows x columns) block of variables; returns its symbol."""
        symbol = self.new_symbol(rows, columns)
        shape = (rows, columns)
        block = Variable(symbol, _full(shape, start), _full(shape, lower), _full(shape, upper))
        self.variable_blocks.append(block)
        if handle is not None:
            handle.variables.append(symbol)
        return symbol

    def add_constraint(self, expression, lower=0.0, upper=0.0, handle: LayerHandle | None = None):
        """``lower <= expression <= upper``; returns the record."""
        shape = expression.shape
        block = Constraint(expression, _full(shape, lower), _full(shape, upper))
        self.constraint_blocks.append(block)
        if handle is not None:
            handle.constraints.append(block)
        return block

    # the nlp columns -------------------------------------------------------------------
    def _column(self, parts):
        return ca.vertcat(*[ca.vec(p) for p in parts]) if parts else type(self.inputs)(0, 1)

    @staticmethod
    def _stack(arrays) -> np.ndarray:
        return np.concatenate([a.reshape(-1, order="F") for a in arrays]) if arrays else np.zeros(0)

    @property
    def y(self):
        return self.outputs

    @property
    def w(self):
        return self._column([v.symbol for v in self.variable_blocks])

    @property
    def w0(self) -> np.ndarray:
        return self._stack([v.start for v in self.variable_blocks])

    @property
    def lbw(self) -> np.ndarray:
        return self._stack([v.lower for v in self.variable_blocks])

    @property
    def ubw(self) -> np.ndarray:
        return self._stack([v.upper for v in self.variable_blocks])

    @property
    def g(self):
        return self._column([c.expression for c in self.constraint_blocks])

    @property
    def lbg(self) -> np.ndarray:
        return self._stack([c.lower for c in self.constraint_blocks])

    @property
    def ubg(self) -> np.ndarray:
        return self._stack([c.upper for c in self.constraint_blocks])

    @property
    def variables(self) -> list:
        """The variable symbols, block by block."""
        return [v.symbol for v in self.variable_blocks]

    @property
    def n_variables(self) -> int:
        return sum(v.start.size for v in self.variable_blocks)

    @property
    def n_constraints(self) -> int:
        """Scalar constraint rows added (a pair ``lo <= g <= hi`` counts once per entry)."""
        return sum(c.lower.size for c in self.constraint_blocks)

    def __str__(self):
        where = f", backend={self.backend}, device={self.device}" if self.backend else ""
        lines = [
            f"{self.kind} formulation of {self.model_name} "
            f"({self.n_in} -> {self.n_out}, {self.n_params:,} parameters{where})",
            f"  added {self.n_variables} variables and {self.n_constraints} constraint rows",
        ]
        if self.verification is not None:
            lines.append(f"  {self.verification}")
        for h in self.layers:
            lines.append(
                f"  [{h.index}] {type(h.layer).__name__:<11} out {h.output.numel():>6}"
                f"  vars {sum(v.numel() for v in h.variables):>6}"
                f"  cons {sum(c.lower.size for c in h.constraints):>6}")
        return "\n".join(lines)
