"""Convolutions, pooling and channel normalization in every formulation: values, Jacobians and
Hessians equal torch's (float64); a CNN reaches one optimum in all formulations; the errors."""
import casadi as ca
import numpy as np
import pytest
import torch
from torch import nn

import nncas
import zoo


def _layer_norm(shape):
    norm = nn.LayerNorm(shape)
    with torch.no_grad():
        norm.weight.uniform_(0.5, 1.5)
        norm.bias.uniform_(-0.3, 0.3)
    return norm


def _image_net(*middle, channels_out=2, spatial=4):
    """(input shape, net): middle layers on a 1x8x8 image, then flatten, Linear, softmax."""
    return (1, 8, 8), nn.Sequential(*middle, nn.Flatten(), nn.Linear(channels_out * spatial, 3),
                                    nn.Softmax(dim=-1)).eval()


NETS = {
    "conv2d-stride-padding": lambda: _image_net(nn.Conv2d(1, 2, 3, stride=2, padding=1), nn.Tanh(),
                                                channels_out=2, spatial=16),
    "conv2d-dilation-groups": lambda: _image_net(nn.Conv2d(1, 4, 3, dilation=2), nn.SiLU(),
                                                 nn.Conv2d(4, 2, 2, groups=2), nn.Sigmoid(), spatial=9),
    "avgpool2d-batchnorm2d": lambda: _image_net(nn.Conv2d(1, 2, 3, padding=1), zoo.batchnorm(2, nn.BatchNorm2d),
                                                nn.Tanh(), nn.AvgPool2d(2, stride=2), nn.AvgPool2d(2), spatial=4),
    "adaptive-avgpool2d": lambda: _image_net(nn.Conv2d(1, 2, 3), nn.Softplus(), nn.AdaptiveAvgPool2d((2, 3)),
                                             spatial=6),
    "conv1d-avgpool1d-batchnorm1d": lambda: ((2, 10), nn.Sequential(
        nn.Conv1d(2, 3, 3, padding=1), zoo.batchnorm(3), nn.Tanh(), nn.AvgPool1d(2),
        nn.Flatten(), nn.Linear(15, 3)).eval()),
    "layernorm": lambda: ((12,), nn.Sequential(nn.Linear(12, 6), _layer_norm(6), nn.Tanh(), nn.Linear(6, 3)).eval()),
    "layernorm-image": lambda: _image_net(nn.Conv2d(1, 2, 3), _layer_norm((2, 6, 6)), nn.Tanh(), nn.AvgPool2d(3),
                                          spatial=4),
    "conv3d-batchnorm3d": lambda: ((1, 4, 4, 4), nn.Sequential(
        nn.Conv3d(1, 2, 3, padding=1, stride=2), zoo.batchnorm(2, nn.BatchNorm3d), nn.Tanh(), nn.Flatten(),
        nn.Linear(16, 3)).eval()),
    "unflatten": lambda: ((12,), nn.Sequential(nn.Linear(12, 18), nn.Tanh(), nn.Unflatten(1, (2, 3, 3)),
                                               nn.Conv2d(2, 2, 2), nn.Tanh(), nn.Flatten(), nn.Linear(8, 3)).eval()),
}


