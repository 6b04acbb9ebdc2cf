"""Time per MPC step and closed-loop cost for each embedding of the learned pendulum model.

For every embedding (full, reduced, graybox-torch, graybox-l4casadi) and horizon N it builds
the controller of ``examples/mpc_pendulum.py`` once, runs closed loops on the true ODE from a
few initial states, and reports the solve time per step (CasADi's ``t_wall_total``: IPOPT and
its callbacks, nothing else) as median and 95th percentile over the warm-started steps, the
cold first solve separately, IPOPT iterations and the closed-loop cost.

    python -m benchmarks.mpc [--horizons 10,20,50] [--embeddings full,reduced,...]
                             [--steps 60] [--threads 1] [--out docs/mpc_cpu]
"""
import os
import sys
import time
from pathlib import Path

import casadi as ca
import numpy as np
import torch

from benchmarks.report import check_report_path, machine, whole_numbers, write_report
from nncas.apps.cli import BAD_INPUT, ArgumentParser, fail, raise_if_interrupted, run_main

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))
import mpc_pendulum  # noqa: E402  (examples/ is not a package)

#: initial (theta, omega): near the torque limit's static reach asin(u_max / (m g l)) = 0.535 rad
INITIAL_STATES = [(0.45, 0.0), (-0.3, 1.0)]


def measure(net, plant, embedding, horizon, steps, initial_states) -> dict:
    """Build one controller, run every initial state, and summarise its timings and costs."""
    start = time.perf_counter()
    mpc = mpc_pendulum.PendulumMPC(net, plant, horizon, embedding)
    build_s = time.perf_counter() - start
    runs = [mpc_pendulum.closed_loop(mpc, x0, steps) for x0 in initial_states]
    for run in runs:  # a step stopped by Ctrl-C is no failed solve to count
        for step in run.steps:
            raise_if_interrupted(step.status)
    warm = np.concatenate([run.solve_s[1:] for run in runs])
    wall = np.concatenate([[s.wall_s for s in run.steps[1:]] for run in runs])
    iterations = np.concatenate([[s.iterations for s in run.steps[1:]] for run in runs])
    return {
        "embedding": embedding, "horizon": horizon,
        "n_variables": mpc.opti.nx, "n_constraints": mpc.opti.ng, "build_s": build_s,
        "solve_median_s": float(np.median(warm)), "solve_p95_s": float(np.percentile(warm, 95)),
        "cold_solve_s": [float(run.solve_s[0]) for run in runs],
        "step_wall_median_s": float(np.median(wall)),
        "iterations_median": float(np.median(iterations)),
        "failed_solves": int(sum(not s.success for run in runs for s in run.steps)),
        "closed_loop_cost": [float(run.cost) for run in runs],
        "final_state": [run.states[-1].tolist() for run in runs],
    }


def markdown(rows, header) -> str:
    cols = ["embedding", "N", "variables", "build s", "solve median ms", "solve p95 ms",
            "cold ms", "step() median ms", "iterations", "failed", "closed-loop cost"]
    lines = [header, "", "| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in rows:
        lines.append("| " + " | ".join([
            r["embedding"], str(r["horizon"]), str(r["n_variables"]), f"{r['build_s']:.2f}",
            f"{1e3 * r['solve_median_s']:.1f}", f"{1e3 * r['solve_p95_s']:.1f}",
            f"{1e3 * max(r['cold_solve_s']):.0f}", f"{1e3 * r['step_wall_median_s']:.1f}",
            f"{r['iterations_median']:.0f}", str(r["failed_solves"]),
            " / ".join(f"{c:.3f}" for c in r["closed_loop_cost"])]) + " |")
    return "\n".join(lines) + "\n"


def machine_line() -> str:
    """The machine, the load at start and the solver stack, in one line for the report header."""
    info = machine()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (f"{info['cpu']}, {info['cores']} cores, {info['torch_threads']} torch threads, load average "
            f"{load:.1f} at start; casadi {ca.__version__} (IPOPT, MUMPS), torch {info['torch']}, "
            f"Python {info['python']}")


def main(argv=None):
    parser = ArgumentParser(prog="python -m benchmarks.mpc", description=__doc__.splitlines()[0])
    parser.add_argument("--horizons", type=whole_numbers, default="10,20,50", help="comma-separated MPC horizons")
    parser.add_argument("--embeddings", default=",".join(mpc_pendulum.EMBEDDINGS),
                        help="comma-separated ways the learned dynamics enter the MPC problem")
    parser.add_argument("--steps", type=int, default=60, help="closed-loop samples per run")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads; one suits networks this small (docs/mpc.md)")
    parser.add_argument("--out", default=None, help="write OUT.json and OUT.md")
    args = parser.parse_args(argv)
    if args.steps < 1 or args.threads < 1:
        parser.error(f"--steps {args.steps} and --threads {args.threads} must be positive whole numbers")
    embeddings = [e.strip() for e in args.embeddings.split(",") if e.strip()]
    unknown = sorted(set(embeddings) - set(mpc_pendulum.EMBEDDINGS))
    if unknown:
        parser.error(f"unknown embeddings {unknown}; choose from {sorted(mpc_pendulum.EMBEDDINGS)}")
    try:
        check_report_path(args.out)
    except BAD_INPUT as err:
        return fail(parser, err, args.debug)
    torch.set_num_threads(args.threads)
    horizons = args.horizons
    plant = mpc_pendulum.Pendulum()
    net = mpc_pendulum.learned_model(plant)
    header = (f"Pendulum MPC with a learned 3-32-32-2 tanh model, {args.steps} samples of "
              f"{plant.dt} s from x0 = {' and '.join(map(str, INITIAL_STATES))}. Solve = CasADi "
              f"t_wall_total (IPOPT and its callbacks only), median and p95 over the warm-started "
              f"steps; cold = the first solve of each run (max); step() = the whole controller "
              f"call incl. Opti's bookkeeping. Machine: {machine_line()}.")
    print(header, flush=True)
    rows = []
    for embedding in embeddings:
        for horizon in horizons:
            row = measure(net, plant, embedding, horizon, args.steps, INITIAL_STATES)
            rows.append(row)
            print(markdown([row], "").splitlines()[-1], flush=True)
    table = markdown(rows, header)
    print("\n" + table)
    write_report(args.out, header, rows, table)
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
