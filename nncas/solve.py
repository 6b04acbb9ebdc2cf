r"""Solving an Opti problem that holds embedded networks, and reporting on the solve.

CasADi's default Hessian construction (its symmetric ``hessian`` path) takes minutes for one
dense constraint in a few hundred inputs. :func:`solver` instead hands the NLP solver

- ``hess_lag``: the upper triangle of :math:`\nabla^2_{xx} L` of
  :math:`L = \sigma f + \lambda^T g` as ``jacobian(gradient(L))`` of the algebraic part, plus,
  for every gray box, :math:`P_u^T \, H_{NN}(u, \lambda_{NN}) \, P_u` from one oracle call;
- ``jac_g``: the algebraic Jacobian plus :math:`P_{rows}^T J_{NN}(u) P_u` from one oracle call,

where :math:`P` are constant selection matrices, applied as index copies (no products). The
algebraic part is ``g`` with every gray-box call replaced by zero (the gray-box rows are
``NN(u) - y``). Oracles that can write their blocks into the NLP's sparsity themselves (the
torch oracle: ``placed_jacobian``, ``placed_hessian``, see :mod:`nncas.placement`) do so from
the device, in one gather.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass

import casadi as ca
import numpy as np

from .graybox import GrayBoxBlock, blocks_of
from .placement import Placement
from .threads import set_casadi_blas_threads


def _selected_columns(selection: ca.DM, shape: tuple[int, int]) -> np.ndarray:
    """For a 0/1 selection matrix with one nonzero per row, the column of each row, as
    ``(K, rows)`` for a (rows x K) column-major block."""
    rows, cols = selection.sparsity().get_triplet()
    index = np.empty(selection.size1(), dtype=np.int64)
    index[np.asarray(rows)] = np.asarray(cols)
    return index.reshape(shape[1], shape[0])


def _block_derivatives(opti: ca.Opti, block: GrayBoxBlock) -> tuple[ca.MX, ca.MX]:
    """The block's terms of the Lagrangian Hessian (upper triangle) and constraint Jacobian."""
    x, lam_g = opti.x, opti.lam_g
    lam_nn = opti.dual(block.constraint)
    u_index = _selected_columns(ca.evalf(ca.jacobian(block.inputs, x)), block.inputs.shape)
    row_index = _selected_columns(ca.evalf(ca.jacobian(lam_g, lam_nn)).T, lam_nn.shape)
    oracle = block.oracle
    if hasattr(oracle, "placed_hessian"):
        hess = Placement.of(u_index, u_index, (opti.nx, opti.nx), upper=True)
        jac = Placement.of(row_index, u_index, (opti.ng, opti.nx))
        return (oracle.placed_hessian(hess)(block.inputs, lam_nn),
                oracle.placed_jacobian(jac)(block.inputs))
    # other oracles give block-diagonal CasADi matrices: copy each block into place
    hess_blocks, jac_blocks = oracle.hessian(block.inputs, lam_nn), oracle.jacobian(block.inputs)
    hess, jac = ca.MX(opti.nx, opti.nx), ca.MX(opti.ng, opti.nx)
    n, m = u_index.shape[1], row_index.shape[1]
    for k, (cols, rows) in enumerate(zip(u_index.tolist(), row_index.tolist())):
        hess[cols, cols] = hess_blocks[k * n:(k + 1) * n, k * n:(k + 1) * n]
        jac[rows, cols] = jac_blocks[k * m:(k + 1) * m, k * n:(k + 1) * n]
    return ca.triu(hess), jac


def derivative_functions(opti: ca.Opti) -> dict[str, ca.Function]:
    """The ``hess_lag`` and ``jac_g`` functions for ``opti`` (see module docstring)."""
    x, p, g, lam_g = opti.x, opti.p, opti.g, opti.lam_g
    lam_f = ca.MX.sym("lam_f")
    blocks = blocks_of(opti)
    g_algebraic = ca.graph_substitute(g, [b.call for b in blocks],
                                      [ca.MX.zeros(b.call.sparsity()) for b in blocks]) if blocks else g
    lagrangian = lam_f * opti.f + ca.dot(lam_g, g_algebraic)
    hess = ca.triu(ca.jacobian(ca.gradient(lagrangian, x), x))
    jac = ca.jacobian(g_algebraic, x)
    for block in blocks:
        block_hess, block_jac = _block_derivatives(opti, block)
        hess += block_hess
        jac += block_jac
    hess_lag = ca.Function("nlp_hess_l", [x, p, lam_f, lam_g], [hess],
                           ["x", "p", "lam_f", "lam_g"], ["triu_hess_gamma_x_x"])
    jac_g = ca.Function("nlp_jac_g", [x, p], [g, jac], ["x", "p"], ["g", "jac_g_x"])
    return {"hess_lag": hess_lag, "jac_g": jac_g}


