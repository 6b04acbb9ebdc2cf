r"""Paper problem 8 over load scenarios: ``python -m power.tscopf CASE --scenarios N|FILE.csv --out DIR
[--workers N | --scheduler ADDRESS]``.

Scenario k scales every load d of the case, Pd_d = u_d Pd_d^nom and Qd_d = u_d Qd_d^nom, by

- ``--scenarios N`` (k = 0..N-1): u_d ~ U[1 - s, 1 + s], s = 0.1, drawn with a generator seeded by
  (seed, k) (the paper's sampling: each load within its interval around the nominal value);
- ``--scenarios FILE.csv`` (k = the data row, from 0): a column ``scale`` (one u for every load)
  or one column per load named ``BUS/ID`` (e.g. ``2/1``).

Each scenario's TSC-SCOPF (:func:`power.tscopf.build_tscopf`) starts from the nominal loads'
TSC-SCOPF solution, itself started from the SCOPF optimum (as ``--warm-start``); the nominal problem
is solved once on the cluster. The solves run on dask.distributed (:mod:`nncas.apps.sweep`): ``DIR``
receives ``results.csv`` (one row per scenario, resumable), ``summary.json`` and ``scenarios.png``
(cost and minimum frequency against the total load).
"""
from __future__ import annotations

import csv
import hashlib
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from nncas.apps.storage import replaced_atomically, write_text_atomic
from nncas.apps.sweep import Column, CsvStore, run_sweep, shared, sweep_client
from nncas.cache import fingerprint
from nncas.errors import InputError
from power.psse import GoC1Case

SPREAD = 0.1
COLUMNS = [Column("scenario", int), Column("load_mw", float), Column("status", str), Column("success", int),
           Column("objective", float), Column("iterations", int), Column("min_nn_hz", float),
           Column("min_simulated_hz", float), Column("solve_s", float)]


# ---- scenarios ---------------------------------------------------------------------------------

def drawn_factors(n_loads: int, count: int, seed: int = 0, spread: float = SPREAD) -> np.ndarray:
    """(count, n_loads) factors, row k ~ U[1 - spread, 1 + spread] seeded by (seed, k)."""
    return np.array([np.random.default_rng([seed, k]).uniform(1 - spread, 1 + spread, n_loads)
                     for k in range(count)]).reshape(count, n_loads)


def read_factors(path: str | Path, case: GoC1Case) -> np.ndarray:
    """(scenarios, loads) factors from a CSV (module doc); errors name the file, line and column."""
    path = Path(path)
    names = [f"{d.bus}/{d.id}" for d in case.network.loads]
    try:
        with open(path, newline="") as f:
            lines = list(csv.reader(f))
    except (OSError, UnicodeDecodeError) as err:
        raise InputError(f"--scenarios {path}: cannot read it ({err}).") from err
    if not lines:
        raise InputError(f"--scenarios {path} is empty; give a header (scale, or one BUS/ID column per load).")
    header = [h.strip() for h in lines[0]]
    if header == ["scale"]:
        columns = [0] * len(names)
    elif sorted(header) == sorted(names) and len(set(header)) == len(header):
        columns = [header.index(n) for n in names]
    else:
        raise InputError(f"--scenarios {path}: the header must be 'scale' or the loads {', '.join(names)} "
                         f"(BUS/ID), got {', '.join(header)}.")
    rows = []
    for number, line in enumerate(lines[1:], start=2):
        if not any(cell.strip() for cell in line):
            continue
        if len(line) != len(header):
            raise InputError(f"--scenarios {path} line {number}: {len(line)} fields, expected {len(header)}.")
        try:
            values = [float(line[c]) for c in columns]
        except ValueError:
            raise InputError(f"--scenarios {path} line {number}: a factor is not a number.") from None
        if not all(np.isfinite(v) and v >= 0 for v in values):
            raise InputError(f"--scenarios {path} line {number}: factors must be finite and >= 0.")
        rows.append(values)
    if not rows:
        raise InputError(f"--scenarios {path} holds no scenario rows.")
    return np.array(rows)


def scaled_case(case: GoC1Case, factors: np.ndarray) -> GoC1Case:
    """``case`` with load d's Pd and Qd multiplied by ``factors[d]``."""
    loads = tuple(replace(d, pd_mw=d.pd_mw * u, qd_mvar=d.qd_mvar * u) for d, u in zip(case.network.loads, factors))
    return replace(case, network=replace(case.network, loads=loads))


