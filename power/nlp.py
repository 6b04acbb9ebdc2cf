"""A small NLP builder with named variable and constraint slices.

    min f(x)  s.t.  lbg <= g(x) <= ubg,  lbx <= x <= ubx

Variables and constraints are added as named blocks; the builder records the
slice of each block in x and g, so solutions are read back by name, never by
stride.  Expressions are CasADi ``SX`` (fast for pure algebra) or ``MX``
(needed when a caller adds MX-only pieces such as an l4casadi network);
choose with ``sym``.  :meth:`NlpBuilder.solve` hands ``{'x','f','g'}`` to
``casadi.nlpsol(..., 'ipopt')``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import casadi as ca
import numpy as np

from nncas.apps.cli import raise_if_interrupted


@dataclass(frozen=True)
class NlpSolution:
    status: str
    success: bool
    objective: float
    iterations: int
    solve_time_s: float
    build_time_s: float
    x: dict[str, np.ndarray]
    g: dict[str, np.ndarray]
    lam_g: dict[str, np.ndarray]
    x_vector: np.ndarray


def _column(values, n: int) -> np.ndarray:
    out = np.broadcast_to(np.asarray(values, dtype=float), (n,)).copy()
    return out


class NlpBuilder:
    """Collects named variable blocks, constraint blocks and one objective."""

    def __init__(self, sym=ca.SX):
        if sym not in (ca.SX, ca.MX):
            raise TypeError("sym must be casadi.SX or casadi.MX")
        self.sym = sym
        self._x, self._lbx, self._ubx, self._x0 = [], [], [], []
        self._g, self._lbg, self._ubg = [], [], []
        self.x_slices: dict[str, slice] = {}
        self.g_slices: dict[str, slice] = {}
        self._nx = 0
        self._ng = 0
        self.objective = None
        self._created = time.perf_counter()

    def variable(self, name: str, n: int, lb=-np.inf, ub=np.inf, x0=0.0):
        """New block of ``n`` variables (column vector) named ``name``."""
        if name in self.x_slices:
            raise ValueError(f"variable block {name!r} already exists")
        x = self.sym.sym(name, n)
        self._x.append(x)
        self._lbx.append(_column(lb, n))
        self._ubx.append(_column(ub, n))
        self._x0.append(np.clip(_column(x0, n), self._lbx[-1], self._ubx[-1]))
        self.x_slices[name] = slice(self._nx, self._nx + n)
        self._nx += n
        return x

    def constrain(self, name: str, expr, lb=0.0, ub=0.0) -> None:
        """Add ``lb <= expr <= ub`` (elementwise; bounds broadcast)."""
        if name in self.g_slices:
            raise ValueError(f"constraint block {name!r} already exists")
        expr = ca.vec(expr)
        n = expr.shape[0]
        self._g.append(expr)
        self._lbg.append(_column(lb, n))
        self._ubg.append(_column(ub, n))
        self.g_slices[name] = slice(self._ng, self._ng + n)
        self._ng += n

    def minimize(self, expr) -> None:
        self.objective = expr

    def nlp(self) -> dict:
        """The problem dict for ``casadi.nlpsol``."""
        return {"x": ca.vertcat(*self._x), "f": self.objective, "g": ca.vertcat(*self._g)}

    def bounds(self) -> dict[str, np.ndarray]:
        return {
            "x0": np.concatenate(self._x0), "lbx": np.concatenate(self._lbx),
            "ubx": np.concatenate(self._ubx), "lbg": np.concatenate(self._lbg),
            "ubg": np.concatenate(self._ubg),
        }

    def solve(self, options: dict | None = None, x0: dict[str, np.ndarray] | None = None) -> NlpSolution:
        """Solve with IPOPT; ``x0`` overrides start values of named blocks. A solve stopped by
        Ctrl-C raises KeyboardInterrupt (:func:`nncas.apps.cli.raise_if_interrupted`)."""
        if self.objective is None:
            raise ValueError("no objective: call minimize() first")
        opts = {"ipopt.print_level": 0, "print_time": False, "ipopt.sb": "yes",
                "ipopt.max_iter": 3000}
        opts.update(options or {})
        solver = ca.nlpsol("solver", "ipopt", self.nlp(), opts)
        build_time = time.perf_counter() - self._created
        args = self.bounds()
        for name, value in (x0 or {}).items():
            args["x0"][self.x_slices[name]] = value
        started = time.perf_counter()
        result = solver(**args)
        solve_time = time.perf_counter() - started
        stats = solver.stats()
        raise_if_interrupted(stats["return_status"])
        x = np.asarray(result["x"]).ravel()
        g = np.asarray(result["g"]).ravel()
        lam = np.asarray(result["lam_g"]).ravel()
        return NlpSolution(
            status=stats["return_status"], success=bool(stats["success"]),
            objective=float(result["f"]), iterations=int(stats["iter_count"]),
            solve_time_s=solve_time, build_time_s=build_time,
            x={k: x[s] for k, s in self.x_slices.items()},
            g={k: g[s] for k, s in self.g_slices.items()},
            lam_g={k: lam[s] for k, s in self.g_slices.items()},
            x_vector=x,
        )

    def evaluate(self, expr, sol: NlpSolution) -> np.ndarray:
        """Value of an expression of this NLP's variables at a solution."""
        f = ca.Function("evaluate", [ca.vertcat(*self._x)], [expr])
        return np.asarray(f(sol.x_vector)).ravel()
