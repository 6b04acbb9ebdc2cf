"""nncas.nlpsol gives casadi.nlpsol's result for every nlp dict and option it accepts, and
refuses with an nncas error what casadi.nlpsol refuses (CasADi's own test/python/nlp.py cases
among them); the cache keys the fast path relies on are those the installed CasADi reads."""
import pickle

import casadi as ca
import numpy as np
import pytest
from torch import nn

import nncas
from nncas.derivatives import derivative_functions

QUIET = {"ipopt.print_level": 0, "print_time": False, "ipopt.sb": "yes"}
ROUTES = [ca.nlpsol, nncas.nlpsol]


def _both(nlp_of, options, **args):
    """(return status, f, x) from casadi.nlpsol and nncas.nlpsol on the nlp dict nlp_of()."""
    out = []
    for route in ROUTES:
        S = route("S", "ipopt", nlp_of(), options)
        r = S(**args)
        out.append((S.stats()["return_status"], float(r["f"]), np.asarray(r["x"]).ravel()))
    return out


def _assert_same(out, rel=1e-12):
    (status_c, f_c, x_c), (status_n, f_n, x_n) = out
    assert status_n == status_c
    assert f_n == pytest.approx(f_c, rel=rel, abs=1e-14)
    np.testing.assert_allclose(x_n, x_c, rtol=1e-9, atol=1e-12)


def _circle(kind, **parts):
    x = kind.sym("x", 2)
    return {"x": x, "g": x[0] ** 2 + x[1] ** 2, **{k: v(x) if callable(v) else v for k, v in parts.items()}}


@pytest.mark.parametrize("kind", [ca.SX, ca.MX])
@pytest.mark.parametrize("objective", ["0x0", "0x1", "1x0", "DM", "numpy", "float", "absent"])
def test_objectives_casadi_accepts(kind, objective):
    """An empty objective is f = 0 (CasADi's create_oracle); constants of every kind are taken."""
    f = {"0x0": kind(0, 0), "0x1": kind(0, 1), "1x0": kind(1, 0), "DM": ca.DM(3.0), "numpy": np.float64(3.0),
         "float": 3.0}.get(objective)
    parts = {} if objective == "absent" else {"f": f}
    out = _both(lambda: _circle(kind, **parts), QUIET, x0=[0.5, 0.5], lbg=1, ubg=1)
    _assert_same(out)
    assert out[0][0] == "Solve_Succeeded"


@pytest.mark.parametrize("kind", [ca.SX, ca.MX])
def test_vectors_as_rows_and_parameters_as_matrices(kind):
    def nlp():
        x, p = kind.sym("x", 2), kind.sym("p", 2, 2)
        return {"x": x.T, "p": p, "f": ca.sumsqr(x - p[:, 1]) + p[0, 0] * x[0] ** 4,
                "g": ca.horzcat(x[0] + x[1], x[0] * x[1])}
    p = ca.DM([[1, 2], [3, 4]])
    _assert_same(_both(nlp, QUIET, x0=0.5, p=p, lbg=[0, 0], ubg=[1, 0.1]), rel=1e-10)


