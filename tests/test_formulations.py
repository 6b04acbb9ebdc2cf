"""Formulations as objects: the same embedding as their string shorthands, options refused where
they do not belong, chains and graphs alike in every formulation, a full-space rule of one's own."""
import casadi as ca
import numpy as np
import pytest
import torch
from torch import nn

import nncas
import zoo
from nncas.formulations import resolve
from nncas.torch_import import piecewise_linear

POINT = np.array([0.3, -0.2, 0.5, 0.1])


class Residual(nn.Module):
    """A module with its own forward: translated into a GraphNetwork."""

    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Linear(4, 4), nn.Linear(4, 2)

    def forward(self, x):
        return self.b(torch.tanh(self.a(x)) + x)


def _values(e, point=POINT):
    """(y, g) at ``point`` with the variables at their start values."""
    y, g = ca.Function("f", [e.inputs, e.w], [e.y, e.g])(point, e.w0)
    return np.asarray(y).ravel(), np.asarray(g).ravel()


def _torch(net, point=POINT):
    with torch.no_grad():
        return net.double()(torch.tensor(point)[None])[0].numpy()


@pytest.mark.parametrize("formulation, shorthand", [
    (nncas.FullSpace(config={"Tanh": "reduced"}, relaxation=1e-3), dict(formulation="full", config={"Tanh": "reduced"},
                                                                         relaxation=1e-3)),
    (nncas.ReducedSpace(), dict(formulation="reduced")),
    (nncas.GrayBox(output="variables", input="lifted", method="generic"),
     dict(formulation="graybox", graybox_output="variables", graybox_input="lifted", method="generic")),
])
def test_an_object_and_its_shorthand_give_the_same_embedding(formulation, shorthand):
    net = zoo.mlp([4, 1, 3, 2]).double()
    x = ca.MX.sym("x", 4)
    by_object = nncas.embed(net, x, formulation, x0=POINT, input_bounds=(-1, 1))
    by_string = nncas.embed(net, x, x0=POINT, input_bounds=(-1, 1), **shorthand)
    assert by_object.kind == by_string.kind == shorthand["formulation"]
    assert by_object.formulation is formulation and type(by_string.formulation) is type(formulation)
    assert (by_object.w.shape, by_object.g.shape) == (by_string.w.shape, by_string.g.shape)
    assert by_object.w.numel() > 0 or shorthand["formulation"] == "reduced"
    for a, b in zip(_values(by_object), _values(by_string)):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(_values(by_object)[0], _torch(net), rtol=1e-10)
    np.testing.assert_allclose(by_object.lbw, by_string.lbw)


