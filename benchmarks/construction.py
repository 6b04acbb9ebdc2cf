"""Problem construction time for the 784-input MNIST problem (paper eq. 7) in every formulation.

Construction = add_predictor + building the solver (derivative functions included) + a
zero-iteration IPOPT run, i.e. everything before IPOPT's first iteration. Target (issue 2): under 2 s in every formulation.
With ``--naive N`` it also times CasADi's default Hessian path (plain ``opti.solver``) on an
N-input reduced-space problem, to show what the assembled Hessian avoids.

    python -m benchmarks.construction [--width 128] [--naive 200]
"""
import argparse
import time

import casadi as ca
import numpy as np
import torch
from torch import nn

import nncas

CELLS = [("full", {}), ("reduced", {}), ("graybox", {"backend": "torch"}),
         ("graybox", {"backend": "l4casadi"})]


def mnist_architecture(width: int, n_in: int = 784) -> nn.Sequential:
    """Paper Table 1: Linear(784, h), 4 x [tanh, Linear(h, h)], tanh, Linear(h, 10), softmax."""
    torch.manual_seed(0)
    layers = [nn.Linear(n_in, width)]
    for _ in range(4):
        layers += [nn.Tanh(), nn.Linear(width, width)]
    layers += [nn.Tanh(), nn.Linear(width, 10), nn.Softmax(dim=-1)]
    return nn.Sequential(*layers).eval()


def build(net, n_in, formulation, options, helper=True):
    x_ref = np.linspace(0, 1, n_in)
    start = time.perf_counter()
    opti = ca.Opti()
    x = opti.variable(n_in)
    opti.set_initial(x, x_ref)
    y, _ = nncas.add_predictor(opti, net, x, formulation=formulation, input_bounds=(0, 1), **options)
    opti.subject_to(y[3] >= 0.6)
    opti.subject_to(opti.bounded(0, x, 1))
    opti.minimize(ca.sumsqr(x - x_ref))
    options = {"ipopt.print_level": 0, "print_time": False, "ipopt.max_iter": 0}
    if helper:
        nncas.solver(opti, "ipopt", options)
    else:
        opti.solver("ipopt", options)
    opti.solve_limited()  # the NLP functions are created here; zero iterations
    return time.perf_counter() - start


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--width", type=int, default=128)
    parser.add_argument("--naive", type=int, default=0, metavar="N",
                        help="also time CasADi's default Hessian path at N inputs (slow beyond ~300)")
    args = parser.parse_args(argv)
    net = mnist_architecture(args.width)
    params = sum(p.numel() for p in net.parameters())
    print(f"MNIST architecture, width {args.width}, {params:,} parameters, 784 inputs")
    print(f"{'formulation':<28}{'construction s':>15}")
    for formulation, options in CELLS:
        label = formulation + (f"/{options['backend']}" if options else "")
        seconds = build(net, 784, formulation, options)
        if options.get("backend") == "l4casadi":  # the first build may compile; then it is cached
            print(f"{label + ' (first)':<28}{seconds:>15.3f}", flush=True)
            label, seconds = label + " (cached)", build(net, 784, formulation, options)
        print(f"{label:<28}{seconds:>15.3f}{'' if seconds < 2 else '   above the 2 s target'}", flush=True)
    if args.naive:
        small = mnist_architecture(args.width, n_in=args.naive)
        ours = build(small, args.naive, "reduced", {})
        naive = build(small, args.naive, "reduced", {}, helper=False)
        print(f"\nreduced space at {args.naive} inputs: nncas.solver {ours:.3f} s, "
              f"plain opti.solver {naive:.3f} s ({naive / ours:.0f}x)")


if __name__ == "__main__":
    main()
