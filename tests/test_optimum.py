"""The three formulations reach the same optimum, and torch confirms the constraint there."""
import casadi as ca
import numpy as np
import pytest
import torch
from torch import nn

import nncas
import zoo

CASES = {
    "tanh-2": dict(widths=[5, 8, 3], activation=nn.Tanh),
    "sigmoid-3": dict(widths=[5, 10, 8, 3], activation=nn.Sigmoid),
    "softplus-3": dict(widths=[5, 8, 8, 2], activation=nn.Softplus),
    "tanh-softmax-4": dict(widths=[5, 12, 10, 8, 4], activation=nn.Tanh, head=lambda: nn.Softmax(dim=-1)),
    "silu-logsoftmax-3": dict(widths=[5, 10, 8, 4], activation=nn.SiLU, head=lambda: nn.LogSoftmax(dim=-1)),
}
OPTS = {"ipopt.print_level": 0, "print_time": False, "ipopt.tol": 1e-10}


def _problem(net, n_in, seed=0):
    """Reference point, target output index and a reachable threshold inside the box [-1, 1]."""
    rng = np.random.default_rng(seed)
    x_ref = rng.uniform(-0.5, 0.5, n_in)
    with torch.no_grad():
        f = lambda v: net(torch.tensor(np.atleast_2d(v), dtype=torch.float32)).double().numpy()
        y_ref, samples = f(x_ref)[0], f(rng.uniform(-1, 1, (400, n_in)))
    target = int(np.argmax(samples.max(0) - y_ref))
    threshold = y_ref[target] + 0.5 * (samples[:, target].max() - y_ref[target])
    return x_ref, target, threshold


def solve(net, formulation, x_ref, target, threshold, **kw):
    opti = ca.Opti()
    x = opti.variable(x_ref.size)
    opti.set_initial(x, x_ref)
    y, form = nncas.add_predictor(opti, net, x, formulation=formulation, input_bounds=(-1, 1), **kw)
    opti.subject_to(opti.bounded(-1, x, 1))
    opti.subject_to(y[target] >= threshold)
    opti.minimize(ca.sumsqr(x - x_ref))
    nncas.solver(opti, "ipopt", OPTS)
    sol = opti.solve()
    return sol.value(x), nncas.problem_stats(opti, sol)


@pytest.mark.parametrize("case", sorted(CASES))
def test_formulations_reach_the_same_optimum(case):
    net = zoo.mlp(**CASES[case])
    x_ref, target, threshold = _problem(net, CASES[case]["widths"][0])
    results = {name: solve(net, name, x_ref, target, threshold) for name in ("full", "reduced", "graybox")}
    reference = results["reduced"][1].objective
    assert reference > 1e-6, "the constraint must be active for a meaningful comparison"
    for name, (x_opt, stats) in results.items():
        assert stats.success, f"{name}: {stats.status}"
        assert stats.objective == pytest.approx(reference, rel=1e-6), name
        with torch.no_grad():
            y = net.double()(torch.tensor(x_opt[None]))[0, target].item()
        net.float()
        assert y >= threshold - 1e-6, f"{name}: torch gives {y} < {threshold}"


@pytest.mark.parametrize("case", ["tanh-2", "tanh-softmax-4"])
def test_l4casadi_graybox_reaches_the_optimum_within_float32(case):
    net = zoo.mlp(**CASES[case])
    x_ref, target, threshold = _problem(net, CASES[case]["widths"][0])
    _, exact = solve(net, "reduced", x_ref, target, threshold)
    x_opt, stats = solve(net, "graybox", x_ref, target, threshold, backend="l4casadi")
    assert stats.status in ("Solve_Succeeded", "Solved_To_Acceptable_Level")
    assert stats.objective == pytest.approx(exact.objective, rel=1e-4)


def test_relu_full_space_complementarity_matches_reduced():
    """ReLU: the complementarity full space finds the same optimum as the algebraic form."""
    net = zoo.mlp([3, 6, 2], activation=nn.ReLU, seed=3)
    x_ref, target, threshold = _problem(net, 3, seed=3)
    _, full = solve(net, "full", x_ref, target, threshold, relaxation=1e-9)
    with pytest.warns(UserWarning, match="second derivatives vanish"):
        _, reduced = solve(net, "reduced", x_ref, target, threshold)
    assert full.objective == pytest.approx(reduced.objective, rel=1e-5, abs=1e-8)
