"""Networks beyond chains (torch.fx): residual sums, scalings, concatenations and functional
activations in every formulation, against torch; one optimum across formulations; the errors."""
import casadi as ca
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import nncas
import zoo


class ResidualMLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.b, self.c = nn.Linear(4, 4), nn.Linear(4, 4), nn.Linear(8, 3)

    def forward(self, x):
        h = torch.tanh(self.a(x)) + x
        g = F.silu(self.b(h)) * 0.5 - h
        return F.softmax(self.c(torch.cat([h, g], dim=1)), dim=-1)


class ResidualCNN(nn.Module):
    """A convolution with a skip connection around it, on a 2 x 6 x 6 input."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(2, 2, 3, padding=1)
        self.pool = nn.AvgPool2d(2)
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(18, 3))

    def forward(self, x):
        y = torch.sigmoid(self.conv(x)) - 1.0
        return self.head(self.pool(x + 2 * y))


class ReshapingCNN(nn.Module):
    """Flattening the way people write it: view with the batch size, reshape with the shape."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(2, 2, 3)
        self.head = nn.Linear(32, 3)

    def forward(self, x):
        h = torch.tanh(self.conv(x))
        return self.head(h.view(h.size(0), -1) + self.conv(x).reshape(x.shape[0], -1) * 0.5)


class SlicingNet(nn.Module):
    """Basic indexing and reshapes that keep the batch: a column split into a signal and an
    image, strided and integer picks, an Ellipsis slice."""

    def __init__(self):
        super().__init__()
        self.conv1d = nn.Conv1d(2, 3, 3, padding=1)
        self.conv2d = nn.Conv2d(1, 2, 3, padding=1)
        self.head = nn.Linear(3 * 8 // 2 + 2 * 4 * 4 // 4 + 1, 3)

    def forward(self, x):
        signal = torch.tanh(self.conv1d(x[:, :16].view(x.size(0), 2, 8)))[:, :, ::2]
        image = torch.sigmoid(self.conv2d(x[:, 16:32].reshape(-1, 1, 4, 4)))[..., 1:3, 1:3]
        picked = x[:, 5] * 2.0
        return self.head(torch.cat([signal.flatten(1), image.flatten(1), picked.view(-1, 1)], dim=1))


class Unsupported(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Linear(4, 4)

    def forward(self, x):
        return self.a(x) * x


NETS = {"residual-mlp": (ResidualMLP, (4,)), "residual-cnn": (ResidualCNN, (2, 6, 6)),
        "reshaping-cnn": (ReshapingCNN, (2, 6, 6)), "slicing": (SlicingNet, (32,))}


@pytest.mark.parametrize("formulation", ["full", "reduced", "graybox"])
@pytest.mark.parametrize("name", sorted(NETS))
def test_graphs_match_torch_in_every_formulation(name, formulation):
    torch.manual_seed(1)
    kind, shape = NETS[name]
    net = kind().eval()
    n = int(np.prod(shape))
    rng = np.random.default_rng(3)
    point, lam = rng.normal(size=n), rng.normal(size=3)
    value, jac, hess = zoo.torch_derivatives(net, point, lam, shape)
    x = ca.MX.sym("x", n)
    e = nncas.embed(net, x, formulation=formulation, x0=point, input_bounds=(-4, 4),
                    input_shape=None if len(shape) == 1 else shape)
    if formulation == "full":  # start values are the forward pass, inside their interval bounds
        rows, y = ca.Function("g", [x, e.w], [e.g, e.y])(point, e.w0)
        np.testing.assert_allclose(np.asarray(rows).ravel()[:-n], 0, atol=1e-12)
        np.testing.assert_allclose(np.asarray(y).ravel(), value, rtol=1e-12, atol=1e-14)
        assert np.all(e.lbw <= e.w0) and np.all(e.w0 <= e.ubw)
        return
    multipliers = ca.MX.sym("lam", 3)
    got = ca.Function("d", [x, multipliers], [e.y, ca.jacobian(e.y, x),
                                               ca.hessian(ca.dot(multipliers, e.y), x)[0]])(point, lam)
    for a, b in zip(got, (value, jac, hess)):
        np.testing.assert_allclose(np.asarray(a).reshape(b.shape), b, rtol=1e-10, atol=1e-12)


def test_a_residual_network_reaches_one_optimum_in_every_formulation():
    torch.manual_seed(2)
    net = ResidualMLP().eval()
    x_ref = np.array([0.1, -0.2, 0.3, 0.0])
    with torch.no_grad():
        y_ref = net.double()(torch.tensor(x_ref)[None])[0].numpy()
    target = int(np.argmin(y_ref))
    objectives = zoo.optima_in_every_formulation(net, x_ref, target, y_ref[target] + 0.05, input_bounds=(-2, 2))
    assert objectives[0] > 1e-4
    assert objectives == pytest.approx([objectives[0]] * 3, rel=1e-7)


class BatchIndexing(nn.Module):
    def forward(self, x):
        return x[0:1] * 2.0


class ListIndexing(nn.Module):
    def forward(self, x):
        return x[:, [1, 0, 2]]


@pytest.mark.parametrize("kind,match", [(BatchIndexing, "indexes the batch axis"),
                                        (ListIndexing, "indexes with lists")])
def test_indexing_that_nncas_cannot_embed_is_refused(kind, match):
    with pytest.raises(nncas.UnsupportedLayerError, match=match):
        nncas.embed(kind().eval(), ca.MX.sym("x", 4), formulation="reduced")


def test_an_unsupported_operation_names_the_node_and_suggests_the_graybox():
    net = Unsupported().eval()
    with pytest.raises(nncas.UnsupportedLayerError, match=r"node mul .*multiplies two tensors.*graybox"):
        nncas.embed(net, ca.MX.sym("x", 4), formulation="reduced")
    e = nncas.embed(net, ca.MX.sym("x", 4), formulation="graybox")
    assert e.oracle.method == "generic"