@pytest.mark.parametrize("kind", [ca.SX, ca.MX])
@pytest.mark.parametrize("case, match", [
    ("x expression", r"nlp\['x'\] must be purely symbolic"),
    ("p expression", r"nlp\['p'\] must be purely symbolic"),
    ("f vector", r"nlp\['f'\] must be a scalar objective, got 2x1"),
    ("f matrix", r"nlp\['f'\] must be a scalar objective, got 2x2"),
    ("f structural zero", r"nlp\['f'\] is a structural zero"),
    ("g matrix", r"nlp\['g'\] must be a dense vector, got 2x2"),
    ("g sparse", r"nlp\['g'\] must be a dense vector, got 2x1 with 1 nonzeros"),
    ("x sparse", r"nlp\['x'\] must be a dense vector"),
])
def test_what_casadi_refuses_is_an_input_error(kind, case, match):
    x, p = kind.sym("x", 2), kind.sym("p")
    nlp = {"x expression": {"x": 2 * x, "f": ca.sumsqr(x)},
           "p expression": {"x": x, "p": 2 * p, "f": ca.sumsqr(x)},
           "f vector": {"x": x, "f": x},
           "f matrix": {"x": x, "f": x @ x.T},
           "f structural zero": {"x": x, "f": kind(1, 1)},
           "g matrix": {"x": x, "f": x[0], "g": ca.diag(x)},
           "g sparse": {"x": x, "f": x[0], "g": ca.vertcat(x[0], kind(1, 1))},
           "x sparse": {"x": ca.vec(ca.diag(kind.sym("d", 2))), "f": 1}}[case]
    with pytest.raises(RuntimeError):
        ca.nlpsol("S", "ipopt", nlp, QUIET)
    with pytest.raises(nncas.InputError, match=match):
        nncas.nlpsol("S", "ipopt", nlp, QUIET)


def _custom_jacobian_problem():
    """CasADi's test_postpone_expand: f(x) = x**2 with a wrong custom Jacobian (-x)."""
    x = ca.MX.sym("x")
    J = ca.Function("jac_f", [x, ca.MX(1, 1)], [-x], ["x", "out_r"], ["jac_r_x"])
    f = ca.Function("f", [x], [x ** 2], ["x"], ["r"], {"custom_jacobian": J, "jac_penalty": 0})
    return x, f


@pytest.mark.parametrize("options, status", [
    ({}, "Maximum_Iterations_Exceeded"),
    ({"expand": True}, "Solve_Succeeded"),
    ({"expand": True, "postpone_expand": True}, "Maximum_Iterations_Exceeded"),
])
def test_expand_drops_a_custom_jacobian_as_casadi_does(options, status):
    def nlp():
        x, f = _custom_jacobian_problem()
        return {"x": x, "f": f(x - 3)}
    out = _both(nlp, {**QUIET, "ipopt.max_iter": 5, **options})
    _assert_same(out)
    assert out[1][0] == status


def test_expand_with_a_graybox_inlines_the_function_calls():
    """Expanded, the custom Jacobian gives way to x**2's own beside a gray box: the optimum of
    (x - 3)^2 + NN(x), as CasADi finds it."""
    net = nn.Sequential(nn.Linear(1, 3), nn.Tanh(), nn.Linear(3, 1)).double()
    keep = []

    def nlp():
        x, f = _custom_jacobian_problem()
        keep.append(nncas.embed(net, x, formulation="graybox"))
        return {"x": x, "f": f(x - 3) + keep[-1].y}
    out = _both(nlp, {**QUIET, "expand": True})
    _assert_same(out, rel=1e-10)
    assert out[1][0] == "Solve_Succeeded"


def test_expand_with_an_sx_function_beside_a_graybox_is_casadis():
    """An SX Function with a custom Jacobian beside a gray box: CasADi's own expansion decides
    (nncas leaves the derivatives to it), so the result is CasADi's."""
    net = nn.Sequential(nn.Linear(1, 3), nn.Tanh(), nn.Linear(3, 1)).double()
    keep = []

    def nlp():
        s = ca.SX.sym("s")
        J = ca.Function("jac_f", [s, ca.SX(1, 1)], [-s], ["x", "out_r"], ["jac_r_x"])
        f = ca.Function("f", [s], [s ** 2], ["x"], ["r"], {"custom_jacobian": J, "jac_penalty": 0})
        x = ca.MX.sym("x")
        keep.append(nncas.embed(net, x, formulation="graybox"))
        return {"x": x, "f": f(x - 3) + keep[-1].y}
    out = _both(nlp, {**QUIET, "expand": True})
    _assert_same(out, rel=1e-10)
    assert out[1][0] == "Solve_Succeeded"


