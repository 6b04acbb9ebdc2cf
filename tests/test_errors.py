"""Bad input gets a clear error that names what is wrong and what to do."""
import casadi as ca
import numpy as np
import pytest
import torch
from torch import nn

import nncas


def _opti(n=4):
    opti = ca.Opti()
    return opti, opti.variable(n)


def test_unsupported_layer_names_it_and_says_how_to_register():
    net = nn.Sequential(nn.Linear(4, 3), nn.Hardswish())
    opti, x = _opti()
    with pytest.raises(nncas.UnsupportedLayerError) as info:
        nncas.add_predictor(opti, net, x, formulation="reduced")
    message = str(info.value)
    assert "Hardswish" in message and "register_translation" in message and "graybox" in message


def test_translation_passed_per_call_is_used_and_stays_local():
    class Double(nn.Module):
        def forward(self, x):
            return 2 * x

    rule = {Double: lambda m: [nncas.layers.Scale(np.full(3, 2.0), np.zeros(3))]}
    net = nn.Sequential(nn.Linear(4, 3), Double())
    network = nncas.from_torch(net, translations=rule)
    x = np.arange(4.0)
    expected = net.double()(torch.tensor(x[None]))[0].detach().numpy()
    np.testing.assert_allclose(network.numpy(x), expected, rtol=1e-12)
    e = nncas.embed(net, ca.MX.sym("x", 4), formulation="reduced", translations=rule)
    np.testing.assert_allclose(ca.Function("f", [e.inputs], [e.y])(x).full().ravel(), expected, rtol=1e-12)
    with pytest.raises(nncas.UnsupportedLayerError, match="Double"):
        nncas.from_torch(net)


def test_a_gray_box_uses_per_call_translations_for_its_structured_derivatives():
    class Double(nn.Module):
        def forward(self, x):
            return 2 * x

    rule = {Double: lambda m: [nncas.layers.Scale(np.full(3, 2.0), np.zeros(3))]}
    net = nn.Sequential(nn.Linear(4, 3), nn.Tanh(), Double(), nn.Linear(3, 2))
    e = nncas.embed(net, ca.MX.sym("x", 4), formulation="graybox", graybox_input="direct", translations=rule)
    assert e.oracle.method == "structured"


@pytest.mark.parametrize("formulation", ["full", "reduced", "graybox"])
def test_wrong_input_size(formulation):
    opti, x = _opti(5)
    with pytest.raises(ValueError, match="5"):
        nncas.add_predictor(opti, nn.Sequential(nn.Linear(4, 2)), x, formulation=formulation)


@pytest.mark.parametrize("formulation", ["reduced", "graybox"])
def test_row_input_gets_a_hint(formulation):
    opti = ca.Opti()
    x = opti.variable(1, 4)
    with pytest.raises(ValueError, match="pass x.T"):
        nncas.add_predictor(opti, nn.Sequential(nn.Linear(4, 2)), x, formulation=formulation)


def test_dtype_must_be_a_torch_dtype():
    opti, x = _opti()
    with pytest.raises(TypeError, match="torch.float64"):
        nncas.add_predictor(opti, nn.Sequential(nn.Linear(4, 2)), x, formulation="graybox", dtype="float64")


@pytest.mark.parametrize("bounds, match", [
    (([0, 0], [1, 1, 1, 1]), "lower bound has 2 entries; the network has 4 inputs"),
    ((0, 1, 2), "a pair"),
    ((1, 0), "exceed"),
])
def test_input_bounds_are_checked(bounds, match):
    opti, x = _opti()
    with pytest.raises(ValueError, match=match):
        nncas.add_predictor(opti, nn.Sequential(nn.Linear(4, 2), nn.Tanh()), x, input_bounds=bounds)


@pytest.mark.parametrize("formulation", ["full", "reduced", "graybox"])
def test_non_finite_weights(formulation):
    net = nn.Sequential(nn.Linear(4, 2))
    with torch.no_grad():
        net[0].weight[0, 0] = float("nan")
    opti, x = _opti()
    with pytest.raises(nncas.InputError, match="NaN or Inf"):
        nncas.add_predictor(opti, net, x, formulation=formulation)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error raised without CUDA")
@pytest.mark.parametrize("backend", ["torch", "l4casadi"])
def test_cuda_requested_but_absent(backend):
    opti, x = _opti()
    with pytest.raises(RuntimeError, match="torch.cuda.is_available"):
        nncas.add_predictor(opti, nn.Sequential(nn.Linear(4, 2)), x, formulation="graybox",
                            backend=backend, device="cuda")


@pytest.mark.parametrize("kwargs, match", [
    (dict(formulation="hybrid"), "formulation"),
    (dict(formulation="graybox", backend="jax"), "backend"),
    (dict(formulation="graybox", method="magic"), "method"),
    (dict(formulation="full", config={"Tanh": "bigM"}), "choose one of"),
    (dict(formulation="full", config={"Tnah": "reduced"}), "config names Tnah, which is no layer"),
    (dict(formulation="reduced", config={"Tanh": "reduced"}), "config applies to formulation='full' only"),
    (dict(formulation="full", relaxation=-1e-3), "relaxation must be a finite number >= 0"),
    (dict(formulation="full", relaxation=float("nan")), "relaxation must be a finite number >= 0"),
    (dict(formulation="full", input_bounds=(float("nan"), 1)), "input_bounds hold NaN"),
])
def test_bad_options(kwargs, match):
    opti, x = _opti()
    with pytest.raises(nncas.InputError, match=match):
        nncas.add_predictor(opti, nn.Sequential(nn.Linear(4, 2), nn.Tanh()), x, **kwargs)


