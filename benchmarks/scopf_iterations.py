"""Where problem 8's IPOPT iterations come from: the SCOPF alone against the TSC-SCOPF.

    python -m benchmarks.scopf_iterations [--sizes 100,500,1000] [--out docs/scopf_iterations]

The paper's reduced space needs 53, 40 and 42 iterations with its 4M, 68M and 592M surrogates;
our gray box needed 116-165. This benchmark separates the network's share from the SCOPF's on
Hawaii 37 (``$NNCAS_HAWAII37``, default ``../shared/hawaii37``): IPOPT's iterations and
objective for

- ``SCOPF alone``: the Challenge 1 SCOPF with no network (``power.scopf``), cold and with
  the adaptive barrier update;
- per surrogate width (trained on the authors' 110 samples and cached as ``benchmarks.paper``
  does), the gray box TSC-SCOPF
  - ``cold``: from the SCOPF's own start (mid-range dispatch, flat voltages), as
    ``benchmarks.paper`` runs it;
  - ``no bound``: the network embedded without the 59.4 Hz bound (its evaluation and
    derivatives, no constraint);
  - ``warm``: started at the SCOPF optimum (``bound_push = bound_frac = 1e-8``);
  - ``adaptive mu``: cold, with IPOPT's adaptive barrier update (``mu_strategy adaptive``);
  - ``limited-memory``: cold, IPOPT's L-BFGS Hessian, stopped after 500 iterations (with the
    15k surrogate it had not converged after 3000).

IPOPT with MUMPS at its default tolerance (1e-8), CasADi's BLAS on one thread while torch
evaluates the gray box (docs/oracle.md#threads); each line is one solve.
"""
from __future__ import annotations

import sys

from benchmarks.report import check_report_path, cpu_name, whole_numbers, write_report
from nncas.apps.cli import BAD_INPUT, ArgumentParser, fail, run_main

VARIANTS = {
    "cold": ({}, "exact", False, True),
    "no bound": ({}, "exact", False, False),
    "warm": ({}, "exact", True, True),
    "adaptive mu": ({"ipopt.mu_strategy": "adaptive"}, "exact", False, True),
    "limited-memory": ({"ipopt.max_iter": 500}, "limited-memory", False, True),
}


def measure(sizes, log=print) -> list[dict]:
    """One row per (problem, variant): iterations, objective, status, solve seconds."""
    from benchmarks.paper import authors_surrogate, hawaii37_folder
    from power import tscopf
    from power.dynamic_data import load_case
    from power.scopf import Scopf

    case = load_case(hawaii37_folder())
    rows = []
    for variant in ("cold", "adaptive mu"):
        result = Scopf(case).solve(VARIANTS[variant][0])
        rows.append({"problem": "SCOPF alone", "params": 0, "variant": variant, "status": result.status,
                     "objective": result.objective_usd_per_h, "iterations": result.iterations,
                     "solve_s": result.solve_time_s})
        log(rows[-1])
        if variant == "cold":
            alone = result  # the warm variants start at its optimum
    for size in sizes:
        net, meta = authors_surrogate(size)
        for variant, (options, hessian, warm, bounded) in VARIANTS.items():
            bound = tscopf.MIN_FREQUENCY_HZ if bounded else None
            problem = tscopf.build_tscopf(case, net, "graybox", min_frequency_hz=bound,
                                          x0=alone.solution.x_vector if warm else None)
            result = tscopf.solve_tscopf(problem, net, options, simulate=False, blas_threads=1, hessian=hessian)
            s = result.stats
            rows.append({"problem": f"SCOPF-{size}", "params": meta["n_parameters"], "variant": variant,
                         "status": s.status, "objective": s.objective, "iterations": s.iterations,
                         "solve_s": s.total_s, "min_nn_hz": float(min(result.nn_in_problem_hz))})
            log(rows[-1])
    return rows


def markdown(rows, header) -> str:
    lines = [header, "", "| problem | params | variant | status | objective ($/h) | iterations | solve s | min NN (Hz) |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        nn = f"{r['min_nn_hz']:.4f}" if "min_nn_hz" in r else "-"
        lines.append(f"| {r['problem']} | {r['params']:,} | {r['variant']} | {r['status']} | {r['objective']:.4f} | "
                     f"{r['iterations']} | {r['solve_s']:.2f} | {nn} |")
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = ArgumentParser(prog="python -m benchmarks.scopf_iterations", description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=whole_numbers, default="100,500,1000",
                        help="surrogate widths (default: 100,500,1000)")
    parser.add_argument("--out", default=None, help="write OUT.json and OUT.md (default: print only)")
    args = parser.parse_args(argv)
    try:
        check_report_path(args.out)
        rows = measure(args.sizes)
    except BAD_INPUT as err:
        return fail(parser, err, args.debug)
    header = (f"IPOPT iterations on Hawaii 37, SCOPF alone and gray-box TSC-SCOPF per surrogate. "
              f"Machine: {cpu_name()}.")
    table = markdown(rows, header)
    print("\n" + table)
    write_report(args.out, header, rows, table)
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
