r"""What nncas hands an NLP plugin for :math:`\min_x f(x, p)` s.t. :math:`g(x, p)`: one pipeline,
nlp -> derivative functions (:mod:`nncas.derivatives`) -> KKT shape -> linear solver -> options,
shared by :func:`nncas.nlpsol`, :func:`nncas.solver` and :func:`nncas.kkt.choice`."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import casadi as ca

from ..derivatives import UPPER_TRIANGLE_PLUGINS, call_nodes, derivative_functions, inlined
from ..errors import InputError, InputTypeError
from .shape import bounds_as_bounds, nlp_shape
from .solvers import SOLVERS, given_ipopt_options, solver_for_shape

#: the cache keys each kind of plugin evaluates at every iteration (IPOPT's, sqpmethod's)
ITERATION_KEYS = (("nlp_grad_f", "nlp_jac_g", "nlp_hess_l"), ("nlp_jac_fg", "nlp_hess_l"))


@dataclass(frozen=True)
class Plan:
    """One NLP's solver construction: ``functions`` (nncas's derivative functions offered to
    the plugin's ``cache``, by key), ``options`` (the final nlpsol options, those functions in
    their cache), ``kkt_solver`` (the key of :data:`nncas.kkt.solvers.SOLVERS` chosen),
    ``linear_solver`` (its display name) and ``keep`` (Python objects the functions call, which
    CasADi does not keep alive)."""

    functions: dict
    options: dict
    kkt_solver: str
    linear_solver: str
    keep: tuple = ()


def plan(x, p, f, g, plugin: str, options: dict | None = None, kkt_solver: str = "auto", *,
         decide_bounds: bool = False, wrap: Callable | None = None) -> Plan:
    """The :class:`Plan` for the NLP (x, p, f, g) (as :func:`nncas.nlp.checked_nlp` gives it)
    under ``plugin`` with ``options``.

    ``decide_bounds``: where the options do not set ``detect_simple_bounds``, set it from the
    KKT shape (:func:`~nncas.kkt.shape.bounds_as_bounds`; the Opti route). ``wrap(function)``
    -> (function, object to keep): applied to one offered function per entry of
    :data:`ITERATION_KEYS` (the Opti route's stale-problem guard).
    """
    check_plugin(plugin, options)
    options = dict(options or {})
    exact = exact_hessian(plugin, options)
    functions = derivatives(x, p, f, g, plugin, options)
    described = {**(functions or derivative_functions(x, p, f, g, hessian=exact)), **options.get("cache", {})}
    shape = nlp_shape(described, {"detect_simple_bounds": options.get("detect_simple_bounds", decide_bounds)})
    if decide_bounds and "detect_simple_bounds" not in options:
        options["detect_simple_bounds"] = bounds_as_bounds(shape)
        if not options["detect_simple_bounds"]:
            shape = nlp_shape(described, options)
    key = solver_for_shape(kkt_solver, plugin, options, shape)
    solver = SOLVERS[key]
    offered, keep = _offered(functions, options), {}
    for candidates in ITERATION_KEYS if wrap is not None else ():
        name = next((n for n in candidates if n in offered), None)
        if name is not None and name not in keep:
            offered[name], keep[name] = wrap(functions[name])
    final = solver.with_options(options)
    final["cache"] = {**offered, **options.get("cache", {})}
    return Plan(offered, final, key, solver.name(plugin, options), tuple(keep.values()))


def check_plugin(plugin, options) -> None:
    """Refuses a ``plugin`` this CasADi does not have and ``options`` that are no dict."""
    if not isinstance(plugin, str) or not ca.has_nlpsol(plugin):
        raise InputError(f"plugin={plugin!r} is not an NLP solver of this CasADi; e.g. 'ipopt' or 'sqpmethod'.")
    if options is not None and not isinstance(options, dict):
        raise InputTypeError(f"options must be a dict of solver options, got {type(options).__name__}.")
    if options is not None and not isinstance(options.get("cache", {}), dict):
        raise InputTypeError("options['cache'] must be a dict of CasADi Functions.")


def derivatives(x, p, f, g, plugin: str, options: dict) -> dict | None:
    """The derivative functions of the NLP as ``casadi.nlpsol`` differentiates it with these
    options, or None where nncas cannot build them so (CasADi builds its own then).

    With ``expand`` (and not ``postpone_expand``) CasADi expands an MX problem before
    differentiating it, so a called Function's own derivatives (``custom_jacobian``...) give way
    to those of its expression: the same happens here, in SX, or in MX with every MX Function
    call inlined when the problem holds gray boxes.
    """
    upper, hessian = plugin in UPPER_TRIANGLE_PLUGINS, exact_hessian(plugin, options)
    if not (options.get("expand") and not options.get("postpone_expand")) or not isinstance(x, ca.MX):
        return derivative_functions(x, p, f, g, upper=upper, hessian=hessian)
    expanded = ca.Function("nlp", [x, p], [f, g]).expand()
    if not any(expanded.instruction_id(k) == ca.OP_CALL for k in range(expanded.n_instructions())):
        xs, ps = ca.SX.sym("x", x.sparsity()), ca.SX.sym("p", p.sparsity())
        return derivative_functions(xs, ps, *expanded(xs, ps), upper=upper, hessian=hessian)
    f, g = inlined([f, g])
    if any(node.which_function().class_name() == "SXFunction" for node in call_nodes([f, g])):
        return None  # an SX Function beside gray boxes: only CasADi's expansion reproduces it
    return derivative_functions(x, p, f, g, upper=upper, hessian=hessian)


#: ``hessian=`` of :func:`nncas.nlpsol` and :func:`nncas.solver`
HESSIANS = ("exact", "limited-memory")


def with_hessian(plugin: str, options: dict | None, hessian: str) -> dict | None:
    """``options`` with IPOPT's ``hessian_approximation`` for ``hessian``: "exact" (the
    options' own choice, by default IPOPT's exact Hessian) or "limited-memory" (L-BFGS from
    the exact gradients and Jacobians; IPOPT only). Refuses a conflict with the options."""
    if not isinstance(hessian, str) or hessian not in HESSIANS:
        raise InputError(f"hessian={hessian!r}; use one of {', '.join(map(repr, HESSIANS))}.")
    if hessian == "exact":
        return options
    if plugin != "ipopt":
        raise InputError(f"hessian='limited-memory' is IPOPT's quasi-Newton Hessian; plugin {plugin!r} has its own "
                         "options for that (e.g. sqpmethod's hessian_approximation).")
    given = given_ipopt_options(dict(options or {})).get("hessian_approximation", hessian)
    if given != hessian:
        raise InputError(f"hessian='limited-memory' and the options' ipopt.hessian_approximation={given!r} "
                         "disagree; drop one of them.")
    return {**(options or {}), "ipopt.hessian_approximation": hessian}


def exact_hessian(plugin: str, options: dict) -> bool:
    """Whether the plugin evaluates the Lagrangian's Hessian (nlp_hess_l) with these options:
    not IPOPT with ``hessian_approximation = limited-memory``."""
    return not (plugin == "ipopt" and given_ipopt_options(options).get("hessian_approximation") == "limited-memory")


def _offered(functions: dict | None, options: dict) -> dict:
    """The derivative functions handed to the plugin's cache: none of those the user's own
    ``cache`` entries replace, nor of those ``common_options`` or ``specific_options``
    configure (CasADi builds these itself, with the options)."""
    if functions is None or options.get("common_options"):
        return {}
    specific = options.get("specific_options")
    configured = set(specific) if isinstance(specific, dict) else set()
    return {k: v for k, v in functions.items() if k not in options.get("cache", {}) and k not in configured}
