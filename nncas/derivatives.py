r"""Exact NLP derivatives built fast, with every gray box found in the expression graph.

CasADi builds the Hessian of the Lagrangian :math:`L = \sigma f + \lambda^T g` through its
symmetric ``hessian`` path, which takes minutes for a dense block in a few hundred inputs, and
through a gray box it calls the Hessian callback once per 64 directions. Here instead:

Every call :math:`y_i = F_i(u_i)` of a gray box (a Function nncas made, recognized by its name:
:func:`nncas.oracles.is_graybox`) is found by walking the algorithm of ``f`` and ``g``; any
other called function (an interpolant, a user's external or callback) is algebra that CasADi
differentiates itself. With the call replaced by its linearization :math:`\tilde y_i = Y_i + J_i (u_i(x) - U_i)` at symbols
:math:`Y_i, J_i, U_i` (frozen), the algebraic part is differentiated by
``jacobian(gradient(L~))``; evaluated at :math:`Y_i = F_i(u_i),\ J_i = \partial F_i/\partial u_i,
\ U_i = u_i`, that is exactly

.. math:: \nabla^2 L = \nabla^2 \tilde L + \sum_i P_i^T H_i(u_i, w_i) P_i, \qquad
          w_i = \partial \tilde L / \partial Y_i,\ P_i = \partial u_i / \partial x,

where :math:`H_i(u, w) = \nabla^2_u (w^T F_i(u))` is one call of the Jacobian of the function's
reverse mode (the gray box's own Hessian). The constraint Jacobian and objective gradient come
from :math:`\tilde f, \tilde g` the same way, with one call of :math:`F_i`'s Jacobian; the rows of
:math:`\tilde g` affine in x (linear layers lifted into rows, dynamics, budgets) get their
constant Jacobian once, at construction, and the gradient is a function of its own.

When :math:`u_i` selects entries of x (the usual case), :math:`P_i^T H_i P_i` is one gather of
:math:`H_i`'s nonzeros into the Hessian's upper triangle. A gray box whose input holds another
gray box's output is differentiated by CasADi's own AD through its hooks (still exactly: the
inner box's curvature enters through its own block, whose weights see the outer box). The
functions are named as the NLP plugins look them up in their ``cache`` option (``nlp_hess_l``,
``nlp_jac_g``, ``nlp_grad_f``, ``nlp_jac_fg``, ``nlp_gf_jg``), so every plugin that knows these
names uses them, and ``detect_simple_bounds`` compacts them like CasADi's own.
"""
from __future__ import annotations

from dataclasses import dataclass

import casadi as ca
import numpy as np

from .oracles import callback_of, is_graybox


@dataclass(eq=False)
class GrayBoxCall:
    """One call ``output = box(input)`` in an expression graph; ``function`` is the callback
    that differentiates the box (:func:`nncas.oracles.callback_of`)."""

    function: ca.Function
    input: ca.MX
    output: ca.MX


def call_nodes(expressions: list) -> list:
    """Every function-call node in the graphs of ``expressions``, in evaluation order."""
    expressions = [e for e in expressions if isinstance(e, ca.MX)]
    if not expressions:
        return []
    walk = ca.Function("nncas_walk", ca.symvar(ca.veccat(*expressions)), expressions,
                       {"allow_free": True})
    return [walk.instruction_MX(k) for k in range(walk.n_instructions())
            if walk.instruction_id(k) == ca.OP_CALL]


def inlined(expressions: list) -> list:
    """``expressions`` with every call of an MX Function replaced by its expression, recursively
    (what ``expand`` does to them, the gray boxes left as calls)."""
    while True:
        calls = [n for n in call_nodes(expressions)
                 if n.which_function().class_name() == "MXFunction" and not is_graybox(n.which_function())]
        if not calls:
            return expressions
        old, new = [], []
        for node in calls:
            function = node.which_function()
            outputs = function.call([node.dep(i) for i in range(function.n_in())], True, False)
            old += [node.get_output(i) for i in range(function.n_out())]
            new += outputs
        expressions = ca.graph_substitute(expressions, old, new)