# ---- tasks (run on the workers) ----------------------------------------------------------------

def _solve(case, net, formulation, min_frequency_hz, tol, dynamics, x0, simulate):
    from power.tscopf import build_tscopf, solve_tscopf

    problem = build_tscopf(case, net, formulation, "torch", "cpu", min_frequency_hz, x0)
    return solve_tscopf(problem, net, {"ipopt.tol": tol}, dynamics, simulate=simulate,
                        blas_threads=1 if formulation == "graybox" else None)


def nominal_task(case: GoC1Case, net: torch.nn.Module, formulation: str, min_frequency_hz: float, tol: float,
                 dynamics) -> dict:
    """The nominal loads' TSC-SCOPF from the SCOPF optimum: its solution and outcome."""
    from power.scopf import Scopf

    x0 = Scopf(case).solve().solution.x_vector
    result = _solve(case, net, formulation, min_frequency_hz, tol, dynamics, x0, simulate=False)
    return {"x": result.x_vector, "status": result.stats.status, "success": bool(result.stats.success),
            "objective": result.stats.objective}


def scenario_task(case: GoC1Case, net: torch.nn.Module, formulation: str, min_frequency_hz: float, tol: float,
                  dynamics, nominal: dict, factors: np.ndarray) -> dict:
    """One scenario's TSC-SCOPF from the nominal solution; its row (without the key)."""
    tic = time.perf_counter()
    scenario = scaled_case(case, factors)
    result = _solve(scenario, net, formulation, min_frequency_hz, tol, dynamics, nominal["x"], simulate=True)
    s = result.stats
    return {"load_mw": float(sum(d.pd_mw for d in scenario.network.loads if d.in_service)), "status": s.status,
            "success": bool(s.success), "objective": s.objective, "iterations": s.iterations,
            "min_nn_hz": float(np.min(result.nn_torch_hz)), "min_simulated_hz": float(np.min(result.simulated_hz)),
            "solve_s": time.perf_counter() - tic}


# ---- the sweep ---------------------------------------------------------------------------------

def sweep(out, case_spec: str, case: GoC1Case, net: torch.nn.Module, factors: np.ndarray, formulation: str,
          min_frequency_hz: float, tol: float, dynamics, source: dict, workers: int | None = None,
          scheduler: str | None = None, log=print):
    """Problem 8 for every scenario (row of ``factors``) missing from ``out``; returns (report,
    summary). ``source`` says where the factors came from (part of the settings)."""
    settings = {"problem": "tsc-scopf (paper problem 8)", "case": case.network.name, "case_spec": case_spec,
                "surrogate": fingerprint(net), "formulation": formulation, "min_frequency_hz": min_frequency_hz,
                "tol": tol, "dynamics": dynamics.describe(), **source}
    store = CsvStore(Path(out), COLUMNS, ("scenario",), settings)
    with sweep_client(workers, scheduler) as client:
        store.open()
        common = [shared(client, case), shared(client, net), formulation, min_frequency_hz, tol,
                  shared(client, dynamics)]
        missing = [k for k in range(len(factors)) if (k,) not in store]
        nominal = client.submit(nominal_task, *common, pure=False) if missing else None
        tasks = [((k,), (*common, nominal, factors[k])) for k in range(len(factors))]
        report = run_sweep(store, tasks, scenario_task, client, lambda key, row: {"scenario": key[0], **row}, log)
        outcome = nominal.result() if nominal is not None and nominal.status == "finished" else None
        if outcome is not None and not outcome["success"]:
            log(f"note: the nominal TSC-SCOPF ended with {outcome['status']}; the scenarios started from its "
                "last iterate.")
    summary = summarize(store, settings, report, outcome, len(factors))
    write_text_atomic(Path(out) / "summary.json", json.dumps(summary, indent=1) + "\n")
    plot(store, Path(out) / "scenarios.png", settings, len(factors))
    return report, summary


