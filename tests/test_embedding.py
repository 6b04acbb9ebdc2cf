"""Every supported layer in every formulation matches torch: values, Jacobians, Hessians."""
import casadi as ca
import numpy as np
import pytest
import torch

import nncas
import zoo

RNG = np.random.default_rng(1)
POINTS = [RNG.normal(size=zoo.N_IN) for _ in range(2)]
LAM = RNG.normal(size=3)


def _assert_close(actual, expected, rtol, atol):
    np.testing.assert_allclose(np.asarray(actual, dtype=float).reshape(np.shape(expected)), expected,
                               rtol=rtol, atol=atol)


def _assert_derivatives_match_torch(net, value, jacobian, hessian, rtol, atol):
    """value(u), jacobian(u), hessian(u, LAM) equal torch.func's at every test point, with
    per-quantity relative and absolute tolerances (value, Jacobian, Hessian)."""
    for point in POINTS:
        expected = zoo.torch_derivatives(net, point, LAM)
        got = (value(point), jacobian(point), hessian(point, LAM))
        for g, e, r, a in zip(got, expected, rtol, atol):
            _assert_close(g, e, r, a)


@pytest.mark.parametrize("kind", zoo.SMOOTH)
def test_reduced_space_matches_torch(kind):
    net = zoo.network(kind)
    opti = ca.Opti()
    x = opti.variable(zoo.N_IN)
    y, form = nncas.add_predictor(opti, net, x, formulation="reduced")
    assert form.n_variables == 0 and form.n_constraints == 0
    lam = ca.MX.sym("lam", 3)
    f = ca.Function("f", [x], [y])
    jac = ca.Function("J", [x], [ca.jacobian(y, x)])
    hess = ca.Function("H", [x, lam], [ca.hessian(ca.dot(lam, y), x)[0]])
    _assert_derivatives_match_torch(net, f, jac, hess, (1e-12, 1e-10, 1e-9), (1e-12, 1e-12, 1e-11))


@pytest.mark.parametrize("kind", zoo.SMOOTH)
def test_full_space_start_is_the_forward_pass(kind):
    """At the propagated start values every layer constraint holds and y equals torch's output."""
    net = zoo.network(kind)
    point = POINTS[0]
    opti = ca.Opti()
    x = opti.variable(zoo.N_IN)
    opti.set_initial(x, point)
    y, form = nncas.add_predictor(opti, net, x, formulation="full", input_bounds=(point - 1, point + 1))
    value, _, _ = zoo.torch_derivatives(net, point, LAM)
    start = opti.initial()
    _assert_close(opti.value(y, start), value, 1e-12, 1e-12)
    g = np.atleast_1d(opti.value(opti.g, start))
    lbg, ubg = (np.atleast_1d(opti.value(b, start)) for b in (opti.lbg, opti.ubg))
    assert np.all(g >= lbg - 1e-12) and np.all(g <= ubg + 1e-12)
    assert form.n_variables > 0 and len(form.layers) == len(form.network.layers)


@pytest.mark.parametrize("kind", zoo.SMOOTH)
def test_full_space_solves_to_the_forward_pass(kind):
    """With x fixed, the full-space variables are determined by the constraints: y = torch(x)."""
    net = zoo.network(kind)
    point = POINTS[1]
    opti = ca.Opti()
    x = opti.variable(zoo.N_IN)
    y, _ = nncas.add_predictor(opti, net, x, formulation="full")   # cold start: zeros
    opti.subject_to(x == point)
    opti.minimize(0)
    nncas.solver(opti, "ipopt", {"ipopt.print_level": 0, "print_time": False, "ipopt.tol": 1e-12})
    sol = opti.solve()
    value, _, _ = zoo.torch_derivatives(net, point, LAM)
    _assert_close(sol.value(y), value, 1e-7, 1e-8)


@pytest.mark.parametrize("method", ["structured", "generic"])
@pytest.mark.parametrize("kind", zoo.SMOOTH)
def test_graybox_torch_matches_torch(kind, method):
    net = zoo.network(kind)
    opti = ca.Opti()
    x = opti.variable(zoo.N_IN)
    y, form = nncas.add_predictor(opti, net, x, formulation="graybox", backend="torch", method=method)
    assert form.oracle.method == method
    assert form.n_variables == 0 and form.n_constraints == 0  # y = NN(x) as an expression (the default)
    o = form.oracle
    _assert_derivatives_match_torch(net, o.function, o.jacobian, o.hessian, (1e-12, 1e-10, 1e-10), (1e-12,) * 3)


