"""Small seeded torch networks, one per supported module type, for the tests."""
import numpy as np
import torch
from torch import nn

from nncas import AffineScaling

N_IN = 4


def batchnorm(width, kind=nn.BatchNorm1d):
    """A batch norm in evaluation mode with drawn running statistics and affine parameters."""
    bn = kind(width)
    with torch.no_grad():
        bn.running_mean.uniform_(-0.5, 0.5)
        bn.running_var.uniform_(0.5, 2.0)
        bn.weight.uniform_(0.5, 1.5)
        bn.bias.uniform_(-0.3, 0.3)
    return bn.eval()


# name -> module placed between two Linear layers (or at the head)
MIDDLE = {
    "Tanh": nn.Tanh, "Sigmoid": nn.Sigmoid, "Softplus": lambda: nn.Softplus(beta=2.0),
    "SiLU": nn.SiLU, "GELU": nn.GELU, "GELU-tanh": lambda: nn.GELU(approximate="tanh"),
    "ELU": lambda: nn.ELU(alpha=0.7), "Identity": nn.Identity, "Dropout": lambda: nn.Dropout(0.3),
    "BatchNorm1d": lambda: batchnorm(6), "Nested": lambda: nn.Sequential(nn.Tanh(), nn.Sequential(nn.Sigmoid())),
}
HEADS = {"Softmax": lambda: nn.Softmax(dim=-1), "LogSoftmax": lambda: nn.LogSoftmax(dim=1)}
SMOOTH = sorted(MIDDLE) + sorted(HEADS) + ["AffineScaling", "Flatten"]


def network(kind: str, seed: int = 0) -> nn.Sequential:
    """Linear(4, 6) -> [kind] -> Linear(6, 3) (-> head), evaluation mode, float32 weights."""
    torch.manual_seed(seed)
    if kind in HEADS:
        net = nn.Sequential(nn.Linear(N_IN, 6), nn.Tanh(), nn.Linear(6, 3), HEADS[kind]())
    elif kind == "AffineScaling":
        net = nn.Sequential(AffineScaling(np.linspace(0.5, 2.0, N_IN), np.linspace(-1, 1, N_IN)),
                            nn.Linear(N_IN, 6), nn.Tanh(), nn.Linear(6, 3),
                            AffineScaling([2.0, 3.0, 4.0], [60.0, 0.0, -1.0]))
    elif kind == "Flatten":
        net = nn.Sequential(nn.Flatten(), nn.Linear(N_IN, 6), nn.SiLU(), nn.Linear(6, 3))
    else:
        net = nn.Sequential(nn.Linear(N_IN, 6), MIDDLE[kind](), nn.Linear(6, 3))
    return net.eval()


def mlp(widths, activation=nn.Tanh, head=None, seed=0) -> nn.Sequential:
    """A seeded MLP with the given layer widths (first = inputs, last = outputs)."""
    torch.manual_seed(seed)
    layers = []
    for i, (a, b) in enumerate(zip(widths[:-1], widths[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(widths) - 2:
            layers.append(activation())
    if head is not None:
        layers.append(head())
    return nn.Sequential(*layers).eval()


def torch_derivatives(net: nn.Module, x: np.ndarray, lam: np.ndarray, shape=None):
    """float64 value, Jacobian and Hessian of lam^T net(x) by torch.func; ``shape`` (without the
    batch axis) is how the vector x is laid out for the network (default: a vector)."""
    from torch.func import hessian, jacrev
    import copy

    model = copy.deepcopy(net).double().eval()
    layout = tuple(shape) if shape is not None else (-1,)
    f = lambda v: model(v.reshape(1, *layout))[0]
    xt, lt = torch.tensor(x, dtype=torch.float64), torch.tensor(lam, dtype=torch.float64)
    with torch.no_grad():
        value = f(xt)
    jac = jacrev(f)(xt)
    hess = hessian(lambda v: (lt * f(v)).sum())(xt)
    return value.numpy(), jac.detach().numpy(), hess.detach().numpy()


def optima_in_every_formulation(net, x_ref, target, threshold, **options):
    """min |x - x_ref|^2 s.t. net(x)[target] >= threshold in the full, reduced and gray-box
    formulations (nncas.solver, tol 1e-10); returns the three objectives."""
    import casadi as ca
    import nncas

    objectives = []
    for formulation in ("full", "reduced", "graybox"):
        opti = ca.Opti()
        x = opti.variable(len(x_ref))
        opti.set_initial(x, x_ref)
        y, _ = nncas.add_predictor(opti, net, x, formulation=formulation, **options)
        opti.subject_to(y[target] >= threshold)
        opti.minimize(ca.sumsqr(x - x_ref))
        nncas.solver(opti, "ipopt", {"ipopt.print_level": 0, "print_time": False, "ipopt.sb": "yes",
                                     "ipopt.tol": 1e-10})
        objectives.append(opti.solve().value(opti.f))
    return objectives