def test_not_an_opti():
    with pytest.raises(TypeError, match="casadi.Opti"):
        nncas.add_predictor(None, nn.Linear(4, 2), ca.MX.sym("x", 4))


def test_config_by_torch_class_is_honoured():
    """A torch class key stands for its name: Tanh kept as an expression, no variables for it."""
    net = nn.Sequential(nn.Linear(4, 3), nn.Tanh(), nn.Linear(3, 2))
    x = ca.MX.sym("x", 4)
    assert nncas.embed(net, x, config={nn.Tanh: "reduced"}).n_variables == 3 + 2
    assert nncas.embed(net, x).n_variables == 3 + 3 + 2


def test_softmax_over_the_batch_is_refused_in_a_graybox():
    opti, x = _opti()
    with pytest.raises(nncas.InputError, match="normalizes across the batch"):
        nncas.add_predictor(opti, nn.Sequential(nn.Linear(4, 2), nn.Softmax(dim=0)), x, formulation="graybox")


def test_non_finite_start_values_are_refused():
    with pytest.raises(nncas.InputError, match="start point of x holds NaN"):
        nncas.embed(nn.Sequential(nn.Linear(4, 2), nn.Tanh()), ca.MX.sym("x", 4), x0=[0, float("nan"), 0, 0])


def test_the_exception_hierarchy():
    assert issubclass(nncas.InputError, (nncas.NncasError, ValueError))
    assert issubclass(nncas.UnsupportedLayerError, TypeError) and issubclass(nncas.DeviceError, RuntimeError)


@pytest.mark.parametrize("net, kwargs, error, match", [
    (nn.Sequential(nn.Linear(4, 3), nn.Dropout(0.5), nn.Linear(3, 2)), {}, nncas.InputError, r"call net.eval\(\)"),
    (nn.LSTM(4, 3), dict(formulation="graybox"), nncas.InputTypeError, "returns a tuple"),
    (nn.Sequential(nn.Linear(4, 2)), dict(formulation="graybox", bogus=1), nncas.InputTypeError,
     r"unexpected options \['bogus'\]"),
    (nn.Sequential(nn.Linear(4, 2)), dict(formulation="full", device="cuda"), nncas.InputError,
     "device='cuda' applies to formulation='graybox' only"),
    (nn.Sequential(nn.Linear(4, 0)), {}, nncas.InputError, "no outputs"),
    (nn.Sequential(nn.Linear(4, 2)), dict(x0="ab"), nncas.InputError, "x0 must be numbers"),
])
def test_networks_and_options_refused_with_the_fix(net, kwargs, error, match):
    with pytest.raises(error, match=match):
        nncas.embed(net, ca.MX.sym("x", 4), **kwargs)


@pytest.mark.parametrize("call, match", [
    (lambda: nncas.solver(ca.Opti(), "banana"), "not an NLP solver"),
    (lambda: nncas.solver(ca.Opti()), "no variables, objective or constraints"),
    (lambda: nncas.solver(None), "needs a casadi.Opti"),
    (lambda: nncas.nlpsol("S", "ipopt", {"f": ca.MX.sym("y")}), "at least 'x'"),
    (lambda: nncas.nlpsol("S", "ipopt", {"x": ca.SX.sym("x"), "f": ca.MX.sym("y")}), "one symbolic type"),
    (lambda: nncas.problem_stats(ca.Opti()), "not been solved yet"),
    (lambda: nncas.problem_stats("S", {}), "takes an Opti or a solver Function"),
])
def test_solver_helpers_name_the_bad_argument(call, match):
    with pytest.raises(nncas.InputError, match=match):
        call()


def test_the_l4casadi_backend_without_l4casadi_says_how_to_install_it():
    """l4casadi is an optional extra: without it (an import that fails, as in a venv that lacks
    it), the gray box names the extra instead of a bare ModuleNotFoundError."""
    import subprocess
    import sys
    code = ("import sys; sys.modules['l4casadi'] = None\n"
            "import casadi as ca, torch, nncas\n"
            "net = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.Tanh(), torch.nn.Linear(3, 1))\n"
            "try:\n    nncas.embed(net, ca.MX.sym('x', 2), formulation='graybox', backend='l4casadi')\n"
            "except nncas.InputError as err:\n    print(err)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert "pip install 'nncas[l4casadi]'" in out.stdout, out.stderr


class _DictInput(nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(3, 2)

    def forward(self, inputs):
        return self.linear(inputs["x"])


class _DictOutput(_DictInput):
    def forward(self, x):
        return {"y": self.linear(x)}


@pytest.mark.parametrize("formulation", ["full", "reduced", "graybox"])
@pytest.mark.parametrize("model, match", [
    (_DictInput, r"reads the entry 'x' of a dict.*wrap the model|forward that takes a dict.*wrapper"),
    (_DictOutput, r"returns a dict, not one tensor.*wrap the model|returns a dict.*wrap the model"),
])
def test_dict_inputs_and_outputs_are_refused_with_the_wrapper_as_the_fix(formulation, model, match):
    """No formulation takes containers: the error says so instead of sending the user to the gray box."""
    with pytest.raises(nncas.NncasError, match=match) as caught:
        nncas.embed(model().double(), ca.MX.sym("x", 3), formulation=formulation, x0=np.zeros(3))
    assert "formulation='graybox'" not in str(caught.value)
