r"""IPOPT's own time per iteration (linear algebra, line search: the total minus every callback)
against the dense-factorization limit, for problem 7 and problem 8, per linear solver and layout.

The limit is one dense LDL^T of the problem's n variables, n^3/3 flops, at the float64
matrix-multiply rate R measured in the same run: ``limit_s = n^3 / (3 R)``. The ratio
``IPOPT s per iteration / limit_s`` is what the linear-algebra work aims to bring down. R is
numpy's rate on all cores; ``ratio_1t`` uses the one-thread rate of SciPy's BLAS, the one the
dense solver runs on.

Layouts (gray box): ``rows`` (the box 0 <= x <= 1 as constraint rows, y variables: what an Opti
gives without ``detect_simple_bounds``), ``bounds`` (the box as variable bounds, y variables),
``expression`` (the box as bounds, y = NN(x) as an expression: no y variables or rows) and
``lifted`` (as expression, with the first Linear layer's outputs z as variables and the rows
W x + b - z = 0: ``graybox_input="lifted"``); the first three evaluate the whole network at x.
Linear solvers: ``dense`` (nncas's dense LDL^T, :mod:`nncas.kkt`), IPOPT's MUMPS and SPRAL
(both in the casadi wheel), and HSL's when a library is named by ``--hsllib``. The last lines
compare what nncas gives by default (for a gray box the lifted layout where
``graybox_input="auto"`` lifts, else the expression layout; bounds otherwise; and the linear
solver ``kkt_solver="auto"`` picks) with the stock configuration (MUMPS, rows).

The probe (``--probe N``, issue 22) checks ``kkt_solver="auto"``'s own choice: N inputs whose
pivots are small next to their constraint entries; its line gives auto's IPOPT time per
iteration against MUMPS's, measured in the same run.

    python -m benchmarks.kkt [--mnist 128,512,1024] [--hawaii37 ../shared/hawaii37] [--solvers dense,mumps]
                             [--formulations graybox,reduced,full] [--layouts rows,bounds,expression]
                             [--probe 4500] [--probe-curvature 1e-3] [--repeats 3] [--out docs/kkt_cpu]
"""
from __future__ import annotations

import argparse
import copy
import json
import math
import sys
import time
from pathlib import Path

import casadi as ca
import numpy as np

import nncas
from benchmarks.report import check_report_path, cpu_name, whole_numbers
from nncas import kkt
from nncas.apps.cli import BAD_INPUT, ArgumentParser, fail, raise_if_interrupted, run_main
from nncas.apps.storage import write_text_atomic
from nncas.threads import casadi_blas_threads_set

LAYOUTS = ("rows", "bounds", "expression", "lifted")
PROBE = "auto probe"


def matmul_rate(size: int = 1024, repeats: int = 5) -> float:
    """float64 FLOP/s of the fastest of ``repeats`` square products (numpy's BLAS)."""
    a, b = np.random.default_rng(0).normal(size=(2, size, size))
    a @ b
    best = min(_timed(lambda: a @ b) for _ in range(repeats))
    return 2 * size ** 3 / best


def matmul_rate_one_thread(size: int = 1024, repeats: int = 5) -> float:
    """float64 FLOP/s of SciPy's BLAS (the dense solver's) on the calling thread alone."""
    from scipy.linalg import blas

    from nncas.kkt import scipy_openblas
    library = scipy_openblas()
    a, b = np.asfortranarray(np.random.default_rng(0).normal(size=(2, size, size)))
    previous = library.openblas_set_num_threads_local(1)
    try:
        blas.dgemm(1.0, a, b)
        best = min(_timed(lambda: blas.dgemm(1.0, a, b)) for _ in range(repeats))
    finally:
        library.openblas_set_num_threads_local(previous)
    return 2 * size ** 3 / best


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def problem7(width: int, formulation: str, layout: str):
    """(nlp, args, keep) of problem 7 on MNIST test image 0 (target (label + 1) mod 10)."""
    from vision.adversarial import THRESHOLD
    from vision.data import as_inputs, load_mnist

    data = load_mnist()
    net = classifier(width, data)
    x_ref = as_inputs(data.test_images[:1])[0].astype(np.float64)
    target = (int(data.test_labels[0]) + 1) % 10
    x = ca.MX.sym("x", x_ref.size)
    output = "expression" if layout in ("expression", "lifted") else "variables"
    options = {"graybox_output": output, "graybox_input": "lifted" if layout == "lifted" else "direct"}
    e = nncas.embed(net, x, formulation=formulation, x0=x_ref, **(options if formulation == "graybox" else {}))
    n = x_ref.size
    box_rows = layout == "rows"
    g = ca.vertcat(e.g, e.y[target], *([x] if box_rows else []))
    nlp = {"x": ca.vertcat(x, e.w), "f": ca.sumsqr(x - x_ref), "g": g}
    args = {"x0": np.r_[x_ref, e.w0],
            "lbx": np.r_[np.full(n, -np.inf) if box_rows else np.zeros(n), e.lbw],
            "ubx": np.r_[np.full(n, np.inf) if box_rows else np.ones(n), e.ubw],
            "lbg": np.r_[e.lbg, THRESHOLD, np.zeros(n) if box_rows else []],
            "ubg": np.r_[e.ubg, np.inf, np.ones(n) if box_rows else []]}
    return nlp, args, e