def find_graybox_calls(expressions: list) -> list[GrayBoxCall]:
    """The gray-box calls in ``expressions`` whose inputs hold no other gray box's output."""
    calls = []
    for node in call_nodes(expressions):
        function = node.which_function()
        if is_graybox(function):
            calls.append(GrayBoxCall(callback_of(function), node.dep(0), node.get_output(0)))
    outputs = {c.output.__hash__() for c in calls}
    nested = set()
    for c in calls:
        inner = {n.get_output(0).__hash__() for n in call_nodes([c.input])}
        if inner & outputs:
            nested.add(c.output.__hash__())
    return [c for c in calls if c.output.__hash__() not in nested]


#: NLP plugins that take the upper triangle of the Lagrangian Hessian (the others, e.g.
#: sqpmethod, take the whole symmetric matrix)
UPPER_TRIANGLE_PLUGINS = ("ipopt", "bonmin", "knitro", "blocksqp", "uno")


def derivative_functions(x, p, f, g, upper: bool = True, hessian: bool = True) -> dict[str, ca.Function]:
    """``nlp_hess_l``, ``nlp_jac_g``, ``nlp_grad_f``, ``nlp_jac_fg``, ``nlp_gf_jg`` for the NLP
    ``min f(x, p) s.t. g(x, p)`` (see the module docstring); the Hessian as its upper triangle
    (``upper``) or whole, and not built at all without ``hessian`` (a quasi-Newton solve)."""
    kind = type(x)
    lam_f, lam_g = kind.sym("lam_f"), kind.sym("lam_g", g.sparsity())
    calls = find_graybox_calls([f, g])
    symbols = [(kind.sym(f"y{i}", c.output.sparsity()), kind.sym(f"J{i}", c.function.jacobian().sparsity_out(0)),
                kind.sym(f"u{i}", c.input.sparsity())) for i, c in enumerate(calls)]
    f_lin, g_lin = f, g
    if calls:
        linear = [Y + ca.reshape(ca.mtimes(J, ca.vec(c.input - U)), Y.shape)
                  for c, (Y, J, U) in zip(calls, symbols)]
        f_lin, g_lin = ca.graph_substitute([f, g], [c.output for c in calls], linear)
    frozen = [s for triple in symbols for s in triple]
    # each call's (Y, J, U) at the point, in the order of ``symbols``
    at_point = [(c.output, c.function.jacobian()(c.input, c.output), c.input) for c in calls]
    every_box = [e for triple in at_point for e in triple]
    inputs = [x, p, *frozen]
    jac = ca.Function("nncas_jacobian", inputs, [_jacobian(g_lin, x, inputs)]).call([x, p, *every_box])[0]
    # the gradient dense: plugins copy it as a dense vector (a structural zero would be left
    # unwritten); it takes only the gray boxes f depends on, so that evaluating it never runs a
    # Jacobian the objective does not need
    in_f = [i for i, (Y, _, _) in enumerate(symbols) if ca.depends_on(f_lin, Y)]
    grad_inputs = [x, p, *(s for i in in_f for s in symbols[i])]
    grad_at = [x, p, *(e for i in in_f for e in at_point[i])]
    grad = ca.Function("nncas_gradient", grad_inputs, [ca.densify(ca.gradient(f_lin, x))]).call(grad_at)[0]
    functions = {
        "nlp_jac_g": ca.Function("nlp_jac_g", [x, p], [g, jac], ["x", "p"], ["g", "jac_g_x"]),
        "nlp_grad_f": ca.Function("nlp_grad_f", [x, p], [f, grad], ["x", "p"], ["f", "grad_f_x"]),
        "nlp_jac_fg": ca.Function("nlp_jac_fg", [x, p], [f, grad, g, jac], ["x", "p"],
                                  ["f", "grad_f_x", "g", "jac_g_x"]),
        "nlp_gf_jg": ca.Function("nlp_gf_jg", [x, p], [f, g, grad, jac], ["x", "p"],
                                 ["f", "g", "grad_f_x", "jac_g_x"]),
    }
    if not hessian:
        return functions
    lagrangian = lam_f * f_lin + ca.dot(lam_g, g_lin)
    weights = [ca.gradient(lagrangian, Y) for Y, _, _ in symbols]
    second = ca.Function("nncas_second", [x, p, lam_f, lam_g, *frozen],
                         [ca.jacobian(ca.gradient(lagrangian, x), x), *weights])
    hess, *w = second.call([x, p, lam_f, lam_g, *every_box])
    hess = ca.triu(hess) if upper else hess
    for c, weight in zip(calls, w):
        hess += _hessian_block(c, weight, x, upper)
    functions["nlp_hess_l"] = ca.Function("nlp_hess_l", [x, p, lam_f, lam_g], [hess], ["x", "p", "lam_f", "lam_g"],
                                          ["triu_hess_gamma_x_x" if upper else "hess_gamma_x_x"])
    return functions


