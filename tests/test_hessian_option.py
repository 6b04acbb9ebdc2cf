"""Hessian routes: ``hessian="limited-memory"`` (IPOPT's quasi-Newton Hessian from nncas's exact
gradients and Jacobians, on every formulation and both routes) and a gray box's float32 Hessian
(``hessian_dtype``); the same optimum as the exact Hessian."""
import casadi as ca
import numpy as np
import pytest
import torch

import nncas
from nncas.oracles.torch_oracle import TorchOracle

QUIET = {"ipopt.print_level": 0, "ipopt.sb": "yes", "print_time": False, "ipopt.tol": 1e-10}


def _net():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(6, 16), torch.nn.Tanh(), torch.nn.Linear(16, 16), torch.nn.Tanh(),
                               torch.nn.Linear(16, 3)).double()


def _nlp(net, formulation):
    """min |x - x_ref|^2 s.t. NN(x)[0] - NN(x)[1] >= 0.3, 0 <= x <= 1."""
    x = ca.MX.sym("x", 6)
    e = nncas.embed(net, x, formulation, input_bounds=(0, 1))
    x_ref = np.linspace(0.1, 0.9, 6)
    nlp = {"x": ca.vertcat(x, e.w), "f": ca.sumsqr(x - x_ref), "g": ca.vertcat(e.g, e.y[0] - e.y[1])}
    bounds = dict(x0=np.r_[x_ref, e.w0], lbx=np.r_[np.full(6, -np.inf), e.lbw], ubx=np.r_[np.full(6, np.inf), e.ubw],
                  lbg=np.r_[e.lbg, 0.3], ubg=np.r_[e.ubg, np.inf])
    return nlp, bounds


@pytest.mark.parametrize("formulation", ["full", "reduced", "graybox"])
def test_limited_memory_reaches_the_exact_optimum_without_a_hessian(formulation):
    net = _net()
    nlp, bounds = _nlp(net, formulation)
    exact = nncas.nlpsol("S", "ipopt", nlp, QUIET)
    quasi = nncas.nlpsol("Q", "ipopt", nlp, QUIET, hessian="limited-memory")
    f_exact, f_quasi = float(exact(**bounds)["f"]), float(quasi(**bounds)["f"])
    assert exact.stats()["success"] and quasi.stats()["success"]
    assert abs(f_quasi - f_exact) <= 1e-6 * abs(f_exact)
    assert exact.stats()["n_call_nlp_hess_l"] > 0
    assert quasi.stats().get("n_call_nlp_hess_l", 0) == 0


def test_limited_memory_through_an_opti():
    net = _net()
    values = {}
    for hessian in ("exact", "limited-memory"):
        opti = ca.Opti()
        x = opti.variable(6)
        y, _ = nncas.add_predictor(opti, net, x, "graybox")
        opti.subject_to(y[0] - y[1] >= 0.3)
        opti.subject_to(opti.bounded(0, x, 1))
        opti.minimize(ca.sumsqr(x - np.linspace(0.1, 0.9, 6)))
        nncas.solver(opti, "ipopt", QUIET, hessian=hessian)
        values[hessian] = opti.solve().value(opti.f)
    assert values["limited-memory"] == pytest.approx(values["exact"], rel=1e-6)


def test_the_options_spelling_builds_no_hessian_either():
    nlp, _ = _nlp(_net(), "reduced")
    from nncas.kkt import plan
    from nncas.nlp import checked_nlp
    planned = plan(*checked_nlp(nlp), "ipopt", {"ipopt.hessian_approximation": "limited-memory"})
    assert "nlp_hess_l" not in planned.functions and "nlp_jac_g" in planned.functions


@pytest.mark.parametrize("plugin, options, hessian, match", [
    ("ipopt", None, "bfgs", "hessian='bfgs'"),
    ("sqpmethod", None, "limited-memory", "sqpmethod"),
    ("ipopt", {"ipopt.hessian_approximation": "exact"}, "limited-memory", "disagree"),
])
def test_a_hessian_that_cannot_be_honoured_is_refused(plugin, options, hessian, match):
    nlp, _ = _nlp(_net(), "reduced")
    with pytest.raises(nncas.InputError, match=match):
        nncas.nlpsol("S", plugin, nlp, options, hessian=hessian)


@pytest.mark.parametrize("method", ["structured", "generic"])
def test_a_float32_hessian_is_rounded_and_nothing_else(method):
    """hessian_dtype=float32: the Hessian from float32 weights (off by float32 rounding only),
    values and Jacobians still float64."""
    net = _net()
    u, lam = np.linspace(0.1, 0.9, 6), np.array([1.0, -2.0, 0.5])
    full = TorchOracle(net, 6, 3, torch.device("cpu"), method=method)
    low = TorchOracle(net, 6, 3, torch.device("cpu"), method=method, hessian_dtype=torch.float32)
    h64, h32 = full.hessian(u, lam), low.hessian(u, lam)
    assert h32.dtype == np.float64
    np.testing.assert_allclose(h32, h64, rtol=1e-5, atol=1e-6 * np.abs(h64).max())
    assert not np.array_equal(h32, h64)
    np.testing.assert_array_equal(low.value(u), full.value(u))
    np.testing.assert_array_equal(low.jacobian(u), full.jacobian(u))


def test_a_float32_hessian_reaches_the_exact_optimum():
    net = _net()
    values = {}
    for name, hessian_dtype in (("exact", None), ("float32", torch.float32)):
        nlp, bounds = _nlp(net, nncas.GrayBox(hessian_dtype=hessian_dtype))
        solver = nncas.nlpsol("S", "ipopt", nlp, QUIET)
        values[name] = float(solver(**bounds)["f"])
        assert solver.stats()["success"]
    assert values["float32"] == pytest.approx(values["exact"], rel=1e-8)


def test_a_hessian_dtype_that_is_not_a_float_is_refused():
    with pytest.raises(nncas.InputTypeError, match="hessian_dtype"):
        nncas.embed(_net(), ca.MX.sym("x", 6), nncas.GrayBox(hessian_dtype=torch.int32))
