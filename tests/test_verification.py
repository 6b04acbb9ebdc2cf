"""Every embedding is exact or refused: checked against the torch module as the user calls it."""
import casadi as ca
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import nncas
import zoo

FORMULATIONS = ("full", "reduced", "graybox")
X0 = np.array([0.3, -0.2, 0.5])


def embedded_value(net, formulation, x0=X0, **options):
    """y of the embedding at x0 (with its start values), as the nlp dict user sees it."""
    x = ca.MX.sym("x", len(x0))
    e = nncas.embed(net, x, formulation=formulation, x0=x0, **options)
    return np.asarray(ca.Function("y", [x, e.w], [e.y])(x0, e.w0)).ravel(), e


def torch_value(net, x0=X0):
    with torch.no_grad():
        return net(torch.as_tensor(x0, dtype=torch.float64)[None]).numpy().ravel()


class Scaled(nn.Sequential):
    """A Sequential whose own forward scales the chain's output."""

    def forward(self, x):
        return 0.1 * super().forward(x)


class InPlaceModule(nn.Module):
    def __init__(self):
        super().__init__()
        self.linear, self.relu = nn.Linear(3, 4), nn.ReLU(inplace=True)

    def forward(self, x):
        h = self.linear(x)
        return h + self.relu(h)


class InPlaceFunction(nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(3, 4)

    def forward(self, x):
        h = self.linear(x)
        return h + F.relu(h, inplace=True)


class InPlaceAdd(nn.Module):
    """``h += 1`` rebinds nothing in torch (y sees it) but traces as an out-of-place add."""

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(3, 4)

    def forward(self, x):
        h = self.linear(x)
        y = h
        h += 1.0
        return torch.tanh(y) + h


class NaNConstant(nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(3, 2)

    def forward(self, x):
        return self.linear(x) + float("nan")


@pytest.mark.parametrize("formulation", FORMULATIONS)
def test_sequential_subclass_with_its_own_forward_is_embedded_as_its_forward(formulation):
    net = Scaled(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2)).double()
    value, e = embedded_value(net, formulation)
    np.testing.assert_allclose(value, torch_value(net), atol=1e-12)
    assert e.verification is not None and e.verification.value_error < 1e-12


def test_sequential_subclass_is_not_lifted_past_its_forward():
    torch.manual_seed(1)
    net = Scaled(nn.Linear(20, 4), nn.Tanh(), nn.Linear(4, 2)).double()
    x0 = np.linspace(-1, 1, 20)
    value, e = embedded_value(net, "graybox", x0=x0)
    np.testing.assert_allclose(value, torch_value(net, x0), atol=1e-12)
    assert e.n_variables == 0  # the chain is not split: its forward runs whole
    with pytest.raises(nncas.InputError, match="forward of its own"):
        embedded_value(net, "graybox", x0=x0, graybox_input="lifted")


@pytest.mark.parametrize("model", [InPlaceModule, InPlaceFunction, InPlaceAdd])
@pytest.mark.parametrize("formulation", ["full", "reduced"])
def test_in_place_operations_are_refused_by_the_translation(model, formulation):
    with pytest.raises(nncas.InputError, match="in place|does not reproduce"):
        embedded_value(model().double(), formulation)


@pytest.mark.parametrize("model", [InPlaceModule, InPlaceFunction, InPlaceAdd])
def test_in_place_operations_run_as_written_in_the_gray_box(model):
    net = model().double()
    value, _ = embedded_value(net, "graybox")
    np.testing.assert_allclose(value, torch_value(net), atol=1e-12)


def hooked_network():
    net = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2)).double()
    net[1].register_forward_hook(lambda module, inputs, output: 2 * output)
    return net


@pytest.mark.parametrize("formulation", ["full", "reduced"])
def test_hooks_are_refused_by_the_translation(formulation):
    with pytest.raises(nncas.UnsupportedLayerError, match="hooks"):
        embedded_value(hooked_network(), formulation)


def test_hooks_run_in_the_gray_box():
    net = hooked_network()
    value, e = embedded_value(net, "graybox")
    np.testing.assert_allclose(value, torch_value(net), atol=1e-12)


