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
import numpy as np

from . import kkt
from .derivatives import UPPER_TRIANGLE_PLUGINS, call_nodes, derivative_functions, inlined
from .errors import InputError, InputTypeError, StaleProblemError
from .oracles.callback import BufferCallback
from .interrupts import INTERRUPTED_STATUS, raise_if_interrupted
from .threads import casadi_blas_threads_set


def nlpsol(name: str, plugin: str, nlp: dict, options: dict | None = None, *,
           kkt_solver: str = "auto") -> ca.Function:
    """``casadi.nlpsol(name, plugin, nlp, options)`` with fast exact derivatives.

    ``nlp`` holds ``x`` and optionally ``p``, ``f``, ``g`` (MX or SX), as for ``casadi.nlpsol``.
    The returned solver evaluates gray boxes while the embeddings that made them live; saving
    one that holds a gray box is refused (CasADi cannot load a Python callback).
    ``kkt_solver``: IPOPT's linear solver, "auto" (dense KKT matrices get nncas's dense
    LDL^T), "dense" or "ipopt" (IPOPT's own options); see :mod:`nncas.kkt`.
    """
    x, p, f, g = _checked_nlp(nlp)
    _check_plugin(plugin, options)
    functions = _derivatives(x, p, f, g, plugin, options or {})
    user_cache = (options or {}).get("cache", {})
    shape = kkt.nlp_shape({**(functions or derivative_functions(x, p, f, g)), **user_cache}, options)
    options, linear_solver = _with_kkt_solver(options, plugin, kkt_solver, shape)
    solver_function = _Solver(ca.nlpsol(name, plugin, nlp, _with_functions(options, _offered(functions, options))))
    solver_function._nncas_linear_solver = linear_solver
    return solver_function


class _Solver(ca.Function):
    """The solver Function :func:`nlpsol` returns: a solve stopped by Ctrl-C raises
    KeyboardInterrupt (:mod:`nncas.interrupts`); ``save``, ``serialize`` and pickling refuse a
    solver that holds a Python callback (a gray box), which ``casadi.Function.load`` cannot
    restore."""

    def _check_serializable(self) -> None:
        held = sorted({f.name() for f in self.find_functions() if f.class_name() == "CallbackInternal"})
        if held:
            raise InputError(f"solver {self.name()!r} holds Python callbacks ({', '.join(held[:3])}"
                             f"{', ...' if len(held) > 3 else ''}: gray boxes), which casadi.Function.load "
                             "cannot restore; save the torch model and build the solver again instead.")

    def __call__(self, *args, **kwargs):
        result = super().__call__(*args, **kwargs)
        raise_if_interrupted(self.stats().get("return_status", ""))
        return result

    def call(self, *args, **kwargs):
        result = super().call(*args, **kwargs)
        raise_if_interrupted(self.stats().get("return_status", ""))
        return result

    def save(self, *args, **kwargs):
        self._check_serializable()
        return super().save(*args, **kwargs)

    def serialize(self, *args, **kwargs):
        self._check_serializable()
        return super().serialize(*args, **kwargs)

    def __getstate__(self):
        self._check_serializable()
        return super().__getstate__()


def _checked_nlp(nlp) -> tuple:
    """(x, p, f, g) of an nlp dict as ``casadi.nlpsol`` reads it, checked: one symbolic type
    (MX or SX) throughout, x and p purely symbolic, f scalar (empty: 0), g a dense vector."""
    if not isinstance(nlp, dict) or "x" not in nlp:
        raise InputTypeError(f"nlp must be a dict with at least 'x' (and 'f', 'g', 'p'), got {nlp!r:.80}.")
    unknown = sorted(set(nlp) - {"x", "p", "f", "g"})
    if unknown:
        raise InputError(f"nlp has keys {unknown}; casadi.nlpsol takes 'x', 'p', 'f' and 'g'.")
    x = nlp["x"]
    if not isinstance(x, (ca.MX, ca.SX)):
        raise InputTypeError(f"nlp['x'] must be a casadi.MX or casadi.SX column, got {type(x).__name__}.")
    kind = type(x)
    parts = {"p": nlp.get("p", kind(0, 1)), "f": nlp.get("f", kind(0)), "g": nlp.get("g", kind(0, 1))}
    for key, value in parts.items():
        if isinstance(value, (int, float, np.number, np.ndarray, ca.DM)):
            parts[key] = kind(ca.DM(value))
        elif not isinstance(value, kind):
            raise InputTypeError(f"nlp[{key!r}] is {type(value).__name__} but nlp['x'] is {kind.__name__}; "
                                 "use one symbolic type throughout.")
    for key, value in (("x", x), ("p", parts["p"])):
        if not value.is_valid_input():
            raise InputError(f"nlp[{key!r}] must be purely symbolic (symbols, or a vertcat of distinct "
                             f"symbols), as casadi.nlpsol requires; got an expression of them. Make nlp[{key!r}] "
                             "the symbols and move the expression into 'f' and 'g'.")
    for key in ("x", "g"):
        value = x if key == "x" else parts["g"]
        if not value.is_empty() and (not value.is_vector() or not value.is_dense()):
            raise InputError(f"nlp[{key!r}] must be a dense vector, got {value.size1()}x{value.size2()} "
                             f"with {value.nnz()} nonzeros.")
    f = parts["f"]
    if f.is_empty():  # casadi.nlpsol's empty objective: f = 0
        f = kind(0)
    elif not f.is_scalar():
        raise InputError(f"nlp['f'] must be a scalar objective, got {f.size1()}x{f.size2()}; sum its "
                         "entries (casadi.sum1, casadi.sumsqr) or move them into 'g'.")
    elif not f.is_dense():
        raise InputError("nlp['f'] is a structural zero (1x1 with no nonzero), which casadi.nlpsol refuses; "
                         "use 0 or leave 'f' out.")
    g = parts["g"] if not parts["g"].is_empty() else kind(0, 1)
    return x, parts["p"], f, g