def _rosenbrock_like():
    """CasADi's test_ipopt_custom_hess problem: (x, f, g, lam_f, lam_g) in SX."""
    x = ca.SX.sym("x", 3)
    return x, (1 - x[0]) ** 2 + 100 * x[2] ** 2, x[1] - x[0] ** 2 - x[2], ca.SX.sym("lam_f"), ca.SX.sym("lam_g")


def test_a_users_own_hessian_is_used_not_replaced():
    x, f, g, lam_f, lam_g = _rosenbrock_like()
    zero = ca.Function("nlp_hess_l", [x, ca.SX(0, 1), lam_f, lam_g], [ca.triu(ca.DM.zeros(3, 3))])
    S = nncas.nlpsol("S", "ipopt", {"x": x, "f": f, "g": g}, {**QUIET, "cache": {"nlp_hess_l": zero}})
    assert float(ca.sumsqr(S.get_function("nlp_hess_l")([0.11, 0.3, 0.7], [], 1.2, 3.7))) == 0
    H = ca.jacobian(ca.gradient(lam_f * f + lam_g * g, x), x)
    exact = ca.Function("nlp_hess_l", [x, ca.SX(0, 1), lam_f, lam_g], [ca.triu(H)])
    _assert_same(_both(lambda: {"x": x, "f": f, "g": g}, {**QUIET, "cache": {"nlp_hess_l": exact}}, x0=0, lbg=0, ubg=0))


FD = {"helper_options": {"enable_fd": True, "enable_forward": False, "enable_reverse": False}}


@pytest.mark.parametrize("options", [{"common_options": FD}, {"specific_options": {"nlp_grad_f": FD}}])
def test_helper_options_take_effect(options):
    """Finite differences asked for the helper functions give CasADi's finite-difference gradient."""
    gradients = []
    for route in ROUTES:
        x = ca.MX.sym("x")
        S = route("S", "ipopt", {"x": x, "f": ca.exp(x) + x ** 3}, {**QUIET, **options})
        gradients.append(float(S.get_function("nlp_grad_f")(1.3, [])[1]))
    exact = np.exp(1.3) + 3 * 1.3 ** 2
    assert gradients[1] == gradients[0]
    assert 0 < abs(gradients[1] - exact) < 1e-4


@pytest.fixture
def graybox_nlp():
    net = nn.Sequential(nn.Linear(2, 3), nn.Tanh(), nn.Linear(3, 1)).double()
    x = ca.MX.sym("x", 2)
    e = nncas.embed(net, x, formulation="graybox")
    return e, {"x": x, "f": ca.sumsqr(x) + e.y, "g": x[0]}


def test_saving_a_graybox_solver_is_refused(graybox_nlp, tmp_path):
    _, nlp = graybox_nlp
    S = nncas.nlpsol("S", "ipopt", nlp, QUIET)
    path = tmp_path / "S.casadi"
    with pytest.raises(nncas.InputError, match="casadi.Function.load cannot restore"):
        S.save(str(path))
    assert not path.exists()
    with pytest.raises(nncas.InputError, match="Python callbacks"):
        S.serialize()
    with pytest.raises(nncas.InputError, match="Python callbacks"):
        pickle.dumps(S)


def test_a_solver_without_graybox_saves_and_loads(tmp_path):
    x, f, g, _, _ = _rosenbrock_like()
    S = nncas.nlpsol("S", "ipopt", {"x": x, "f": f, "g": g}, QUIET)
    S.save(str(tmp_path / "S.casadi"))
    loaded = ca.Function.load(str(tmp_path / "S.casadi"))
    assert float(loaded(x0=0, lbg=0, ubg=0)["f"]) == pytest.approx(float(S(x0=0, lbg=0, ubg=0)["f"]), rel=1e-12)
    assert float(pickle.loads(pickle.dumps(S))(x0=0, lbg=0, ubg=0)["f"]) == pytest.approx(
        float(S(x0=0, lbg=0, ubg=0)["f"]), rel=1e-12)


#: the cache keys each plugin reads, by which the fast path hands it nncas's derivative functions
CACHE_KEYS = {"ipopt": ("nlp_grad_f", "nlp_jac_g", "nlp_hess_l"), "sqpmethod": ("nlp_jac_fg", "nlp_hess_l")}


