r"""Solving NLPs that hold embedded networks fast, and reporting on the solve.

Both routes hand the NLP plugin the derivative functions of :mod:`nncas.derivatives` through
its ``cache`` option, so its exact Hessian is built in about a second instead of CasADi's
minutes for a dense block, and a gray box's Hessian is one oracle call per iteration:

- :func:`nlpsol`: ``casadi.nlpsol``'s signature; the same solution.
- :func:`solver`: ``opti.solver(...)`` for an ``Opti``. The functions describe the problem as
  it is when :func:`solver` is called; a changed objective or constraint set is refused at
  ``opti.solve()`` (call :func:`solver` again after changing the problem).

Neither is needed for correctness: gray boxes supply their derivatives through CasADi's own
hooks, so plain ``casadi.nlpsol`` and ``opti.solver`` solve the same problems, more slowly.
"""
from __future__ import annotations

import time
import weakref
from dataclasses import asdict, dataclass

import casadi as ca

from .errors import InputError, InputTypeError, StaleProblemError
from .interrupts import INTERRUPTED_STATUS, interruptible_solve, raise_if_interrupted
from .kkt.plan import check_plugin, plan, with_hessian
from .nlp import checked_nlp, opti_nlp
from .opti_state import opti_state
from .oracles.callback import BufferCallback
from .oracles.keeper import kept
from .threads import casadi_blas_threads_set, check_thread_count


def nlpsol(name: str, plugin: str, nlp: dict, options: dict | None = None, *,
           kkt_solver: str = "auto", hessian: str = "exact") -> ca.Function:
    """``casadi.nlpsol(name, plugin, nlp, options)`` with fast exact derivatives.

    ``nlp`` holds ``x`` and optionally ``p``, ``f``, ``g`` (MX or SX), as for ``casadi.nlpsol``.
    The returned solver keeps its gray boxes alive (docs/api.md#lifetimes); saving one that
    holds a gray box is refused (CasADi cannot load a Python callback).
    ``kkt_solver``: IPOPT's linear solver, "auto" (dense KKT matrices get nncas's dense
    LDL^T), "dense" or "ipopt" (IPOPT's own options); see :mod:`nncas.kkt`.
    ``hessian``: "exact" (default) or "limited-memory": IPOPT's L-BFGS Hessian from the exact
    gradients and Jacobians (``ipopt.hessian_approximation``), no Hessian built or evaluated;
    more iterations, each far cheaper where the network is large (docs/kkt.md#limited-memory-hessian).
    """
    options = with_hessian(plugin, options, hessian)
    planned = plan(*checked_nlp(nlp), plugin, options, kkt_solver)
    return _Solver(ca.nlpsol(name, plugin, nlp, planned.options), planned.linear_solver)


class _Solver(ca.Function):
    """The solver Function :func:`nlpsol` returns: a solve stopped by Ctrl-C raises
    KeyboardInterrupt (:mod:`nncas.interrupts`); ``save``, ``serialize`` and pickling refuse a
    solver that holds a Python callback (a gray box), which ``casadi.Function.load`` cannot
    restore. ``linear_solver``: what factorizes IPOPT's KKT matrix (:attr:`ProblemStats.linear_solver`)."""

    linear_solver: str

    def __init__(self, function: ca.Function, linear_solver: str = ""):
        super().__init__(function)
        self.linear_solver = linear_solver

    def _check_serializable(self) -> None:
        held = sorted({f.name() for f in self.find_functions() if f.class_name() == "CallbackInternal"})
        if held:
            raise InputError(f"solver {self.name()!r} holds Python callbacks ({', '.join(held[:3])}"
                             f"{', ...' if len(held) > 3 else ''}: gray boxes), which casadi.Function.load "
                             "cannot restore; save the torch model and build the solver again instead.")

    def _solve(self, method, *args, **kwargs):
        """``method(self, ...)`` (a ``casadi.Function`` call), raising KeyboardInterrupt after Ctrl-C."""
        with interruptible_solve():
            result = method(self, *args, **kwargs)
        raise_if_interrupted(self.stats().get("return_status", ""))
        return result

    def __call__(self, *args, **kwargs):
        return self._solve(ca.Function.__call__, *args, **kwargs)

    def call(self, *args, **kwargs):
        return self._solve(ca.Function.call, *args, **kwargs)

    def save(self, *args, **kwargs):
        self._check_serializable()
        return super().save(*args, **kwargs)

    def serialize(self, *args, **kwargs):
        self._check_serializable()
        return super().serialize(*args, **kwargs)

    def __getstate__(self):
        self._check_serializable()
        return super().__getstate__()