def classifier(width: int, data=None):
    """The cached MNIST classifier of this width, in float64."""
    from vision.data import load_mnist
    from vision.train import ensure_classifier

    net, _ = ensure_classifier(width, data=data if data is not None else load_mnist())
    return copy.deepcopy(net).double().eval()


def default_layout(formulation: str, net=None) -> str:
    """The layout nncas gives a problem by default."""
    from nncas.formulations.graybox import lifted_layer as _lifted_layer

    if formulation != "graybox":
        return "bounds"
    return "lifted" if net is not None and _lifted_layer(net, "auto")[0] is not None else "expression"


def probe(inputs: int = 4500, outputs: int = 40, seed: int = 0, curvature: float = 1e-3):
    """(nlp, args) of issue 22's probe of ``kkt_solver="auto"``: x in R^inputs with objective
    Hessian ``curvature`` I (1e-3; 0 leaves x without curvature: the pivots fail at run time), z in R^outputs, rows W x - z = 0 with a dense random W (standard normal), and
    sum (z - t)^4 (Newton takes a few iterations). The dense solver's elimination of the x rows must happen at run time: their
    pivots (1e-3) are small next to W's entries."""
    rng = np.random.default_rng(seed)
    w, t = rng.normal(size=(outputs, inputs)), rng.normal(size=outputs)
    x, z = ca.MX.sym("x", inputs), ca.MX.sym("z", outputs)
    nlp = {"x": ca.vertcat(x, z), "f": curvature / 2 * ca.sumsqr(x) + ca.sum1((z - t) ** 4), "g": ca.mtimes(ca.DM(w), x) - z}
    return nlp, {"x0": np.zeros(inputs + outputs), "lbg": 0, "ubg": 0}


def problem8(folder: str, layout: str):
    """(nlp, args, keep) of problem 8 on the case in ``folder`` with its default surrogate."""
    from power.default_surrogate import ensure_surrogate
    from power.dynamic_data import load_case
    from power.tscopf import build_tscopf

    net, _, _ = ensure_surrogate(folder)
    if layout == "rows":
        raise ValueError("problem 8 keeps the SCOPF's bounds as bounds; use the bounds layout")
    output = "expression" if layout == "expression" else "variables"
    problem = build_tscopf(load_case(folder), net, "graybox", graybox_output=output)
    return problem.nlp, problem.args, problem


def measure(nlp, args, solver: str, options: dict, repeats: int = 1) -> dict:
    """One cell: the fastest of ``repeats`` solves (each from the same start; the iterates are
    the same, so the spread is the machine's)."""
    ipopt = {"ipopt.print_level": 0, "print_time": False, "ipopt.sb": "yes", "record_time": True, **options}
    if solver == "dense":
        S = nncas.nlpsol("S", "ipopt", nlp, ipopt, kkt_solver="dense")
    else:
        S = nncas.nlpsol("S", "ipopt", nlp, {**ipopt, "ipopt.linear_solver": solver}, kkt_solver="ipopt")
    runs = []
    for _ in range(repeats):
        runs.append(nncas.problem_stats(S, S(**args)))
        raise_if_interrupted(runs[-1].status)
    stats = min(runs, key=lambda run: run.total_s)
    iterations = max(stats.iterations, 1)
    return {"auto": kkt.choice(nlp), "status": stats.status, "objective": stats.objective, "iterations": stats.iterations,
            "n_variables": stats.n_variables, "n_constraints": stats.n_constraints,
            "total_s": stats.total_s, "ipopt_s": stats.solver_s, "ipopt_per_iteration_s": stats.solver_s / iterations,
            "hessian_s": stats.hessian_s}