def _derivatives(x, p, f, g, plugin: str, options: dict) -> dict | None:
    """The derivative functions of the NLP as ``casadi.nlpsol`` differentiates it with these
    options, or None where nncas cannot build them so (CasADi builds its own then).

    With ``expand`` (and not ``postpone_expand``) CasADi expands an MX problem before
    differentiating it, so a called Function's own derivatives (``custom_jacobian``...) give way
    to those of its expression: the same happens here, in SX, or in MX with every MX Function
    call inlined when the problem holds gray boxes.
    """
    upper = plugin in UPPER_TRIANGLE_PLUGINS
    if not (options.get("expand") and not options.get("postpone_expand")) or not isinstance(x, ca.MX):
        return derivative_functions(x, p, f, g, upper=upper)
    expanded = ca.Function("nlp", [x, p], [f, g]).expand()
    if not any(expanded.instruction_id(k) == ca.OP_CALL for k in range(expanded.n_instructions())):
        xs, ps = ca.SX.sym("x", x.sparsity()), ca.SX.sym("p", p.sparsity())
        return derivative_functions(xs, ps, *expanded(xs, ps), upper=upper)
    f, g = inlined([f, g])
    if any(node.which_function().class_name() == "SXFunction" for node in call_nodes([f, g])):
        return None  # an SX Function beside gray boxes: only CasADi's expansion reproduces it
    return derivative_functions(x, p, f, g, upper=upper)


def _offered(functions: dict | None, options: dict | None) -> dict:
    """The derivative functions handed to the plugin's cache: none of those the user's own
    ``cache`` entries replace, nor of those ``common_options`` or ``specific_options``
    configure (CasADi builds these itself, with the options)."""
    options = options or {}
    if functions is None or options.get("common_options"):
        return {}
    specific = options.get("specific_options")
    configured = set(specific) if isinstance(specific, dict) else set()
    return {k: v for k, v in functions.items() if k not in options.get("cache", {}) and k not in configured}


def _check_plugin(plugin, options) -> None:
    if not isinstance(plugin, str) or not ca.has_nlpsol(plugin):
        raise InputError(f"plugin={plugin!r} is not an NLP solver of this CasADi; e.g. 'ipopt' or 'sqpmethod'.")
    if options is not None and not isinstance(options, dict):
        raise InputTypeError(f"options must be a dict of solver options, got {type(options).__name__}.")
    if options is not None and not isinstance(options.get("cache", {}), dict):
        raise InputTypeError("options['cache'] must be a dict of CasADi Functions.")


def _with_kkt_solver(options: dict | None, plugin: str, kkt_solver: str,
                     shape: kkt.KktShape) -> tuple[dict, str]:
    """``options`` with the KKT solver's IPOPT options, and the name of that solver."""
    solver = kkt.choose(kkt_solver, plugin, options, shape)
    return kkt.with_kkt_solver(options, solver), kkt.solver_name(plugin, options, solver)


def _with_functions(options: dict | None, functions: dict) -> dict:
    """``options`` with ``functions`` added to its cache (the user's entries kept)."""
    options = dict(options or {})
    options["cache"] = {**functions, **options.get("cache", {})}
    return options


