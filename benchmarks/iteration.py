r"""Time per IPOPT iteration of a gray-box problem, split into oracle and IPOPT work.

Problem 7's shape around an untrained network (seeded): ``min |x - x_ref|^2`` s.t. one output
above its value at x_ref, ``0 <= x <= 1``, solved by ``nncas.nlpsol`` with the gray box on
``--device``. The per-iteration figures (total, Hessian, Jacobian, function and gradient,
IPOPT's own) are what issue 17's launch-bound target is about (at most 5 ms per iteration up
to 50M parameters on a GPU). The first call of each kind includes the device's warm-up, so
``--warmup`` solves once before the timed solve.

Inside against outside (issue 23's per-call overhead): after the solve the same oracle's Hessian
is timed alone at the solution (best of several calls, new multipliers each time, the
Jacobian at that point already known as in IPOPT), and both are set against the float64 GEMM
bound 2 n P / R, R the machine's matrix-product rate measured in the same run.

    python -m benchmarks.iteration [--scopf 100,1000,2000,4000] [--mnist 1024,4096] [--device cuda]
"""
from __future__ import annotations

import itertools
import json
import sys

import casadi as ca
import numpy as np
import torch

import nncas
from benchmarks.oracle import matmul_rate, mnist_classifier, scopf_surrogate, time_call
from benchmarks.report import cpu_name, whole_numbers
from nncas.apps.cli import BAD_INPUT, ArgumentParser, fail, raise_if_interrupted, run_main
from nncas.devices import resolve_device
from nncas.threads import casadi_blas_threads_set


def solve_once(net, n_in: int, device: str, target: int, margin: float) -> dict:
    """One solve; per-iteration milliseconds by part and the oracle's evaluation counts."""
    x_ref = np.linspace(0.2, 0.8, n_in)
    x = ca.MX.sym("x", n_in)
    e = nncas.embed(net, x, formulation="graybox", device=device, x0=x_ref,
                    graybox_input="direct")  # the whole network at x: the 2 n P bound applies
    y0 = float(np.asarray(e.oracle.function(x_ref)).ravel()[target])
    solver = nncas.nlpsol("S", "ipopt", {"x": x, "f": ca.sumsqr(x - x_ref), "g": e.y[target]},
                          {"ipopt.print_level": 0, "print_time": False, "ipopt.sb": "yes", "record_time": True,
                           "ipopt.max_iter": 200})
    result = solver(x0=x_ref, lbx=0, ubx=1, lbg=y0 + margin * abs(y0), ubg=np.inf)
    raise_if_interrupted(solver.stats()["return_status"])
    s = nncas.problem_stats(solver, result)
    per = 1e3 / max(s.iterations, 1)
    calls = max(solver.stats().get("n_call_nlp_hess_l", 0), 1)
    u = np.asarray(result["x"]).ravel()
    lam = np.zeros(e.y.numel())
    lam[target] = float(result["lam_g"][0]) or 1.0  # the multiplier IPOPT weighs the output with
    e.oracle.jacobian(u)
    signs = itertools.cycle((1.0, -1.0))  # new multipliers every call: no cached Hessian
    alone = time_call(lambda: e.oracle.hessian(u, next(signs) * lam))
    return {"status": s.status, "iterations": s.iterations, "per_iteration_ms": s.total_s * per,
            "hessian_ms": s.hessian_s * per, "jacobian_ms": s.jacobian_s * per,
            "function_ms": (s.function_s + s.gradient_s) * per, "ipopt_ms": s.solver_s * per,
            "hessian_call_ms": 1e3 * s.hessian_s / calls, "hessian_alone_ms": 1e3 * alone}


def main(argv=None):
    parser = ArgumentParser(prog="python -m benchmarks.iteration", description=__doc__.splitlines()[0])
    parser.add_argument("--scopf", type=whole_numbers, default="100,1000", help="surrogate widths, 117 inputs")
    parser.add_argument("--mnist", type=whole_numbers, default="128", help="classifier widths, 784 inputs")
    parser.add_argument("--device", default="cpu", help="torch device of the gray box: cpu or cuda")
    parser.add_argument("--warmup", action="store_true", help="solve once before the timed solve")
    args = parser.parse_args(argv)
    try:
        resolve_device(args.device)
        cells = [(f"SCOPF-{w}", scopf_surrogate(w), 117, 0, 0.01) for w in args.scopf]
        cells += [(f"MNIST-{w}", mnist_classifier(w), 784, 1, 0.02) for w in args.mnist]
    except BAD_INPUT as err:
        return fail(parser, err, args.debug)
    with casadi_blas_threads_set(1):  # torch shares the CPU with IPOPT (docs/oracle.md#threads)
        name = torch.cuda.get_device_name(0) if args.device.startswith("cuda") else cpu_name()
        print(f"device: {name} ({args.device})")
        print("| problem | params | status | iterations | ms / iteration | Hessian | Jacobian | functions | IPOPT "
              "| Hessian call in IPOPT | alone | bound | in IPOPT / bound | alone / bound |")
        print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
        for problem, net, n_in, target, margin in cells:
            if args.warmup:
                solve_once(net, n_in, args.device, target, margin)
            row = solve_once(net, n_in, args.device, target, margin)
            params = sum(p.numel() for p in net.parameters())
            rate = max(matmul_rate(torch.device(args.device)) for _ in range(2))
            bound = 1e3 * 2 * n_in * params / rate
            print(f"| {problem} | {params:,} | {row['status']} | {row['iterations']} | {row['per_iteration_ms']:.1f} | "
                  f"{row['hessian_ms']:.1f} | {row['jacobian_ms']:.1f} | {row['function_ms']:.1f} | {row['ipopt_ms']:.1f} | "
                  f"{row['hessian_call_ms']:.1f} | {row['hessian_alone_ms']:.1f} | {bound:.1f} | "
                  f"{row['hessian_call_ms'] / bound:.2f} | {row['hessian_alone_ms'] / bound:.2f} |", flush=True)
            print(json.dumps({"problem": problem, "params": params, "gemm_gflops": rate / 1e9, "bound_ms": bound, **row}),
                  flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
