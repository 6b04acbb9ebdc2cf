"""Figure and numbers for docs/power_transient.md.

    python docs/figures/tscopf_figure.py CASE_FOLDER --model M.h5 --bound HZ [--timing M2.h5 ...]

1. SCOPF without the frequency constraint, 2. TSC-SCOPF with ``--bound`` (reduced space, warm
started at 1.), then the simulator's bus frequencies after the trip at both dispatches, plotted to
``docs/figures/tscopf_frequency.png``; objectives and minimum frequencies to
``docs/figures/tscopf_results.json``.  ``--timing`` models are solved cold at 59.4 Hz in the
formulations given by ``--formulations`` and their statistics added to the JSON.
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


def trajectories(case, blocks):
    point = OperatingPoint(blocks["base.vm_pu"], blocks["base.va_rad"], blocks["base.pg_pu"], blocks["base.qg_pu"])
    scopf = Scopf(case)
    return simulate_trip(scopf.pu, dynamic_data_for(case.network), point, tripped_generator(case), record_every=5)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("case")
    parser.add_argument("--model", required=True)
    parser.add_argument("--bound", type=float, required=True)
    parser.add_argument("--timing", nargs="*", default=[])
    parser.add_argument("--formulations", nargs="*", default=["full", "reduced", "graybox"])
    args = parser.parse_args()
    case = load_case(args.case)
    scopf = Scopf(case)
    base = scopf.solve()
    before_blocks = base.solution.x
    net, meta = load_surrogate(args.model)
    opti, handles = build_tscopf(case, net, "reduced", min_frequency_hz=args.bound, x0=base.solution.x_vector)
    after = solve_tscopf(opti, handles, net, {"ipopt.tol": 1e-8})
    before_sim, after_sim = trajectories(case, before_blocks), trajectories(case, after.x)
    inputs = scopf.nlp.evaluate(ca.vertcat(scopf.pg_mw_by_bus, scopf.qg_mvar_by_bus, scopf.pd_mw_by_bus),
                                base.solution)
    with torch.no_grad():
        nn_before = net(torch.as_tensor(inputs)[None, :])[0].numpy()

    fig, ax = plt.subplots(figsize=(7, 4))
    for sim, color, label in ((before_sim, "tab:red", f"SCOPF ({base.objective_usd_per_h:.2f} $/h)"),
                              (after_sim, "tab:blue", f"with NN >= {args.bound} Hz "
                                                      f"({after.stats.objective:.2f} $/h)")):
        ax.plot(sim.t_s, sim.f_bus_hz, color=color, lw=0.6, alpha=0.6)
        ax.plot([], [], color=color, label=label)
    ax.axhline(args.bound, color="k", ls="--", lw=0.8, label=f"bound {args.bound} Hz")
    ax.set_xlabel("time after the trip (s)")
    ax.set_ylabel("bus frequency (Hz)")
    ax.set_title(f"{case.network.name}: all {len(before_sim.bus_number)} buses, simulator (power.dynamics)")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(HERE / "tscopf_frequency.png", dpi=120)

    results = {
        "case": case.network.name, "model": {k: meta[k] for k in ("width", "n_parameters", "data_source")},
        "scopf": {"objective_usd_per_h": base.objective_usd_per_h, "iterations": base.iterations,
                  "min_nn_hz": float(nn_before.min()), "min_simulated_hz": float(before_sim.nadir_hz.min())},
        "tscopf": {"bound_hz": args.bound, **after.to_json()},
        "timing": [],
    }
    for path in args.timing:
        tnet, tmeta = load_surrogate(path)
        for formulation in args.formulations:
            opti, handles = build_tscopf(case, tnet, formulation, min_frequency_hz=MIN_FREQUENCY_HZ)
            r = solve_tscopf(opti, handles, tnet, {"ipopt.tol": 1e-8})
            row = {"model": Path(path).name, "width": tmeta["width"], "n_parameters": tmeta["n_parameters"],
                   "data_source": tmeta["data_source"], "formulation": formulation,
                   "build_time_s": r.build_time_s, "solver_setup_s": r.solver_setup_s,
                   "min_nn_torch_hz": float(r.nn_torch_hz.min()), "min_simulated_hz": float(r.simulated_hz.min()),
                   **r.stats.as_dict()}
            print({k: row[k] for k in ("model", "formulation", "status", "objective", "iterations", "total_s")})
            results["timing"].append(row)
    write_json_atomic(HERE / "tscopf_results.json", results)


if __name__ == "__main__":
    main()