@pytest.mark.parametrize("formulation", ["full", "reduced", "graybox"])
@pytest.mark.parametrize("name", sorted(NETS))
def test_ops_match_torch_in_every_formulation(name, formulation):
    torch.manual_seed(3)
    shape, net = NETS[name]()
    n = int(np.prod(shape))
    rng = np.random.default_rng(0)
    point, lam = rng.normal(size=n), rng.normal(size=3)
    value, jac, hess = zoo.torch_derivatives(net, point, lam, shape)
    x = ca.MX.sym("x", n)
    output = {"graybox_output": "expression"} if formulation == "graybox" else {}
    e = nncas.embed(net, x, formulation=formulation, input_shape=shape, x0=point, **output)
    if formulation == "full":  # the start values are the forward pass: every row holds there
        w0 = e.w0
        g = ca.Function("g", [x, e.w], [e.g, e.y])(point, w0)
        np.testing.assert_allclose(np.asarray(g[0]).ravel(), 0, atol=1e-12)
        np.testing.assert_allclose(np.asarray(g[1]).ravel(), value, rtol=1e-12, atol=1e-14)
        return
    multipliers = ca.MX.sym("lam", 3)
    functions = ca.Function("d", [x, multipliers], [e.y, ca.jacobian(e.y, x),
                                                     ca.hessian(ca.dot(multipliers, e.y), x)[0]])
    got = [np.asarray(a) for a in functions(point, lam)]
    np.testing.assert_allclose(got[0].ravel(), value, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(got[1], jac, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(got[2], hess, rtol=1e-10, atol=1e-12)


def test_a_convolution_keeps_its_structure():
    """Conv2d(1 -> 2, 3x3) on 8x8: 2 x 64 outputs, each from at most 9 inputs: the Jacobian holds
    the kernel entries per output position (<= 1152 nonzeros), not a dense 128 x 64 block."""
    net = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.Flatten())
    x = ca.MX.sym("x", 64)
    e = nncas.embed(net, x, formulation="reduced", input_shape=(1, 8, 8))
    nnz = ca.jacobian(e.y, x).nnz()
    assert nnz <= 2 * 64 * 9 and nnz == 2 * (36 * 9 + 24 * 6 + 4 * 4)
    assert e.network.n_params == 2 * 9 + 2


def test_a_cnn_reaches_one_optimum_in_every_formulation():
    torch.manual_seed(5)
    shape, net = NETS["avgpool2d-batchnorm2d"]()
    x_ref = np.random.default_rng(2).uniform(0.2, 0.8, 64)
    with torch.no_grad():
        y_ref = net.double()(torch.tensor(x_ref).reshape(1, *shape))[0].numpy()
    net.float()
    target = int(np.argmin(y_ref))
    threshold = y_ref[target] + 0.05
    objectives = zoo.optima_in_every_formulation(net, x_ref, target, threshold, input_shape=shape,
                                                 input_bounds=(0, 1))
    assert objectives[0] > 1e-4
    assert objectives == pytest.approx([objectives[0]] * 3, rel=1e-7)


def test_shape_errors_say_what_to_do():
    conv = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten(), nn.Linear(72, 2))
    with pytest.raises(nncas.InputError, match=r"pass input_shape=\(channels, \.\.\.\)"):
        nncas.embed(conv, ca.MX.sym("x", 64), formulation="reduced")
    no_flatten = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Linear(6, 2))
    with pytest.raises(nncas.InputError, match="Add nn.Flatn?ten"):
        nncas.embed(no_flatten, ca.MX.sym("x", 64), formulation="reduced", input_shape=(1, 8, 8))
    with pytest.raises(nncas.InputError, match="holds 81 entries, but x has 64 rows"):
        nncas.embed(conv, ca.MX.sym("x", 64), formulation="full", input_shape=(1, 9, 9))


def test_max_pooling_values_in_every_formulation():
    """MaxPool (2-D with padding, 1-D): the full space starts at the forward pass, the reduced
    space and the gray box evaluate to torch's value."""
    torch.manual_seed(4)
    net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Tanh(), nn.MaxPool2d(3, stride=2, padding=1), nn.Flatten(),
                        nn.Unflatten(1, (2, 9)), nn.MaxPool1d(2), nn.Flatten(), nn.Linear(8, 2)).eval()
    point = np.random.default_rng(1).normal(size=64)
    with torch.no_grad():
        expected = net.double()(torch.tensor(point).reshape(1, 1, 8, 8))[0].numpy()
    for formulation in ("full", "reduced", "graybox"):
        x = ca.MX.sym("x", 64)
        options = {"graybox_output": "expression"} if formulation == "graybox" else {}
        if formulation == "full":  # exact by complementarity: no warning
            e = nncas.embed(net, x, formulation=formulation, input_shape=(1, 8, 8), x0=point)
        else:
            with pytest.warns(UserWarning, match="MaxPool"):
                e = nncas.embed(net, x, formulation=formulation, input_shape=(1, 8, 8), x0=point, **options)
        if formulation == "full":
            rows, y = ca.Function("g", [x, e.w], [e.g, e.y])(point, e.w0)
            rows = np.asarray(rows).ravel()
            assert np.all(rows >= e.lbg - 1e-12) and np.all(rows <= e.ubg + 1e-12)
        else:
            y = ca.Function("y", [x], [e.y])(point)
        np.testing.assert_allclose(np.asarray(y).ravel(), expected, rtol=1e-12, atol=1e-14)


