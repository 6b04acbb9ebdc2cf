"""Quickstart: one trained network, three ways into the same NLP, solved side by side.

A small tanh classifier is trained on a synthetic two-moons-like task (seconds on a CPU),
then we look for the smallest change to an input that makes class 1 at least 60 % likely:

    min ||x - x_ref||^2   s.t.   NN(x)[1] >= 0.6,   -3 <= x <= 3.

Run:  python examples/quickstart.py   (or `make demo`)
"""
import time

import casadi as ca
import numpy as np
import torch
from torch import nn

import nncas
from nncas.apps.cli import ArgumentParser


def train_classifier(seed: int = 0) -> nn.Sequential:
    """A 2-16-16-2 tanh MLP with a softmax head, trained on two interleaved half circles."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    angle = rng.uniform(0, np.pi, 1000)
    label = rng.integers(0, 2, 1000)
    points = np.stack([np.cos(angle) + label, np.sin(angle) * (1 - 2 * label) + 0.5 * label], 1)
    points += 0.1 * rng.normal(size=points.shape)
    x, y = torch.tensor(points, dtype=torch.float32), torch.tensor(label)
    net = nn.Sequential(nn.Linear(2, 16), nn.Tanh(), nn.Linear(16, 16), nn.Tanh(), nn.Linear(16, 2))
    optimizer = torch.optim.Adam(net.parameters(), lr=0.02)
    for _ in range(300):
        optimizer.zero_grad()
        loss = nn.functional.cross_entropy(net(x), y)
        loss.backward()
        optimizer.step()
    return nn.Sequential(*net, nn.Softmax(dim=-1)).eval()


def solve(net, x_ref, formulation, **options):
    """Build and solve the problem; return the solution and its statistics."""
    opti = ca.Opti()
    x = opti.variable(2)
    opti.set_initial(x, x_ref)
    start = time.perf_counter()
    # input_bounds: the box -3 <= x <= 3 (and interval bounds on full-space intermediates)
    y, form = nncas.add_predictor(opti, net, x, formulation=formulation,
                                  input_bounds=(-3, 3), **options)
    opti.subject_to(y[1] >= 0.6)
    opti.minimize(ca.sumsqr(x - x_ref))
    nncas.solver(opti, "ipopt", {"ipopt.print_level": 0, "print_time": False})
    construction = time.perf_counter() - start
    sol = opti.solve()
    return sol.value(x), form, nncas.problem_stats(opti, sol), construction


def main(argv=None):
    ArgumentParser(prog="python examples/quickstart.py", description=__doc__.split("\n\n")[0]).parse_args(argv)
    net = train_classifier()
    x_ref = np.array([-0.5, 0.5])
    print(f"class probabilities at x_ref = {x_ref}: "
          f"{net(torch.tensor(x_ref, dtype=torch.float32)[None]).detach().numpy().round(3)}\n")
    rows = []
    for formulation, options in [("full", {}), ("reduced", {}), ("graybox", {"backend": "torch"}),
                                 ("graybox", {"backend": "l4casadi"})]:
        x_opt, form, stats, construction = solve(net, x_ref, formulation, **options)
        label = formulation + (f"/{options['backend']}" if options else "")
        p1 = net(torch.tensor(x_opt, dtype=torch.float32)[None])[0, 1].item()
        rows.append((label, stats.n_variables, stats.n_constraints, stats.iterations,
                     stats.objective, construction, stats.total_s, p1, stats.status))
        if formulation == "full":
            print(form, "\n")
    header = ("formulation", "vars", "cons", "iter", "objective", "build s", "solve s", "torch p1", "status")
    print("{:<18}{:>6}{:>6}{:>6}{:>16}{:>9}{:>9}{:>10}  {}".format(*header))
    for row in rows:
        print("{:<18}{:>6}{:>6}{:>6}{:>16.10f}{:>9.3f}{:>9.3f}{:>10.4f}  {}".format(*row))


if __name__ == "__main__":
    main()