@pytest.mark.parametrize("detect_simple_bounds", [False, True])
@pytest.mark.parametrize("plugin", sorted(CACHE_KEYS))
def test_the_cache_keys_the_fast_path_relies_on(plugin, detect_simple_bounds, graybox_nlp):
    """The installed CasADi takes every function the fast path offers under these names (nncas's
    name their outputs with underscores, CasADi's own with colons); a renamed key fails here."""
    e, nlp = graybox_nlp
    x, f, g = nlp["x"], nlp["f"], ca.vertcat(nlp["g"], nlp["x"][1])
    ours = derivative_functions(x, ca.MX(0, 1), f, g, upper=plugin == "ipopt")
    options = {"print_time": False, "detect_simple_bounds": detect_simple_bounds, "cache": ours}
    options.update({"ipopt.print_level": 0, "ipopt.sb": "yes"} if plugin == "ipopt" else
                   {"qpsol": "qrqp", "print_header": False, "print_iteration": False,
                    "qpsol_options": {"print_iter": False, "print_header": False}})
    S = ca.nlpsol("S", plugin, {"x": x, "f": f, "g": g}, options)
    for key in CACHE_KEYS[plugin]:
        used = S.get_function(key)
        assert used.name_out() == ours[key].name_out(), (
            f"CasADi {ca.__version__} {plugin} no longer reads cache['{key}']")
    S(x0=[0.3, 0.2], lbg=[0.1, -1], ubg=[1, 1])
    assert S.stats()["success"]


def test_nncas_solver_expands_as_opti_solver():
    """The Opti route reads expand as opti.solver does: the custom Jacobian gives way."""
    values = []
    for route in ("opti", "nncas"):
        opti = ca.Opti()
        x = opti.variable()
        _, f = _custom_jacobian_problem()
        opti.minimize(f(x - 3))
        options = {**QUIET, "ipopt.max_iter": 5, "expand": True}
        opti.solver("ipopt", options) if route == "opti" else nncas.solver(opti, "ipopt", options)
        sol = opti.solve_limited()
        values.append((opti.stats()["return_status"], float(sol.value(x))))
    assert values[1] == values[0] == ("Solve_Succeeded", 3.0)


def test_nncas_solver_takes_helper_options_as_opti_solver():
    gradients = []
    for route in ("opti", "nncas"):
        opti = ca.Opti()
        x = opti.variable()
        opti.minimize(ca.exp(x) + x ** 4)
        options = {**QUIET, "common_options": FD, "ipopt.hessian_approximation": "limited-memory"}
        opti.solver("ipopt", options) if route == "opti" else nncas.solver(opti, "ipopt", options)
        opti.solve()
        gradients.append(float(opti.debug.casadi_solver.get_function("nlp_grad_f")(1.3, [])[1]))
    assert gradients[1] == gradients[0] != pytest.approx(np.exp(1.3) + 4 * 1.3 ** 3, rel=1e-12, abs=0)


def test_nncas_solver_keeps_a_users_cache_entry():
    opti = ca.Opti()
    x = opti.variable(2)
    opti.minimize(ca.sumsqr(x - 1) + x[0] ** 4)
    xs, p, lam_f, lam_g = ca.MX.sym("x", 2), ca.MX(0, 1), ca.MX.sym("lam_f"), ca.MX.sym("lam_g", 0)
    zero = ca.Function("nlp_hess_l", [xs, p, lam_f, lam_g], [ca.MX(ca.triu(ca.DM.zeros(2, 2)))])
    nncas.solver(opti, "ipopt", {**QUIET, "ipopt.max_iter": 3, "cache": {"nlp_hess_l": zero}})
    opti.solve_limited()
    used = opti.debug.casadi_solver.get_function("nlp_hess_l")
    assert float(ca.sumsqr(used([0.5, 0.5], [], 1.0, []))) == 0