@pytest.mark.parametrize("call, error, match", [
    (lambda: resolve(nncas.FullSpace(), relaxation=1e-3), nncas.InputError,
     r"relaxation given beside formulation=FullSpace\(.*give options on the object .*not both"),
    (lambda: resolve(nncas.GrayBox(), device="cpu"), nncas.InputError, "device given beside"),
    (lambda: resolve("reduced", relaxation=1e-3), nncas.InputError,
     "relaxation=0.001 applies to formulation='full' only"),
    (lambda: resolve("full", backend="l4casadi", graybox_output="variables"), nncas.InputError,
     "backend='l4casadi', graybox_output='variables' apply to formulation='graybox' only"),
    (lambda: resolve("graybox", config={"Tanh": "reduced"}), nncas.InputError,
     "config applies to formulation='full' only"),
    (lambda: resolve("full", dtype=torch.float32), nncas.InputTypeError,
     r"unexpected options \['dtype'\] for formulation='full'; the gray box's oracle takes dtype"),
    (lambda: resolve("graybox", bogus=1), nncas.InputTypeError, r"unexpected options \['bogus'\]"),
    (lambda: resolve("hybrid"), nncas.InputError, r"choose one of .*nncas.FullSpace\(\)"),
    (lambda: resolve(nncas.FullSpace), nncas.InputError, "choose one of"),
    (lambda: nncas.GrayBox(output="rows"), nncas.InputError, "graybox_output='rows'"),
    (lambda: nncas.GrayBox(input="both"), nncas.InputError, "graybox_input='both'"),
    (lambda: nncas.GrayBox(backend="jax"), nncas.InputError, "backend='jax'"),
    (lambda: nncas.FullSpace(relaxation=-1.0), nncas.InputError, "relaxation must be a finite number >= 0"),
    (lambda: nncas.FullSpace(config="Tanh"), nncas.InputTypeError, "config='Tanh'; give a dict"),
    (lambda: nncas.FullSpace(config={"Tanh": "bigM"}), nncas.InputError, r"config\[Tanh\] = 'bigM'; choose one of"),
    (lambda: nncas.FullSpace(rules={nn.Tanh: None}), nncas.InputTypeError, "FullSpaceRule"),
])
def test_options_are_refused_where_they_do_not_belong(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_keywords_at_their_default_pass_with_any_formulation():
    """Apps pass backend= and device= whatever the formulation (power.tscopf)."""
    assert isinstance(resolve("full", backend="torch", device="cpu", config=None, relaxation=0.0), nncas.FullSpace)
    assert isinstance(resolve("reduced", graybox_output="expression", config={}), nncas.ReducedSpace)


def test_complementarity_is_refused_for_a_layer_without_it():
    with pytest.raises(nncas.InputError, match=r"config\[Tanh\] = 'complementarity' applies to LeakyReLU, "
                                               "MaxPool, ReLU only"):
        nncas.embed(zoo.mlp([4, 3, 2]), ca.MX.sym("x", 4), nncas.FullSpace(config={"Tanh": "complementarity"}))


@pytest.mark.parametrize("formulation", [nncas.FullSpace(), nncas.ReducedSpace(), nncas.GrayBox()])
@pytest.mark.parametrize("make", [lambda: zoo.mlp([4, 5, 2]), Residual])
def test_chains_and_graphs_in_every_formulation(make, formulation):
    """A torch module, and (full and reduced space) its translation, a Network or a GraphNetwork."""
    torch.manual_seed(0)
    net = make().eval().double()
    network = nncas.from_torch(net, n_in=4)
    assert isinstance(network, nncas.GraphNetwork if make is Residual else nncas.Network)
    assert isinstance(network, nncas.network.BaseNetwork) and network.n_out == 2
    x = ca.MX.sym("x", 4, 2)
    points = np.stack([POINT, -POINT], axis=1)
    expected = np.stack([_torch(net, p) for p in points.T], axis=1)
    sources = [net] if isinstance(formulation, nncas.GrayBox) else [net, network]
    for source in sources:
        e = nncas.embed(source, x, formulation, x0=points, input_bounds=(-1, 1))
        y = ca.Function("f", [x, e.w], [e.y])(points, e.w0)
        np.testing.assert_allclose(np.asarray(y), expected, rtol=1e-10, atol=1e-12)
        assert e.n_in == 4 and e.n_out == 2 and e.formulation is formulation


def test_the_gray_box_needs_a_torch_module():
    network = nncas.from_torch(zoo.mlp([4, 3, 2]))
    with pytest.raises(nncas.InputTypeError, match="formulation='graybox' needs a torch.nn.Module, got Network"):
        nncas.embed(network, ca.MX.sym("x", 4), nncas.GrayBox())


class Abs(nncas.layers.Elementwise):
    r""":math:`|z|`, smooth nowhere at 0: a layer type nncas does not ship."""

    def apply(self, z, ops):
        return ops.where(z > 0, z, -z)

    def interval(self, lo, hi):
        a, b = np.abs(lo), np.abs(hi)
        return np.where((lo <= 0) & (0 <= hi), 0.0, np.minimum(a, b)), np.maximum(a, b)


class TorchAbs(nn.Module):
    def forward(self, x):
        return torch.abs(x)


def split(form, handle, layer, z, z0, a0, lower, upper, relaxation):
    r""":math:`z = p - n`, :math:`|z| = p + n`, :math:`p, n \ge 0`, :math:`p n \le \varepsilon`."""
    p = form.add_variable(layer.n_out, 1, np.maximum(z0, 0), 0.0, np.inf, handle)
    n = form.add_variable(layer.n_out, 1, np.maximum(-z0, 0), 0.0, np.inf, handle)
    form.add_constraint(z - (p - n), handle=handle)
    form.add_constraint(p * n, -np.inf, relaxation, handle)
    return p + n


def test_a_full_space_rule_of_ones_own_is_one_entry():
    torch.manual_seed(3)
    net = nn.Sequential(nn.Linear(4, 3), TorchAbs(), nn.Linear(3, 1)).double().eval()
    translations = {TorchAbs: lambda m: [Abs()]}
    x = ca.MX.sym("x", 4)
    space = nncas.FullSpace(rules={Abs: nncas.FullSpaceRule("split", split)}, relaxation=1e-6)
    e = nncas.embed(net, x, space, x0=POINT, translations=translations)
    plain = nncas.embed(net, x, "full", x0=POINT, translations=translations)
    assert e.n_variables == plain.n_variables + 3  # p and n instead of one variable for |z|
    handle = e.layers[1]
    assert isinstance(handle.layer, Abs) and len(handle.variables) == 2 and len(handle.constraints) == 2
    assert e.verification is not None  # checked against torch at x0 and in the box
    # config picks the generic form back; the rule stays with the object (no process-wide table)
    generic = nncas.embed(net, x, nncas.FullSpace(config={"Abs": "full"}, rules=space.rules), x0=POINT,
                          translations=translations)
    assert generic.n_variables == plain.n_variables
    assert Abs not in nncas.FullSpace().rules
    # and it solves: the smallest |W x + b| reaches through the split
    opti = ca.Opti()
    xv = opti.variable(4)
    opti.set_initial(xv, POINT)
    y, _ = nncas.add_predictor(opti, net, xv, space, translations=translations, input_bounds=(-1, 1))
    opti.minimize(y + 1e-3 * ca.sumsqr(xv))
    opti.solver("ipopt", {"ipopt.print_level": 0, "print_time": False, "ipopt.sb": "yes"})
    sol = opti.solve()
    assert sol.value(y) == pytest.approx(_torch(net, sol.value(xv))[0], abs=1e-5)


def test_piecewise_linear_is_a_trait_of_the_layers():
    assert [l.piecewise_linear for l in (nncas.layers.ReLU(), nncas.layers.LeakyReLU(), nncas.layers.Tanh())] == \
        [True, True, False]
    assert piecewise_linear(nn.ReLU()) and piecewise_linear(nn.MaxPool2d(2)) and not piecewise_linear(nn.Tanh())
    with pytest.warns(UserWarning, match="ReLU in a reduced formulation"):
        nncas.embed(zoo.mlp([4, 3, 2], activation=nn.ReLU), ca.MX.sym("x", 4), nncas.ReducedSpace())
    with pytest.warns(UserWarning, match="MaxPool1d in a graybox formulation"):
        nncas.embed(nn.Sequential(nn.Unflatten(1, (1, 4)), nn.MaxPool1d(2), nn.Flatten()), ca.MX.sym("x", 4),
                    nncas.GrayBox())