def solver(opti: ca.Opti, plugin: str = "ipopt", options: dict | None = None,
           plugin_options: dict | None = None, blas_threads: int | None = None, *,
           kkt_solver: str = "auto") -> float:
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
    cores with a torch gray box on the CPU. None (default) leaves it alone. ``kkt_solver`` as for :func:`nlpsol`.
    """
    if not isinstance(opti, ca.Opti):
        raise InputTypeError(f"nncas.solver needs a casadi.Opti, got {type(opti).__name__}; for an nlp dict "
                             "use nncas.nlpsol.")
    _check_plugin(plugin, options)
    if plugin_options is not None and not isinstance(plugin_options, dict):
        raise InputTypeError(f"plugin_options must be a dict, got {type(plugin_options).__name__}.")
    if blas_threads is not None:
        if isinstance(blas_threads, bool) or not isinstance(blas_threads, int):
            raise InputTypeError(f"blas_threads must be a whole number or None, got {blas_threads!r}.")
        if blas_threads < 1:
            raise InputError(f"blas_threads must be at least 1, got {blas_threads}.")
    start = time.perf_counter()
    x, p, f, g = _opti_nlp(opti)
    if x.numel() == 0 or (f.is_zero() and g.numel() == 0):
        raise InputError("the Opti has no variables, objective or constraints yet; build the problem first.")
    opts = {"record_time": True, **(options or {})}
    functions = _derivatives(x, p, f, g, plugin, opts)
    offered = _offered(functions, opts)
    guard, checks = _ProblemGuard(opti), {}
    # one guarded function among those each kind of plugin evaluates at every iteration
    for candidates in (("nlp_grad_f", "nlp_jac_g", "nlp_hess_l"), ("nlp_jac_fg", "nlp_hess_l")):
        name = next((n for n in candidates if n in offered), None)
        if name is not None and name not in checks:
            offered[name], checks[name] = _guarded(functions[name], guard, x)
    # CasADi holds no reference to a Python callback: the Opti keeps its guards
    opti._nncas_guards = list(checks.values())
    for method in ("solve", "solve_limited"):
        setattr(opti, method, _reporting_stale(getattr(ca.Opti, method), guard, blas_threads))
    described = {**(functions or derivative_functions(x, p, f, g)), **opts.get("cache", {})}
    shape = kkt.nlp_shape(described, {"detect_simple_bounds": opts.get("detect_simple_bounds", True)})
    if "detect_simple_bounds" not in opts:
        opts["detect_simple_bounds"] = kkt.bounds_as_bounds(shape)
        if not opts["detect_simple_bounds"]:
            shape = kkt.nlp_shape(described, opts)
    opts, opti._nncas_linear_solver = _with_kkt_solver(opts, plugin, kkt_solver, shape)
    opts = _with_functions(opts, offered)
    if plugin_options is not None:
        opti.solver(plugin, opts, plugin_options)
    else:
        opti.solver(plugin, opts)
    return time.perf_counter() - start


def _opti_nlp(opti: ca.Opti):
    """(x, p, f, g) exactly as the Opti hands them to nlpsol (with its linear scalings)."""
    x, p, f, g = opti.x, opti.p, opti.f, opti.g
    scale, offset = opti.x_linear_scale, opti.x_linear_scale_offset
    f_scale, g_scale = float(opti.f_linear_scale), opti.g_linear_scale
    if np.any(np.asarray(scale) != 1) or np.any(np.asarray(offset) != 0):
        unscaled = ca.Function("nncas_unscaled", [x, p], [f, g])
        f, g = unscaled.call([x * scale + offset, p], True, False)
    return x, p, f / f_scale if f_scale != 1 else f, g / g_scale if np.any(np.asarray(g_scale) != 1) else g


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
            with casadi_blas_threads_set(blas_threads):
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
    and that callback (keep it while the function is in use)."""

    def evaluate(inputs, outputs):
        guard.check()
        outputs[0][:] = 0.0

    check = BufferCallback(f"nncas_guard_{function.name()}", [x.sparsity()], [ca.Sparsity.dense(1, 1)], evaluate)
    args = [ca.MX.sym(function.name_in(i), function.sparsity_in(i)) for i in range(function.n_in())]
    outs = function.call(args)
    outs[0] = outs[0] + check(args[0])
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
    elif isinstance(problem, ca.Function):
        if not isinstance(result, dict) or "f" not in result:
            raise InputTypeError("problem_stats(S, result): pass the result of calling the solver S.")
        nlp, stats, objective = problem, problem.stats(), float(result["f"])
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
        linear_solver=getattr(problem, "_nncas_linear_solver", ""),
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
