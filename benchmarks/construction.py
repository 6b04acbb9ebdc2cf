"""Problem construction time for the 784-input MNIST problem (paper eq. 7) in every formulation.

Construction = add_predictor + building the solver (derivative functions included) + a
zero-iteration IPOPT run, i.e. everything before IPOPT's first iteration. Target (issue 2): under 2 s in every formulation.
With ``--naive N`` it also times CasADi's default Hessian path (plain ``opti.solver``) on an
N-input reduced-space problem, to show what the assembled Hessian avoids.

With ``--nlpsol 100,400,784`` it times the nlp-dict route: ``casadi.nlpsol`` against
``nncas.nlpsol`` on the same dict from ``nncas.embed``, construction and first IPOPT iteration,
per formulation and input count, printed with their ratios (each plain cell in a child process
stopped after ``--limit`` seconds: CasADi's own Hessian construction takes minutes there).

    python -m benchmarks.construction [--width 128] [--naive 200] [--nlpsol 100,400,784] [--limit 600]
"""
import argparse
import json
import math
import subprocess
import sys
import time

import casadi as ca
import numpy as np
import torch
from torch import nn

import nncas
from benchmarks.report import whole_numbers
from nncas.apps.cli import ArgumentParser, raise_if_interrupted, run_main

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


def nlpsol_cell(route: str, formulation: str, n_in: int, width: int) -> dict:
    """Construction and first-iteration seconds of problem 7's shape at ``n_in`` inputs through
    ``casadi.nlpsol`` (route "plain") or ``nncas.nlpsol`` ("nncas")."""
    net = mnist_architecture(width, n_in)
    x_ref = np.linspace(0, 1, n_in)
    x = ca.MX.sym("x", n_in)
    e = nncas.embed(net, x, formulation=formulation, x0=x_ref)
    nlp = {"x": ca.vertcat(x, e.w), "f": ca.sumsqr(x - x_ref), "g": ca.vertcat(e.g, e.y[3])}
    start = time.perf_counter()
    solver = (ca.nlpsol if route == "plain" else nncas.nlpsol)(
        "S", "ipopt", nlp, {"ipopt.print_level": 0, "print_time": False, "ipopt.max_iter": 1})
    construction = time.perf_counter() - start
    start = time.perf_counter()
    solver(x0=np.concatenate([x_ref, e.w0]), lbx=np.concatenate([np.zeros(n_in), e.lbw]),
           ubx=np.concatenate([np.ones(n_in), e.ubw]), lbg=np.concatenate([e.lbg, [0.6]]),
           ubg=np.concatenate([e.ubg, [np.inf]]))
    raise_if_interrupted(solver.stats()["return_status"])
    return {"construction_s": construction, "first_iteration_s": time.perf_counter() - start}


def _cell_in_child(route, formulation, n_in, width, limit):
    """:func:`nlpsol_cell` in a child process; None when it ran past ``limit`` seconds."""
    command = [sys.executable, "-m", "benchmarks.construction", "--cell", f"{route},{formulation},{n_in}",
               "--width", str(width)]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=limit, check=True)
    except subprocess.TimeoutExpired:
        return None
    return json.loads(done.stdout.strip().splitlines()[-1])


def compare_nlpsol(sizes, width, limit):
    print(f"\nnlp-dict route, width {width}: casadi.nlpsol (plain) against nncas.nlpsol, one run")
    print(f"{'formulation':<12}{'inputs':>7}{'plain build s':>15}{'nncas build s':>15}{'ratio':>8}"
          f"{'plain iter s':>14}{'nncas iter s':>14}")
    for formulation in ("full", "reduced", "graybox"):
        for n_in in sizes:
            ours = nlpsol_cell("nncas", formulation, n_in, width)
            plain = _cell_in_child("plain", formulation, n_in, width, limit)
            if plain is None:
                print(f"{formulation:<12}{n_in:>7}{'> ' + str(limit):>15}{ours['construction_s']:>15.3f}"
                      f"{'> ' + str(round(limit / ours['construction_s'])):>8}{'-':>14}"
                      f"{ours['first_iteration_s']:>14.3f}", flush=True)
                continue
            print(f"{formulation:<12}{n_in:>7}{plain['construction_s']:>15.3f}{ours['construction_s']:>15.3f}"
                  f"{plain['construction_s'] / ours['construction_s']:>8.1f}{plain['first_iteration_s']:>14.3f}"
                  f"{ours['first_iteration_s']:>14.3f}", flush=True)


def main(argv=None):
    parser = ArgumentParser(prog="python -m benchmarks.construction", description=__doc__.splitlines()[0])
    parser.add_argument("--width", type=int, default=128, help="hidden width of the MNIST classifier (default: 128)")
    parser.add_argument("--naive", type=int, default=0, metavar="N",
                        help="also time CasADi's default Hessian path at N inputs (slow beyond ~300; default: 0, not timed)")
    parser.add_argument("--nlpsol", type=whole_numbers, default="", metavar="SIZES",
                        help="also compare casadi.nlpsol and nncas.nlpsol at these input counts, e.g. 100,400,784 "
                        "(default: none)")
    parser.add_argument("--limit", type=float, default=600, help="seconds per plain nlpsol cell (default: 600)")
    parser.add_argument("--cell", help=argparse.SUPPRESS)  # route,formulation,n_in: one cell, JSON out
    args = parser.parse_args(argv)
    if args.width < 1 or args.naive < 0 or not (math.isfinite(args.limit) and args.limit > 0):
        parser.error(f"--width {args.width} must be positive, --naive {args.naive} at least 0 and "
                     f"--limit {args.limit} a positive number of seconds")
    if args.cell:
        route, formulation, n_in = args.cell.split(",")
        print(json.dumps(nlpsol_cell(route, formulation, int(n_in), args.width)))
        return 0
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
    if args.nlpsol:
        compare_nlpsol(args.nlpsol, args.width, args.limit)
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