def _jacobian(g, x, inputs: list):
    r""":math:`\partial g / \partial x` with the rows affine in ``inputs`` (x, the parameters, the
    gray boxes' frozen symbols) as a constant, evaluated once.

    CasADi evaluates an MX Jacobian by sparse AD sweeps at every call: the rows
    :math:`W x + b - z = 0` of a lifted 784 x 128 layer cost 7 ms per evaluation that way, and
    a copy of their constant nonzeros 0.1 ms.
    """
    if not isinstance(g, ca.MX) or g.nnz() == 0 or g.nnz() != g.numel():
        return ca.jacobian(g, x)
    nonlinear = np.asarray(ca.which_depends(g, ca.veccat(*inputs), 2, True), dtype=bool)
    if nonlinear.all():
        return ca.jacobian(g, x)
    affine, other = np.flatnonzero(~nonlinear).tolist(), np.flatnonzero(nonlinear).tolist()
    zeros = [np.zeros(s.sparsity().shape) for s in inputs]
    constant = ca.Function("nncas_affine_rows", inputs, [ca.jacobian(g[affine], x)])(*zeros)
    stacked = ca.vertcat(ca.MX(constant), ca.jacobian(g[other], x)) if other else ca.MX(constant)
    order = np.argsort(np.r_[affine, other], kind="stable")
    return stacked if np.array_equal(order, np.arange(order.size)) else stacked[order.tolist(), :]


def _hessian_block(call: GrayBoxCall, weight, x, upper: bool):
    r""":math:`P^T H(u, w) P` with :math:`P = \partial\,\mathrm{vec}(u) / \partial x` (its upper
    triangle when ``upper``): one gather of H's nonzeros when u selects entries of x (each
    once), a product with the constant P when u is otherwise affine in x, with P(x) else."""
    hess_of_reverse = call.function.reverse(1).jacobian()
    n = x.numel()
    P = ca.jacobian(ca.vec(call.input), x)
    if P.nnz() == 0:
        return ca.MX(n, n)
    H = hess_of_reverse(call.input, call.output, weight, ca.MX(call.input.sparsity()))[0]
    if not ca.symvar(P):
        P = ca.evalf(P)
        selected = _selected_columns(P)
        if selected is not None:
            return _placed(H, selected, n, upper)
    block = ca.mtimes([P.T, H, P])
    return ca.triu(block) if upper else block


def _selected_columns(P: ca.DM):
    """For P with a single 1 per row and distinct columns, the column of each row; else None."""
    rows, cols = (np.asarray(i) for i in P.sparsity().get_triplet())
    values = np.asarray(P.nonzeros())
    if rows.size != P.size1() or np.any(values != 1) or np.unique(cols).size != cols.size:
        return None
    selected = np.empty(P.size1(), dtype=np.int64)
    selected[rows] = cols
    return selected


def _placed(H, selected: np.ndarray, n: int, upper: bool):
    """H (over the entries of u) placed at rows and columns ``selected`` of an n x n matrix
    (upper triangle only when ``upper``), as one gather of its nonzeros."""
    if selected.size == n and np.array_equal(selected, np.arange(n)):  # u is x itself
        return ca.triu(H) if upper else H
    rows, cols = (np.asarray(i) for i in H.sparsity().get_triplet())
    rows, cols = selected[rows], selected[cols]
    source = np.arange(rows.size)
    if upper:
        keep = rows <= cols
        rows, cols, source = rows[keep], cols[keep], source[keep]
    order = np.argsort(cols * n + rows, kind="stable")  # CasADi's column-major nonzero order
    sparsity = ca.Sparsity.triplet(n, n, rows[order].tolist(), cols[order].tolist())
    return ca.MX(sparsity, H.nz[source[order].tolist()])