def test_max_pooling_full_space_solves_with_relaxed_complementarity():
    """Exact complementarity is hard for IPOPT (an MPCC); relaxed to 1e-4 it solves, and torch
    confirms the constraint at the solution to within the relaxation's effect."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.Tanh(), nn.MaxPool2d(2), nn.Flatten(),
                        nn.Linear(32, 3), nn.Softmax(dim=-1)).eval()
    x_ref = np.random.default_rng(0).uniform(0.2, 0.8, 64)
    with torch.no_grad():
        y_ref = net.double()(torch.tensor(x_ref).reshape(1, 1, 8, 8))[0].numpy()
    target = int(np.argmin(y_ref))
    threshold = y_ref[target] + 0.01
    x = ca.MX.sym("x", 64)
    e = nncas.embed(net, x, formulation="full", input_shape=(1, 8, 8), x0=x_ref, relaxation=1e-4,
                    input_bounds=(0, 1))
    nlp = {"x": ca.vertcat(x, e.w), "f": ca.sumsqr(x - x_ref), "g": ca.vertcat(e.g, e.y[target])}
    S = nncas.nlpsol("S", "ipopt", nlp, {"ipopt.print_level": 0, "print_time": False, "ipopt.sb": "yes"})
    result = S(x0=np.r_[x_ref, e.w0], lbx=np.r_[np.full(64, -np.inf), e.lbw], ubx=np.r_[np.full(64, np.inf), e.ubw],
               lbg=np.r_[e.lbg, threshold], ubg=np.r_[e.ubg, np.inf])
    assert S.stats()["success"], S.stats()["return_status"]
    x_opt = np.asarray(result["x"]).ravel()[:64]
    with torch.no_grad():
        y_opt = net.double()(torch.tensor(x_opt).reshape(1, 1, 8, 8))[0].numpy()
    assert y_opt[target] >= threshold - 1e-3 and float(result["f"]) > 1e-4


def test_max_pooling_graybox_takes_the_generic_path():
    net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(18, 2)).eval()
    with pytest.warns(UserWarning, match="MaxPool"):
        e = nncas.embed(net, ca.MX.sym("x", 64), formulation="graybox", input_shape=(1, 8, 8))
    assert e.oracle.method == "generic"


@pytest.mark.parametrize("name", sorted(NETS))
def test_interval_bounds_contain_sampled_values(name):
    """Every layer's interval bounds (convolutions, pooling, norms included) hold the values of
    inputs drawn in the box: the full space's variable bounds never cut off a feasible point."""
    torch.manual_seed(3)
    shape, net = NETS[name]()
    network = nncas.from_torch(net, input_shape=shape)
    n = network.n_in
    lo, hi = -np.ones(n), np.ones(n)
    values = np.random.default_rng(2).uniform(lo, hi, size=(300, n)).T
    for layer, (b_lo, b_hi) in zip(network.layers, network.interval(lo, hi)):
        values = layer.numpy(values)
        assert np.all(values >= b_lo[:, None] - 1e-9) and np.all(values <= b_hi[:, None] + 1e-9), type(layer).__name__


def test_max_pooling_and_graph_bounds_contain_sampled_values():
    from test_graph import ResidualCNN
    torch.manual_seed(3)
    pooled = nncas.from_torch(nn.Sequential(nn.Conv2d(1, 2, 3), nn.Tanh(), nn.MaxPool2d(2, padding=1),
                                            nn.Flatten()), input_shape=(1, 6, 6))
    values = np.random.default_rng(4).uniform(-1, 1, size=(200, 36)).T
    for layer, (b_lo, b_hi) in zip(pooled.layers, pooled.interval(-np.ones(36), np.ones(36))):
        values = layer.numpy(values)
        assert np.all(values >= b_lo[:, None] - 1e-9) and np.all(values <= b_hi[:, None] + 1e-9)
    graph = nncas.from_torch(ResidualCNN().eval(), input_shape=(2, 6, 6))
    bounds = graph.interval(-np.ones(72), np.ones(72))
    samples = np.random.default_rng(5).uniform(-1, 1, size=(200, 72)).T
    out_lo, out_hi = bounds[graph.nodes[-1].name]
    out = graph.numpy(samples)
    assert np.all(out >= out_lo[:, None] - 1e-9) and np.all(out <= out_hi[:, None] + 1e-9)
