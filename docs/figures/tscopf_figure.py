"""Figure and numbers for docs/power_transient.md.

    python docs/figures/tscopf_figure.py CASE_FOLDER --model M.h5 --bound HZ
        [--formulations full reduced graybox] [--figure-formulation reduced]
        [--sweep HZ ...] [--timing M2.h5 ...]

1. SCOPF without the frequency constraint; 2. the TSC-SCOPF with ``--bound`` in each of
``--formulations``, warm started at 1.; 3. the simulator's bus frequencies after the trip at 1. and
at the ``--figure-formulation`` solution, plotted to ``docs/figures/tscopf_frequency.png``.
``--sweep`` adds full-space warm-started solves at other bounds.  Every row records how far the
solution moved Pg and Qg from 1. and what the surrogate predicts when only Pg, or only Qg, moves.
``--timing`` models are solved cold at 59.4 Hz in each formulation.  All numbers go to
``docs/figures/tscopf_results.json``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import casadi as ca  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from power.dynamic_data import dynamic_data_for, load_case, tripped_generator  # noqa: E402
from power.dynamics import OperatingPoint, simulate_trip  # noqa: E402
from power.results import write_json_atomic  # noqa: E402
from power.scopf import Scopf  # noqa: E402
from power.surrogate import load_surrogate  # noqa: E402
from power.tscopf import MIN_FREQUENCY_HZ, build_tscopf, solve_tscopf  # noqa: E402

HERE = Path(__file__).resolve().parent
FORMULATIONS = ("full", "reduced", "graybox")


def trajectories(case, blocks):
    point = OperatingPoint(blocks["base.vm_pu"], blocks["base.va_rad"], blocks["base.pg_pu"], blocks["base.qg_pu"])
    scopf = Scopf(case)
    return simulate_trip(scopf.pu, dynamic_data_for(case.network), point, tripped_generator(case), record_every=5)


def min_nn(net, inputs: np.ndarray) -> float:
    with torch.no_grad():
        return float(net(torch.as_tensor(inputs)[None, :])[0].min())


def moved(net, before: np.ndarray, after: np.ndarray, n_gen: int) -> dict:
    """How the solution's NN inputs differ from the SCOPF optimum's, and what each part does."""
    pg, qg = slice(0, n_gen), slice(n_gen, 2 * n_gen)
    pg_only, qg_only = before.copy(), before.copy()
    pg_only[pg], qg_only[qg] = after[pg], after[qg]
    return {"sum_abs_dpg_mw": float(np.abs(after[pg] - before[pg]).sum()),
            "sum_abs_dqg_mvar": float(np.abs(after[qg] - before[qg]).sum()),
            "min_nn_pg_moved_only_hz": min_nn(net, pg_only), "min_nn_qg_moved_only_hz": min_nn(net, qg_only)}


def row(result, net, inputs_before, n_gen, **extra) -> dict:
    return {**extra, "status": result.stats.status, "objective_usd_per_h": result.stats.objective,
            "iterations": result.stats.iterations, "solve_s": result.stats.total_s,
            "build_time_s": result.build_time_s, "solver_setup_s": result.solver_setup_s,
            "min_nn_torch_hz": float(result.nn_torch_hz.min()),
            "min_simulated_hz": float(result.simulated_hz.min()),
            **moved(net, inputs_before, result.inputs, n_gen)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("case")
    parser.add_argument("--model", required=True)
    parser.add_argument("--bound", type=float, required=True)
    parser.add_argument("--formulations", nargs="*", default=list(FORMULATIONS), choices=FORMULATIONS)
    parser.add_argument("--figure-formulation", default="reduced", choices=FORMULATIONS)
    parser.add_argument("--sweep", nargs="*", type=float, default=[], help="more bounds (Hz), full space")
    parser.add_argument("--timing", nargs="*", default=[])
    args = parser.parse_args()
    if args.figure_formulation not in args.formulations:
        parser.error("--figure-formulation must be one of --formulations")
    case = load_case(args.case)
    scopf = Scopf(case)
    base = scopf.solve()
    n_gen = scopf.pg_mw_by_bus.shape[0]
    inputs_before = np.asarray(scopf.nlp.evaluate(
        ca.vertcat(scopf.pg_mw_by_bus, scopf.qg_mvar_by_bus, scopf.pd_mw_by_bus), base.solution)).ravel()
    net, meta = load_surrogate(args.model)
    before_sim = trajectories(case, base.solution.x)

    runs, after = [], None
    for formulation in args.formulations:
        problem = build_tscopf(case, net, formulation, min_frequency_hz=args.bound, x0=base.solution.x_vector)
        r = solve_tscopf(problem, net, {"ipopt.tol": 1e-8})
        runs.append(row(r, net, inputs_before, n_gen, formulation=formulation, bound_hz=args.bound))
        print({k: runs[-1][k] for k in ("formulation", "status", "objective_usd_per_h", "iterations",
                                        "min_nn_torch_hz", "min_simulated_hz")})
        if formulation == args.figure_formulation:
            after = r
    sweep = []
    for bound in args.sweep:
        problem = build_tscopf(case, net, "full", min_frequency_hz=bound, x0=base.solution.x_vector)
        r = solve_tscopf(problem, net, {"ipopt.tol": 1e-8})
        sweep.append(row(r, net, inputs_before, n_gen, formulation="full", bound_hz=bound))
        print({k: sweep[-1][k] for k in ("bound_hz", "status", "objective_usd_per_h", "min_simulated_hz")})
    after_sim = trajectories(case, after.x)

    fig, ax = plt.subplots(figsize=(7, 4))
    for sim, color, label in ((before_sim, "tab:red", f"SCOPF ({base.objective_usd_per_h:.2f} $/h)"),
                              (after_sim, "tab:blue", f"with NN >= {args.bound} Hz "
                                                      f"({after.stats.objective:.2f} $/h)")):
        ax.plot(sim.t_s, sim.f_bus_hz, color=color, lw=0.6, alpha=0.6)
        ax.plot([], [], color=color, label=f"{label}, nadir {sim.nadir_hz.min():.3f} Hz")
    ax.axhline(args.bound, color="k", ls="--", lw=0.8, label=f"bound {args.bound} Hz (on the surrogate)")
    ax.set_xlabel("time after the trip (s)")
    ax.set_ylabel("bus frequency (Hz)")
    ax.set_title(f"{case.network.name}: all {len(before_sim.bus_number)} buses, simulator (power.dynamics)")
    ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    fig.savefig(HERE / "tscopf_frequency.png", dpi=120)

    results = {
        "case": case.network.name, "model": {k: meta[k] for k in ("width", "n_parameters", "data_source")},
        "scopf": {"objective_usd_per_h": base.objective_usd_per_h, "iterations": base.iterations,
                  "min_nn_hz": min_nn(net, inputs_before), "min_simulated_hz": float(before_sim.nadir_hz.min())},
        "tscopf": {"bound_hz": args.bound, "formulation": args.figure_formulation, **after.to_json()},
        "bound_runs": runs, "sweep": sweep, "timing": [],
    }
    for path in args.timing:
        tnet, tmeta = load_surrogate(path)
        for formulation in args.formulations:
            problem = build_tscopf(case, tnet, formulation, min_frequency_hz=MIN_FREQUENCY_HZ)
            r = solve_tscopf(problem, tnet, {"ipopt.tol": 1e-8})
            row_ = {"model": Path(path).name, "width": tmeta["width"], "n_parameters": tmeta["n_parameters"],
                    "data_source": tmeta["data_source"], "formulation": formulation,
                    "build_time_s": r.build_time_s, "solver_setup_s": r.solver_setup_s,
                    "min_nn_torch_hz": float(r.nn_torch_hz.min()), "min_simulated_hz": float(r.simulated_hz.min()),
                    **r.stats.as_dict()}
            print({k: row_[k] for k in ("model", "formulation", "status", "objective", "iterations", "total_s")})
            results["timing"].append(row_)
    write_json_atomic(HERE / "tscopf_results.json", results)


if __name__ == "__main__":
    main()