def _repeats(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 100:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number from 1 to 100")
    return int(text)


def _inputs(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number (0 skips the probe)")
    return int(text)


def _curvature(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value >= 0):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number >= 0")
    return value


def _names(allowed: tuple[str, ...]):
    """argparse type: comma-separated names out of ``allowed``."""
    def names(text: str) -> list[str]:
        given = [item.strip() for item in text.split(",") if item.strip()]
        wrong = [item for item in given if item not in allowed]
        if wrong:
            raise argparse.ArgumentTypeError(f"{', '.join(wrong)}: use names out of {', '.join(allowed)}")
        return given
    return names


def main(argv=None):
    parser = ArgumentParser(prog="python -m benchmarks.kkt", description=__doc__.splitlines()[0])
    parser.add_argument("--mnist", type=whole_numbers, default="128", help="classifier widths (trained once and cached)")
    parser.add_argument("--formulations", type=_names(("graybox", "reduced", "full")), default="graybox,reduced",
                        help="problem 7 formulations")
    parser.add_argument("--hawaii37", default=str(Path(__file__).resolve().parents[2] / "shared" / "hawaii37"),
                        help="Hawaii 37 case folder for problem 8 (skipped when absent; '' to skip)")
    parser.add_argument("--solvers", type=_names(("dense", "mumps", "spral")), default="dense,mumps",
                        help="dense, mumps, spral")
    parser.add_argument("--repeats", type=_repeats, default=1, help="solves per cell (1-100); the fastest is reported")
    parser.add_argument("--layouts", type=_names(LAYOUTS), default=",".join(LAYOUTS),
                        help="comma-separated gray-box layouts")
    parser.add_argument("--probe", type=_inputs, default=4500, help="inputs of issue 22's probe of auto (0 skips it)")
    parser.add_argument("--probe-curvature", type=_curvature, default=1e-3, help="the probe's objective Hessian in x")
    parser.add_argument("--hsllib", help="an HSL library: adds ma27 and ma57")
    parser.add_argument("--out", help="write OUT.json and OUT.md")
    args = parser.parse_args(argv)
    if args.hsllib and not Path(args.hsllib).is_file():
        parser.error(f"--hsllib {args.hsllib}: no such file; name an HSL library (libhsl.so).")
    try:
        check_report_path(args.out)
        cells = [("problem 7", f"MNIST-{w}", f, lambda w=w, f=f, layout=None: problem7(w, f, layout),
                  default_layout(f, classifier(w)))
                 for w in args.mnist for f in args.formulations]
    except BAD_INPUT as err:
        return fail(parser, err, args.debug)
    with casadi_blas_threads_set(1):  # torch shares the CPU with IPOPT (docs/oracle.md#threads)
        solvers = args.solvers + (["ma27", "ma57"] if args.hsllib else [])
        extra = {"ipopt.hsllib": args.hsllib} if args.hsllib else {}
        if args.hawaii37 and Path(args.hawaii37).is_dir():
            cells.append(("problem 8", "Hawaii 37", "graybox", lambda layout=None: problem8(args.hawaii37, layout),
                          "expression"))  # its surrogate starts with a scaling, not a Linear layer
        if args.probe > 0:
            cells.append((PROBE, f"{args.probe} inputs", "probe",
                          lambda layout=None: (*probe(args.probe, curvature=args.probe_curvature), None), "rows"))
        rate, rate_1t = matmul_rate(), matmul_rate_one_thread()
        rows = []
        print(f"float64 matmul rate {rate / 1e9:.1f} GFLOP/s, one thread {rate_1t / 1e9:.1f}; {cpu_name()}", flush=True)
        for problem, case, formulation, build, default in cells:
            layouts = [l for l in args.layouts
                       if (formulation == "graybox" or l not in ("expression", "lifted"))
                       and not (problem == "problem 8" and l in ("rows", "lifted"))] if problem != PROBE else ["rows"]
            for layout in layouts:
                nlp, solve_args, keep = build(layout=layout)
                for solver in solvers:
                    row = {"problem": problem, "case": case, "formulation": formulation, "layout": layout,
                           "default_layout": default, "solver": solver, **measure(nlp, solve_args, solver, extra if solver.startswith("ma") else {},
                                       repeats=args.repeats)}
                    row["limit_s"] = row["n_variables"] ** 3 / (3 * rate)
                    row["ratio"] = row["ipopt_per_iteration_s"] / row["limit_s"]
                    row["ratio_1t"] = row["ipopt_per_iteration_s"] / (row["n_variables"] ** 3 / (3 * rate_1t))
                    rows.append(row)
                    print(f"{case:<11}{formulation:<9}{layout:<11}{solver:<7}{row['status']:<28}{row['iterations']:>5} it"
                          f"{1e3 * row['ipopt_per_iteration_s']:>9.1f} ms/it{row['ratio']:>8.1f} x limit"
                          f"{row['ratio_1t']:>6.1f} x 1t"
                          f"{row['total_s']:>8.2f} s total  objective {row['objective']:.8g}", flush=True)
                del keep
        for line in against_stock(rows) + auto_against_mumps(rows):
            print(line)
        if args.out:
            out = Path(args.out)
            write_text_atomic(out.with_suffix(".json"), json.dumps({"rate_flops": rate, "rate_one_thread_flops": rate_1t,
                                                                    "cpu": cpu_name(), "rows": rows}, indent=1) + "\n")
            write_text_atomic(out.with_suffix(".md"), markdown(rows, rate, rate_1t))
            print(f"wrote {out.with_suffix('.json')} and {out.with_suffix('.md')}")
    return 0


def against_stock(rows) -> list[str]:
    """Per problem: the whole solve as nncas gives it by default (its default layout, the solver
    "auto" picks) against MUMPS on the rows layout (stock)."""
    lines = []
    for key in dict.fromkeys((r["problem"], r["case"], r["formulation"]) for r in rows if r["problem"] != PROBE):
        cell = {(r["layout"], r["solver"]): r for r in rows if (r["problem"], r["case"], r["formulation"]) == key}
        layout = next(r["default_layout"] for r in rows if (r["problem"], r["case"], r["formulation"]) == key)
        picked = next((r["auto"] for (l, _), r in cell.items() if l == layout), None)
        default = cell.get((layout, "dense" if picked == "dense" else "mumps"))
        stock = cell.get(("rows", "mumps"))
        if stock and default:
            lines.append(f"{' '.join(key)}: {layout} + {default['solver']} (auto) {default['total_s']:.2f} s against "
                         f"rows + MUMPS {stock['total_s']:.2f} s: {default['total_s'] / stock['total_s']:.2f}x; "
                         f"objectives differ by {abs(default['objective'] - stock['objective']) / abs(stock['objective']):.1e}"
                         " (relative)")
    return lines


def auto_against_mumps(rows) -> list[str]:
    """Per probe: IPOPT's time per iteration with the solver "auto" picks against MUMPS's."""
    lines = []
    for case in dict.fromkeys(r["case"] for r in rows if r["problem"] == PROBE):
        cell = {r["solver"]: r for r in rows if r["problem"] == PROBE and r["case"] == case}
        mumps = cell.get("mumps")
        picked = cell.get("dense" if mumps and mumps["auto"] == "dense" else "mumps")
        if mumps and picked:
            lines.append(f"{PROBE} {case}: auto picks {picked['solver']}, {1e3 * picked['ipopt_per_iteration_s']:.1f} ms "
                         f"per IPOPT iteration against MUMPS's {1e3 * mumps['ipopt_per_iteration_s']:.1f}: "
                         f"{picked['ipopt_per_iteration_s'] / mumps['ipopt_per_iteration_s']:.2f}x "
                         f"({picked['iterations']} and {mumps['iterations']} iterations)")
    return lines


def markdown(rows, rate, rate_1t) -> str:
    lines = [f"IPOPT per iteration (total minus callbacks) against one dense LDL^T of the n variables "
             f"(n^3/3 flops at {rate / 1e9:.1f} GFLOP/s on all cores: ratio; at {rate_1t / 1e9:.1f} GFLOP/s on "
             f"one thread: ratio 1t; both measured in the same run). {cpu_name()}.", "",
             "| problem | case | formulation | layout | solver | auto picks | status | iterations | n | IPOPT ms/it "
             "| limit ms | ratio | ratio 1t | total s | objective |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['problem']} | {r['case']} | {r['formulation']} | {r['layout']} | {r['solver']} | "
                     f"{r['auto']} | {r['status']} | {r['iterations']} | {r['n_variables']} | {1e3 * r['ipopt_per_iteration_s']:.1f} | "
                     f"{1e3 * r['limit_s']:.2f} | {r['ratio']:.1f} | {r['ratio_1t']:.1f} | {r['total_s']:.2f} | "
                     f"{r['objective']:.10g} |")
    lines += ["", *against_stock(rows), *auto_against_mumps(rows)]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(run_main(main))
