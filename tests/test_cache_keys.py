"""The fast path hands the NLP plugins nncas's derivative functions through their ``cache``
option, under the names the plugins look up. Here every function the plan offers is wrapped so
that its calls are counted, and a solve must call each one under its key: a CasADi that renames
a key (or stops reading it) fails, naming the key and the version."""
import casadi as ca
import numpy as np
import pytest

from nncas import kkt

QUIET = {"print_time": False}
PLUGIN_OPTIONS = {
    "ipopt": {"ipopt.print_level": 0, "ipopt.sb": "yes"},
    "sqpmethod": {"qpsol": "qrqp", "print_header": False, "print_iteration": False,
                  "qpsol_options": {"print_iter": False, "print_header": False}},
    "blocksqp": {"print_header": False, "print_iteration": False, "print_maxit_reached": False,
                 # quasi-Newton: blockSQP's exact Hessian needs the inertia from HSL's MA27, absent here
                 "hess_update": 2, "linsol": "mumps", "schur": False},
}
#: the keys each plugin must read (IPOPT's per-iteration callbacks, sqpmethod's, blockSQP's)
READ = {"ipopt": ("nlp_grad_f", "nlp_jac_g", "nlp_hess_l"), "sqpmethod": ("nlp_jac_fg", "nlp_hess_l"),
        "blocksqp": ("nlp_gf_jg",)}


class Counter(ca.Callback):
    """A zero scalar of x that counts its evaluations."""

    def __init__(self, name, n):
        ca.Callback.__init__(self)
        self.n, self.calls = n, 0
        self.construct(name, {"enable_fd": False})

    def get_n_in(self):
        return 1

    def get_sparsity_in(self, i):
        return ca.Sparsity.dense(self.n, 1)

    def get_n_out(self):
        return 1

    def get_sparsity_out(self, i):
        return ca.Sparsity.dense(1, 1)

    def eval(self, arg):
        self.calls += 1
        return [0]


def _counted(function: ca.Function, counter: Counter) -> ca.Function:
    """``function`` with a counted zero added to its last output (sparsity, names kept)."""
    args = [ca.MX.sym(function.name_in(i), function.sparsity_in(i)) for i in range(function.n_in())]
    outs = function.call(args)
    last = function.n_out() - 1
    outs[last] = ca.project(outs[last] + counter(args[0]), function.sparsity_out(last))
    return ca.Function(function.name(), args, outs, function.name_in(), function.name_out())


def _problem():
    """min (x0 - 1)^2 + (x1 - 2)^2 + x2^2 + x0^4 / 10 s.t. |x|^2 <= 4, x0 + exp(x2) >= 1.5 (convex:
    the SQP methods' QPs are too)."""
    x = ca.MX.sym("x", 3)
    f = (x[0] - 1) ** 2 + (x[1] - 2) ** 2 + x[2] ** 2 + x[0] ** 4 / 10
    return x, f, ca.vertcat(ca.sumsqr(x), x[0] + ca.exp(x[2]))


@pytest.mark.parametrize("plugin", [
    "ipopt", "sqpmethod", "blocksqp",
])
def test_each_offered_function_is_called_under_its_key(plugin):
    if not ca.has_nlpsol(plugin):
        pytest.skip(f"this CasADi has no {plugin}")
    x, f, g = _problem()
    planned = kkt.plan(x, ca.MX(0, 1), f, g, plugin, {**QUIET, **PLUGIN_OPTIONS[plugin]}, kkt_solver="ipopt")
    assert set(READ[plugin]) <= set(planned.functions)
    counters = {key: Counter(f"count_{key}", 3) for key in planned.functions}
    cache = {key: _counted(function, counters[key]) for key, function in planned.functions.items()}
    S = ca.nlpsol("S", plugin, {"x": x, "f": f, "g": g}, {**planned.options, "cache": cache})
    result = S(x0=[0.5, 0.5, 0.5], lbg=[-np.inf, 1.5], ubg=[4, np.inf])
    assert S.stats()["success"], S.stats()["return_status"]
    unread = [key for key in READ[plugin] if counters[key].calls == 0]
    assert not unread, f"CasADi {ca.__version__} {plugin} no longer reads cache[{unread}]"
    reference = ca.nlpsol("R", plugin, {"x": x, "f": f, "g": g}, {**QUIET, **PLUGIN_OPTIONS[plugin]})
    expected = reference(x0=[0.5, 0.5, 0.5], lbg=[-np.inf, 1.5], ubg=[4, np.inf])
    np.testing.assert_allclose(result["x"].full(), expected["x"].full(), atol=1e-6)


def test_every_key_nncas_offers_is_read_by_some_plugin():
    """No offered function is dead weight: each key is in some plugin's READ list."""
    x, f, g = _problem()
    offered = set(kkt.plan(x, ca.MX(0, 1), f, g, "ipopt", QUIET, kkt_solver="ipopt").functions)
    assert offered == {key for keys in READ.values() for key in keys}