class BatchSoftmax(nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(3, 4)

    def forward(self, x):
        return F.softmax(self.linear(x), dim=0)


class BatchCentred(nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(3, 4)

    def forward(self, x):
        h = self.linear(x)
        return h - h.mean(0, keepdim=True)


@pytest.mark.parametrize("model", [BatchSoftmax, BatchCentred])
def test_a_gray_box_over_columns_refuses_a_model_that_mixes_samples(model):
    with pytest.raises(nncas.VerificationError, match="mixes the samples"):
        nncas.embed(model().double(), ca.MX.sym("x", 3, 3), formulation="graybox")


def test_one_column_of_a_sample_mixing_model_is_its_own_batch():
    net = BatchCentred().double()
    value, _ = embedded_value(net, "graybox")
    np.testing.assert_allclose(value, torch_value(net), atol=1e-12)


def test_a_wrong_translation_rule_is_caught():
    net = nn.Sequential(nncas.AffineScaling([1.0, 2.0, 3.0], [0.0, 0.5, -0.5]), nn.Linear(3, 2)).double()
    wrong = {nncas.AffineScaling: lambda m: [nncas.layers.Scale(m.scale.numpy(), -m.offset.numpy())]}
    with pytest.raises(nncas.VerificationError, match="outputs differ"):
        embedded_value(net, "reduced", translations=wrong)
    embedded_value(net, "reduced", translations=wrong, verify=False)  # the user's call


def test_a_nan_constant_in_forward_is_refused():
    with pytest.raises(nncas.VerificationError, match="NaN or Inf"):
        embedded_value(NaNConstant().double(), "reduced")


def test_a_module_autograd_cannot_differentiate_is_refused_in_the_gray_box():
    class ThroughNumpy(nn.Module):
        def forward(self, x):
            return torch.as_tensor(np.tanh(x.detach().numpy()))

    with pytest.raises(nncas.VerificationError, match="fails when evaluated|derivatives"):
        embedded_value(ThroughNumpy(), "graybox")


@pytest.mark.parametrize("formulation", FORMULATIONS)
def test_verification_reports_what_it_checked(formulation):
    net = zoo.mlp([3, 5, 2]).double()
    _, e = embedded_value(net, formulation, input_bounds=(-1, 1))
    v = e.verification
    assert v.points == 4 and v.value_error <= v.tolerance and v.jacobian_error <= v.tolerance
    assert "checked against torch" in str(e)


def test_relu_complementarity_is_checked_at_x0_and_through_its_network_elsewhere():
    net = zoo.mlp([3, 6, 2], activation=nn.ReLU).double()
    _, e = embedded_value(net, "full", input_bounds=(-1, 1))
    assert e.verification.jacobian_error is None and e.verification.points == 4


def test_float32_models_are_checked_at_float32_precision():
    net = zoo.mlp([3, 6, 2]).float()
    _, e = embedded_value(net, "reduced")
    assert 1e-4 < e.verification.tolerance < 1e-2


@pytest.mark.parametrize("formulation", FORMULATIONS)
def test_expressions_of_opti_variables_and_parameters_are_checked(formulation):
    net = zoo.mlp([3, 5, 2]).double()
    opti = ca.Opti()
    x, p = opti.variable(3), opti.parameter(3)
    opti.set_value(p, [0.1, 0.2, 0.3])
    opti.set_initial(x, X0)
    _, e = nncas.add_predictor(opti, net, 2 * x + p, formulation=formulation)
    assert e.verification.value_error < 1e-12


@pytest.mark.parametrize("formulation", ["full", "reduced"])
def test_sx_expressions_are_checked_through_a_twin(formulation):
    xs = ca.SX.sym("x", 3)
    e = nncas.embed(zoo.mlp([3, 5, 2]).double(), 2 * xs, formulation=formulation, x0=X0)
    assert e.verification.value_error < 1e-12


def test_verify_must_be_a_bool():
    with pytest.raises(nncas.InputTypeError, match="verify="):
        embedded_value(zoo.mlp([3, 5, 2]).double(), "reduced", verify="yes")


def test_a_graph_network_from_from_torch_embeds():
    class Residual(nn.Module):
        def __init__(self):
            super().__init__()
            self.linear = nn.Linear(3, 3)

        def forward(self, x):
            return x + torch.tanh(self.linear(x))

    net = Residual().double()
    graph = nncas.from_torch(net, n_in=3)
    for formulation in ("full", "reduced"):
        value, _ = embedded_value(graph, formulation)
        np.testing.assert_allclose(value, torch_value(net), atol=1e-12)


@pytest.mark.parametrize("options, match", [
    ({"x0": np.zeros((1, 3))}, r"x0 has shape \(1, 3\)"),
    ({"x0": np.zeros((3, 2))}, r"x0 has shape \(3, 2\)"),
    ({"input_bounds": (np.inf, np.inf)}, "lower bound of \\+inf"),
    ({"input_bounds": ("a", "b")}, "give numbers"),
    ({"input_shape": (1.5, 2)}, "whole numbers"),
    ({"graybox_output": "variables"}, "graybox_output='variables' applies to formulation='graybox' only"),
])
def test_bad_embed_arguments_name_themselves(options, match):
    x = ca.MX.sym("x", 3)
    with pytest.raises(nncas.InputError, match=match):
        nncas.embed(zoo.mlp([3, 5, 2]).double(), x, formulation="reduced", **{"x0": X0, **options})


def test_relaxation_takes_numpy_numbers():
    e = nncas.embed(zoo.mlp([3, 5, 2], activation=nn.ReLU), ca.MX.sym("x", 3), formulation="full",
                    relaxation=np.float32(1e-3), x0=X0)
    assert e.verification is not None


def test_lifting_a_bare_linear_says_why_not():
    with pytest.raises(nncas.InputError, match="bare nn.Linear leaves nothing"):
        nncas.embed(nn.Linear(3, 2).double(), ca.MX.sym("x", 3), formulation="graybox", graybox_input="lifted")


@pytest.mark.gpu
@pytest.mark.parametrize("formulation", FORMULATIONS)
def test_a_cuda_cnn_is_translated_and_checked_on_its_device(formulation):
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Tanh(), nn.Flatten(), nn.Linear(2 * 4 * 4, 3)).double().cuda()
    x0 = np.linspace(0, 1, 36)
    value, e = embedded_value(net, formulation, x0=x0, input_shape=(1, 6, 6))
    with torch.no_grad():
        truth = net(torch.as_tensor(x0, device="cuda").reshape(1, 1, 6, 6)).cpu().numpy().ravel()
    np.testing.assert_allclose(value, truth, atol=1e-10)


@pytest.mark.parametrize("where, lifted", [("root", False), ("first", False), ("later", True)])
def test_hooks_on_the_chain_or_its_first_layer_keep_the_gray_box_whole(where, lifted):
    net = nn.Sequential(nn.Linear(20, 4), nn.Tanh(), nn.Linear(4, 2)).double()
    {"root": net, "first": net[0], "later": net[2]}[where].register_forward_hook(lambda m, i, o: 2 * o)
    x0 = np.linspace(-1, 1, 20)
    value, e = embedded_value(net, "graybox", x0=x0)
    assert (e.n_variables > 0) == lifted
    np.testing.assert_allclose(value, torch_value(net, x0), atol=1e-12)