def summarize(store: CsvStore, settings: dict, report, nominal: dict | None, count: int) -> dict:
    rows = [r for r in store.sorted_rows() if r["scenario"] < count]
    ok = [r for r in rows if r["success"]]
    bound = settings["min_frequency_hz"]

    def spread(values):
        return {"min": min(values), "median": float(np.median(values)), "max": max(values)} if values else None

    return {
        "settings": settings, "scenarios": count, "rows": len(rows), "rows_added": report.added,
        "failed_tasks": [[list(k), e] for k, e in report.failed], "solved": len(ok),
        "nominal": None if nominal is None else {k: v for k, v in nominal.items() if k != "x"},
        "objective_usd_per_h": spread([r["objective"] for r in ok]),
        "min_nn_hz": spread([r["min_nn_hz"] for r in ok]),
        "min_simulated_hz": spread([r["min_simulated_hz"] for r in ok]),
        "frequency_bound_active": sum(abs(r["min_nn_hz"] - bound) < 1e-6 for r in ok),
        "this_run": {"seconds": report.seconds,
                     "rows_per_s": report.added / report.seconds if report.seconds > 0 else None},
    }


def plot(store: CsvStore, path: Path, settings: dict, count: int) -> None:
    """Cost and minimum frequency (surrogate, simulator) of the solved scenarios against load."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in store.sorted_rows() if r["scenario"] < count and r["success"]]
    load = np.array([r["load_mw"] for r in rows])
    fig, (cost, freq) = plt.subplots(2, 1, figsize=(6, 5.2), sharex=True)
    cost.plot(load, [r["objective"] for r in rows], "o", color="tab:blue", markersize=4)
    cost.set_ylabel("cost ($/h)")
    cost.set_title(f"{settings['case']}: TSC-SCOPF ({settings['formulation']}), {len(rows)} of {count} load "
                   "scenarios solved", fontsize=9)
    freq.plot(load, [r["min_nn_hz"] for r in rows], "o", color="tab:orange", markersize=4, label="surrogate")
    freq.plot(load, [r["min_simulated_hz"] for r in rows], "x", color="tab:green", markersize=4, label="simulator")
    freq.axhline(settings["min_frequency_hz"], color="black", linestyle="--", linewidth=1, label="bound")
    freq.set_ylabel("minimum frequency (Hz)")
    freq.set_xlabel("total load (MW)")
    freq.legend(fontsize=8)
    fig.tight_layout()
    with replaced_atomically(path) as tmp, open(tmp, "wb") as f:
        fig.savefig(f, format="png", dpi=120)
    plt.close(fig)


def factors_of(scenarios: str, case: GoC1Case, seed: int = 0, spread: float = SPREAD) -> tuple[np.ndarray, dict]:
    """``--scenarios N`` or ``FILE.csv`` as (factors, their source for the settings)."""
    if scenarios.strip().isdigit():
        count = int(scenarios)
        if count < 1:
            raise InputError(f"--scenarios {scenarios}: give a positive number of scenarios or a CSV file.")
        return drawn_factors(len(case.network.loads), count, seed, spread), {"seed": seed, "spread": spread}
    if not Path(scenarios).is_file():
        raise InputError(f"--scenarios {scenarios}: neither a number of scenarios nor a CSV file.")
    factors = read_factors(scenarios, case)
    return factors, {"factors_sha256": hashlib.sha256(factors.tobytes()).hexdigest()}


def main_sweep(args, case: GoC1Case, dynamics) -> int:
    """``python -m power.tscopf CASE --scenarios ...`` (arguments checked by the caller)."""
    import os

    from nncas.apps.sweep import check_workers
    from power.default_surrogate import ensure_surrogate
    from power.surrogate import load_surrogate

    workers = args.workers if args.workers is not None or args.scheduler else os.cpu_count() or 1
    check_workers(workers, args.scheduler)
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {out} is a file; give a folder.")
    factors, source = factors_of(args.scenarios, case)
    net, _ = load_surrogate(args.model) if args.model else ensure_surrogate(args.case)[:2]
    spec = args.case if args.case == "example" else str(Path(args.case).resolve())
    report, summary = sweep(out, spec, case, net, factors, args.formulation, args.min_frequency, args.tol,
                            dynamics, source, workers, args.scheduler)
    cost, low = summary["objective_usd_per_h"], summary["min_simulated_hz"]
    print(f"{summary['rows']} scenarios in {out} ({summary['solved']} solved): cost "
          + (f"{cost['min']:.2f}..{cost['max']:.2f} $/h, simulated minimum frequency {low['min']:.4f} Hz"
             if cost else "none") + f"; {report.added} solved in {report.seconds:.1f} s")
    if report.failed:
        print(f"{len(report.failed)} scenario(s) failed; run the same command again to retry them.", file=sys.stderr)
        return 1
    return 0