def solver(opti: ca.Opti, plugin: str = "ipopt", options: dict | None = None,
           plugin_options: dict | None = None, blas_threads: int | None = None, *,
           kkt_solver: str = "auto", hessian: str = "exact") -> float:
    """``opti.solver(plugin, options[, plugin_options])`` with fast exact derivatives; returns
    the construction seconds.

    Bounds on variables (``opti.bounded(lo, x, hi)``) reach the solver as bounds when IPOPT's
    KKT matrix is dense, as rows when it is sparse (CasADi's ``detect_simple_bounds``, unless
    ``options`` set it; see docs/kkt.md). Call it once the problem is complete, and again after
    changing it: ``opti.solve()`` raises :class:`nncas.StaleProblemError` for a problem whose
    objective or constraints changed since.
    ``options`` are CasADi nlpsol options (``"ipopt.tol"``, ``"detect_simple_bounds"``...),
    honoured as by :func:`nlpsol` (``expand``, the user's ``cache``, ``common_options``).

    ``blas_threads``: the threads of CasADi's own BLAS (IPOPT's linear algebra) while
    ``opti.solve()`` runs, restored afterwards (:mod:`nncas.threads`); 1 avoids a fight for the
    cores with a torch gray box on the CPU. None (default) leaves it alone. ``kkt_solver`` and ``hessian`` as for :func:`nlpsol`.
    """
    if not isinstance(opti, ca.Opti):
        raise InputTypeError(f"nncas.solver needs a casadi.Opti, got {type(opti).__name__}; for an nlp dict "
                             "use nncas.nlpsol.")
    check_plugin(plugin, options)
    options = with_hessian(plugin, options, hessian)
    if plugin_options is not None and not isinstance(plugin_options, dict):
        raise InputTypeError(f"plugin_options must be a dict, got {type(plugin_options).__name__}.")
    if blas_threads is not None:
        check_thread_count(blas_threads, "blas_threads")
    start = time.perf_counter()
    x, p, f, g = opti_nlp(opti)
    if x.numel() == 0 or (f.is_zero() and g.numel() == 0):
        raise InputError("the Opti has no variables, objective or constraints yet; build the problem first.")
    guard = _ProblemGuard(opti)
    planned = plan(x, p, f, g, plugin, {"record_time": True, **(options or {})}, kkt_solver, decide_bounds=True,
                   wrap=lambda function: _guarded(function, guard, x))
    state = opti_state(opti)
    state.guards, state.linear_solver = list(planned.keep), planned.linear_solver  # CasADi keeps no callback
    for method in ("solve", "solve_limited"):
        setattr(opti, method, _reporting_stale(getattr(ca.Opti, method), guard, blas_threads))
    if plugin_options is not None:
        opti.solver(plugin, planned.options, plugin_options)
    else:
        opti.solver(plugin, planned.options)
    return time.perf_counter() - start


class _ProblemGuard:
    """Refuses evaluation once the Opti's objective or constraints differ from those the
    derivative functions were built for; remembers that it did (``refused``)."""

    def __init__(self, opti: ca.Opti):
        self._opti = weakref.ref(opti)
        self._f, self._g = opti.f, opti.g
        self.refused = False

    def stale(self) -> bool:
        opti = self._opti()
        # each bake stacks the same constraint nodes anew (vertcat of vec): compare two levels down
        return opti is not None and not (ca.is_equal(opti.f, self._f, 2) and ca.is_equal(opti.g, self._g, 2))

    def check(self) -> None:
        if self.stale():
            self.refused = True
            raise self.error()

    @staticmethod
    def error() -> StaleProblemError:
        return StaleProblemError(
            "the Opti's objective or constraints changed after nncas.solver(opti, ...); its "
            "derivative functions describe the old problem. Call nncas.solver(opti, ...) again "
            "before opti.solve().")


def _reporting_stale(method, guard: _ProblemGuard, blas_threads: int | None):
    """``Opti.solve`` (or ``solve_limited``) for one Opti, with ``blas_threads`` in CasADi's BLAS
    while it runs, raising :class:`StaleProblemError` where the guard made the solve fail
    (CasADi reports only "Solver failed"), or where CasADi refused the stale functions' row count."""

    def solve(*args, **kwargs):
        guard.refused = False
        opti = guard._opti()
        try:
            with casadi_blas_threads_set(blas_threads), interruptible_solve():
                return method(opti, *args, **kwargs)
        except RuntimeError as err:
            if guard.refused or ("must have" in str(err) and guard.stale()):
                raise guard.error() from err
            if INTERRUPTED_STATUS in str(err):
                raise KeyboardInterrupt("the solve was interrupted") from err
            raise

    return solve