@pytest.mark.parametrize("kind", ["Tanh", "Sigmoid", "Softplus", "GELU", "BatchNorm1d", "Softmax", "AffineScaling"])
def test_graybox_l4casadi_matches_torch_in_float32(kind):
    net = zoo.network(kind)
    opti = ca.Opti()
    x = opti.variable(zoo.N_IN)
    y, form = nncas.add_predictor(opti, net, x, formulation="graybox", backend="l4casadi")
    o = form.oracle
    _assert_derivatives_match_torch(net, o.function, o.jacobian, o.hessian, (1e-5, 1e-4, 1e-3), (1e-5, 1e-5, 1e-4))


def test_interval_bounds_contain_sampled_activations():
    net = nncas.from_torch(zoo.mlp([4, 8, 8, 3], head=lambda: __import__("torch").nn.Softmax(dim=-1)))
    lo, hi = -np.ones(4), np.ones(4)
    samples = RNG.uniform(lo, hi, size=(500, 4)).T
    values, bounds = samples, net.interval(lo, hi)
    for layer, (b_lo, b_hi) in zip(net.layers, bounds):
        values = layer.numpy(values)
        assert np.all(values >= b_lo[:, None] - 1e-12) and np.all(values <= b_hi[:, None] + 1e-12)


@pytest.mark.parametrize("formulation", ["full", "reduced", "graybox"])
def test_inputs_with_structural_zeros_embed(formulation):
    """An input vector holding structural zeros (an offline unit) embeds like a dense one."""
    net = zoo.network("Tanh")
    opti = ca.Opti()
    v = opti.variable(3)
    opti.set_initial(v, [0.1, -0.2, 0.3])
    y, _ = nncas.add_predictor(opti, net, ca.vertcat(v[:2], ca.MX(1, 1), v[2]), formulation=formulation)
    with torch.no_grad():
        expected = net(torch.tensor([[0.1, -0.2, 0.0, 0.3]])).double().numpy().ravel()
    np.testing.assert_allclose(np.asarray(opti.debug.value(y, opti.initial())).ravel(), expected, rtol=1e-6)


def test_graybox_input_lifts_a_narrow_leading_linear_layer():
    """'auto' lifts 12 -> 4 (a third of the inputs) but not 12 -> 8; lifted, the gray box's
    output and its derivatives through the linear rows are the network's."""
    narrow, wide = zoo.mlp([12, 4, 3], seed=1), zoo.mlp([12, 8, 3], seed=1)
    x = ca.MX.sym("x", 12)
    lifted = nncas.embed(narrow, x, formulation="graybox")
    assert lifted.w.shape == (4, 1) and lifted.g.shape == (4, 1)  # z and W x + b - z = 0
    assert nncas.embed(wide, x, formulation="graybox").w.shape == (0, 1)
    assert nncas.embed(narrow, x, formulation="graybox", graybox_input="direct").w.shape == (0, 1)
    point = np.linspace(-1, 1, 12)
    W, b = (p.detach().numpy() for p in narrow[0].parameters())
    value = ca.Function("y", [x, lifted.w], [lifted.y])(point, W @ point + b)
    np.testing.assert_allclose(np.asarray(value).ravel(), nncas.from_torch(narrow).numpy(point), rtol=1e-12)
    np.testing.assert_allclose(lifted.w0, b, rtol=1e-12)  # z at the default start x = 0


@pytest.mark.parametrize("net, options, match", [
    (zoo.mlp([4, 3, 2]), {"graybox_input": "sideways"}, "graybox_input='sideways'"),
    (torch.nn.Sequential(torch.nn.Tanh(), torch.nn.Linear(4, 2)), {"graybox_input": "lifted"},
     "starts with Tanh"),
])
def test_graybox_input_is_checked(net, options, match):
    with pytest.raises(nncas.InputError, match=match):
        nncas.embed(net, ca.MX.sym("x", 4), formulation="graybox", **options)


def test_graybox_input_applies_to_the_graybox_only():
    with pytest.raises(nncas.InputError, match=r"graybox_input='lifted' applies to formulation='graybox' only"):
        nncas.embed(zoo.mlp([4, 3, 2]), ca.MX.sym("x", 4), formulation="reduced", graybox_input="lifted")