def solver(opti: ca.Opti, plugin: str = "ipopt", options: dict | None = None,
           plugin_options: dict | None = None, blas_threads: int | str | None = "auto") -> float:
    """``opti.solver(plugin, ...)`` with fast exact derivatives; returns construction seconds.

    Call it after the problem is complete (objective and all constraints added) and again
    after changing its structure. ``options`` are CasADi nlpsol options (``"ipopt.tol"``,
    ``"print_time"``...), ``plugin_options`` the plugin's own dictionary.

    ``blas_threads``: threads for CasADi's own BLAS (IPOPT's linear algebra), which is
    process-wide (:mod:`nncas.threads`). ``"auto"`` sets 1 when a gray box runs on the CPU, whose
    torch threads would otherwise fight the BLAS threads, and leaves it alone otherwise; an
    int sets that count; None leaves it alone.
    """
    if blas_threads == "auto":
        on_cpu = any(getattr(b.oracle, "device", None) is not None and b.oracle.device.type == "cpu"
                     for b in blocks_of(opti))
        blas_threads = 1 if on_cpu else None
    if blas_threads is not None:
        set_casadi_blas_threads(blas_threads)
    start = time.perf_counter()
    functions = derivative_functions(opti)
    opts = {**functions, "record_time": True, **(options or {})}
    if plugin_options is not None:
        opti.solver(plugin, opts, plugin_options)
    else:
        opti.solver(plugin, opts)
    return time.perf_counter() - start


@dataclass
class ProblemStats:
    """Structure (paper Table 2) and time breakdown (paper Table 4) of a solved problem.

    ``hess_nnz`` counts the upper triangle, as IPOPT stores it. Times are wall seconds;
    ``solver_s`` is the total minus all callback time (linear algebra, line search, ...).
    """

    status: str
    success: bool
    objective: float
    iterations: int
    n_variables: int
    n_constraints: int
    jac_nnz: int
    hess_nnz: int
    total_s: float
    function_s: float
    gradient_s: float
    jacobian_s: float
    hessian_s: float
    solver_s: float

    def shares(self) -> dict[str, float]:
        """Fraction of total time in function, gradient, Jacobian, Hessian and solver."""
        total = max(self.total_s, 1e-12)
        return {k: getattr(self, f"{k}_s") / total
                for k in ("function", "gradient", "jacobian", "hessian", "solver")}

    def as_dict(self) -> dict:
        return {**asdict(self), "shares": self.shares()}

    def __str__(self):
        shares = ", ".join(f"{k} {v:.0%}" for k, v in self.shares().items())
        return (f"{self.status}: objective {self.objective:.8g} in {self.iterations} iterations, "
                f"{self.total_s:.3f} s ({shares}); {self.n_variables} variables, "
                f"{self.n_constraints} constraints, Jacobian nnz {self.jac_nnz}, Hessian nnz {self.hess_nnz}")


def problem_stats(opti: ca.Opti, sol=None) -> ProblemStats:
    """Collect :class:`ProblemStats` after ``opti.solve()`` (or a failed solve)."""
    stats = (sol or opti).stats()
    nlp = opti.debug.casadi_solver
    wall = {k[len("t_wall_"):]: v for k, v in stats.items() if k.startswith("t_wall_")}
    callbacks = {name: wall.get(name, 0.0) for name in
                 ("nlp_f", "nlp_g", "nlp_grad_f", "nlp_jac_g", "nlp_hess_l")}
    total = wall.get("total", sum(callbacks.values()))
    return ProblemStats(
        status=stats.get("return_status", "unknown"),
        success=bool(stats.get("success", False)),
        objective=float(opti.debug.value(opti.f)),
        iterations=int(stats.get("iter_count", 0)),
        n_variables=opti.nx, n_constraints=opti.ng,
        jac_nnz=nlp.get_function("nlp_jac_g").sparsity_out(1).nnz(),
        hess_nnz=nlp.get_function("nlp_hess_l").sparsity_out(0).nnz(),
        total_s=total,
        function_s=callbacks["nlp_f"] + callbacks["nlp_g"],
        gradient_s=callbacks["nlp_grad_f"],
        jacobian_s=callbacks["nlp_jac_g"],
        hessian_s=callbacks["nlp_hess_l"],
        solver_s=max(total - sum(callbacks.values()), 0.0),
    )