def _guarded(function: ca.Function, guard: _ProblemGuard, x) -> tuple[ca.Function, BufferCallback]:
    """``function`` with a zero added to its first output by a callback that runs the guard,
    and that callback. The callback is kept alive by the graphs that call it
    (:func:`nncas.oracles.keeper.kept`): a Function made from the Opti (``opti.to_function``)
    works after the Opti is gone."""

    def evaluate(inputs, outputs):
        guard.check()
        outputs[0][:] = 0.0

    check = BufferCallback(f"nncas_guard_{function.name()}", [x.sparsity()], [ca.Sparsity.dense(1, 1)], evaluate)
    args = [ca.MX.sym(function.name_in(i), function.sparsity_in(i)) for i in range(function.n_in())]
    outs = function.call(args)
    outs[0] = outs[0] + kept(check.name(), check)(args[0])
    # keep every output's sparsity (a dense gradient stays dense even where it is zero)
    outs = [o if o.sparsity() == function.sparsity_out(i) else ca.project(o, function.sparsity_out(i))
            for i, o in enumerate(outs)]
    return ca.Function(function.name(), args, outs, function.name_in(), function.name_out()), check


@dataclass
class ProblemStats:
    """Structure (paper Table 2) and time breakdown (paper Table 4) of a solved problem.

    ``n_constraints`` counts the constraint rows IPOPT gets: rows that CasADi's
    ``detect_simple_bounds`` turned into variable bounds (an Opti's ``opti.bounded(0, x, 1)``
    under :func:`solver`) are not counted, so both routes count one problem alike.
    ``hess_nnz`` counts the upper triangle, as IPOPT stores it. ``linear_solver`` names what
    factorized IPOPT's KKT matrix ("dense LDLT (nncas)", "mumps", ...; empty when the solver
    was not built by nncas). Times are wall seconds; ``solver_s`` is the total minus all
    callback time (linear algebra, line search, ...).
    """

    status: str
    success: bool
    objective: float
    iterations: int
    n_variables: int
    n_constraints: int
    jac_nnz: int
    hess_nnz: int
    linear_solver: str
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
                f"{self.n_constraints} constraints, Jacobian nnz {self.jac_nnz}, Hessian nnz {self.hess_nnz}"
                + (f"; linear solver {self.linear_solver}" if self.linear_solver else ""))


def problem_stats(problem, result=None) -> ProblemStats:
    """:class:`ProblemStats` after a solve: ``problem_stats(opti, sol)`` (``sol`` optional; also
    after a failed solve) or ``problem_stats(S, S(...))`` for a solver from ``nlpsol``, with
    either nncas's or CasADi's own derivative functions."""
    if isinstance(problem, ca.Opti):
        try:
            nlp, stats = problem.debug.casadi_solver, (result or problem).stats()
            objective = float(problem.debug.value(problem.f))
        except RuntimeError as err:
            raise InputError("problem_stats(opti): the Opti has not been solved yet; call opti.solve() "
                             "first.") from err
        linear_solver = opti_state(problem).linear_solver
    elif isinstance(problem, ca.Function):
        if not isinstance(result, dict) or "f" not in result:
            raise InputTypeError("problem_stats(S, result): pass the result of calling the solver S.")
        nlp, stats, objective = problem, problem.stats(), float(result["f"])
        linear_solver = problem.linear_solver if isinstance(problem, _Solver) else ""
    else:
        raise InputTypeError(f"problem_stats takes an Opti or a solver Function, got {type(problem).__name__}.")
    wall = {k[len("t_wall_"):]: v for k, v in stats.items() if k.startswith("t_wall_")}
    callbacks = {name: wall.get(name, 0.0) for name in
                 ("nlp_f", "nlp_g", "nlp_fg", "nlp_grad_f", "nlp_jac_g", "nlp_jac_fg", "nlp_hess_l")}
    total = wall.get("total", sum(callbacks.values()))
    return ProblemStats(
        status=stats.get("return_status", "unknown"),
        success=bool(stats.get("success", False)),
        objective=objective,
        iterations=int(stats.get("iter_count", 0)),
        n_variables=nlp.size1_in(0),
        n_constraints=nlp.size1_in(nlp.index_in("lbg")) - int(sum(stats.get("detect_simple_bounds_is_simple", []))),
        jac_nnz=_nnz(nlp, ("nlp_jac_g", 1), ("nlp_jac_fg", 3)),
        hess_nnz=_nnz(nlp, ("nlp_hess_l", 0)),
        linear_solver=linear_solver,
        total_s=total,
        function_s=callbacks["nlp_f"] + callbacks["nlp_g"] + callbacks["nlp_fg"],
        gradient_s=callbacks["nlp_grad_f"],
        jacobian_s=callbacks["nlp_jac_g"] + callbacks["nlp_jac_fg"],
        hessian_s=callbacks["nlp_hess_l"],
        solver_s=max(total - sum(callbacks.values()), 0.0),
    )


def _nnz(nlp: ca.Function, *candidates) -> int:
    """Nonzeros of the first of ``(function name, output)`` the solver has (0 if none)."""
    for name, output in candidates:
        try:
            return nlp.get_function(name).sparsity_out(output).nnz()
        except RuntimeError:
            continue
    return 0
