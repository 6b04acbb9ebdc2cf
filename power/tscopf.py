r"""Transient-stability-constrained SCOPF (paper problem 8):
``python -m power.tscopf CASE [--model M.h5] --formulation full|reduced|graybox``.

    min  cost(pg_0)
    s.t. the GO Challenge 1 SCOPF of ``power.scopf`` (base case and contingency networks),
         NN(pg_0 [MW], qg_0 [MVAr], pd [MW]) >= f_min   at every bus   (f_min = 59.4 Hz),

where NN is a frequency surrogate (``power.surrogate``: minimum frequency in Hz per bus after the
contingency) embedded by ``nncas.embed`` as a full-space, reduced-space or gray-box
constraint.  The SCOPF (CasADi SX, built by :class:`power.scopf.Scopf`) becomes one function
x -> (f, g, NN inputs) called on an MX vector x, so the network formulations of ``nncas`` apply
unchanged; the nlp dict goes to ``nncas.nlpsol`` (exact Hessian, fast construction).

After the solve the constraint is checked again with plain torch at the solution's inputs and
with the simulator (``power.dynamics``) at the solution's base-case power flow.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from dataclasses import dataclass

import casadi as ca
import numpy as np
import torch

import nncas
from nncas.apps.cli import BAD_INPUT, ArgumentParser, fail, raise_if_interrupted, run_main
from nncas.apps.storage import check_output_path
from nncas.threads import casadi_blas_threads_set
from power.dynamic_data import dynamic_data_for, load_case, tripped_generator
from power.dynamics import OperatingPoint, simulate_trip
from power.psse import GoC1Case
from power.results import write_json_atomic
from power.scopf import Scopf

MIN_FREQUENCY_HZ = 59.4
#: the embedded 3-bus example's frequencies lie near 59.0 Hz: a bound that is active and reachable
#: (warm-started, the example's default, all three formulations reach 3039.39 $/h on the default surrogate)
EXAMPLE_MIN_FREQUENCY_HZ = 59.02
#: IPOPT's tolerance (--tol's default); l4casadi's float32 outputs near 59 Hz are resolved to
#: 2**-18 = 3.8e-6 Hz, so IPOPT's primal error cannot fall below ~1e-6 and 1e-8 is never reached
TOL = 1e-8
TOL_FLOAT32 = 1e-4
IPOPT_OPTIONS = {"ipopt.print_level": 0, "print_time": False, "ipopt.sb": "yes", "ipopt.max_iter": 3000}
WARM_START_OPTIONS = {"ipopt.bound_push": 1e-8, "ipopt.bound_frac": 1e-8}


@dataclass
class TscopfProblem:
    """The problem of the module doc as an nlp dict for ``nncas.nlpsol`` (or ``casadi.nlpsol``).

    ``nlp`` holds ``x`` (the SCOPF's variables, then the embedding's), ``f`` and ``g`` (the
    SCOPF's rows, the embedding's, then the frequency bound); ``args`` the solver's ``x0, lbx,
    ubx, lbg, ubg``.
    """

    scopf: Scopf
    nlp: dict
    args: dict
    x: ca.MX  # the SCOPF's variables (blocks: scopf.nlp.x_slices)
    inputs: ca.MX  # NN inputs: pg (MW), qg (MVAr), pd (MW), sorted by bus
    frequency_hz: ca.MX  # NN outputs: minimum frequency per bus
    embedding: nncas.Embedding
    min_frequency_hz: float | None
    build_time_s: float
    warm_start: bool = False  # x0 given (a previous solution), not the SCOPF's default start

    def value(self, expression, solution_x: np.ndarray) -> np.ndarray:
        """``expression`` (of the nlp's variables) at the solver's ``x``."""
        return np.asarray(ca.Function("value", [self.nlp["x"]], [expression])(solution_x)).ravel()


def build_tscopf(case: GoC1Case, net: torch.nn.Module, formulation: str = "reduced",
                 backend: str = "torch", device: str = "cpu", min_frequency_hz: float | None = MIN_FREQUENCY_HZ,
                 x0: np.ndarray | None = None, **oracle_options) -> TscopfProblem:
    """The problem of the module doc; ``min_frequency_hz=None`` embeds the network without the
    frequency bound; ``x0`` replaces the SCOPF's start point (mid-range dispatch, flat voltages),
    e.g. by a previous solution's ``TscopfResult.x_vector``. Solve with :func:`solve_tscopf`."""
    start = time.perf_counter()
    scopf = Scopf(case)
    problem = scopf.nlp.nlp()
    inputs_sx = ca.vertcat(scopf.pg_mw_by_bus, scopf.qg_mvar_by_bus, scopf.pd_mw_by_bus)
    parts = ca.Function("scopf", [problem["x"]], [problem["f"], problem["g"], inputs_sx])
    n_in = inputs_sx.shape[0]
    _check_network(net, n_in, scopf.pu.n_bus)

    x = ca.MX.sym("x", problem["x"].shape[0])
    f, g, inputs = parts(x)
    inputs = ca.densify(inputs)  # offline units are structural zeros
    b = scopf.nlp.bounds()
    x_start = b["x0"] if x0 is None else np.asarray(x0, dtype=float)
    inputs_start = np.asarray(ca.Function("inputs", [x], [inputs])(x_start)).ravel()
    # problem 8 keeps the gray box's y variables: on Hawaii 37 that took 269 iterations / 5.5 s
    # against 305 / 6.7 s as an expression (docs/kkt.md)
    if formulation == "graybox":
        oracle_options = {"graybox_output": "variables", **oracle_options}
    embedding = nncas.embed(net, inputs, formulation=formulation, backend=backend, device=device,
                            x0=inputs_start, **oracle_options)
    rows = [(g, b["lbg"], b["ubg"]), (embedding.g, embedding.lbg, embedding.ubg)]
    if min_frequency_hz is not None:
        n_bus = embedding.n_out
        rows.append((embedding.y, np.full(n_bus, min_frequency_hz), np.full(n_bus, np.inf)))
    nlp = {"x": ca.vertcat(x, embedding.w), "f": f, "g": ca.vertcat(*[r[0] for r in rows])}
    args = {"x0": np.concatenate([x_start, embedding.w0]), "lbx": np.concatenate([b["lbx"], embedding.lbw]),
            "ubx": np.concatenate([b["ubx"], embedding.ubw]),
            "lbg": np.concatenate([r[1] for r in rows]), "ubg": np.concatenate([r[2] for r in rows])}
    return TscopfProblem(scopf, nlp, args, x, inputs, embedding.y, embedding, min_frequency_hz,
                         time.perf_counter() - start, warm_start=x0 is not None)


def _check_network(net: torch.nn.Module, n_in: int, n_bus: int) -> None:
    probe = torch.zeros(1, n_in, dtype=next(net.parameters()).dtype)
    try:
        with torch.no_grad():
            n_out = net(probe).shape[-1]
    except RuntimeError as err:
        raise ValueError(f"the surrogate does not take this case's {n_in} inputs "
                         f"(Pg, Qg of every generator, Pd of every load): {err}") from err
    if n_out != n_bus:
        raise ValueError(f"the surrogate has {n_out} outputs but the case has {n_bus} buses; "
                         "train it on samples of this case (python -m power.sample, power.surrogate).")


@dataclass
class TscopfResult:
    stats: nncas.ProblemStats
    build_time_s: float
    solver_setup_s: float
    x: dict[str, np.ndarray]  # SCOPF blocks at the solution
    x_vector: np.ndarray
    inputs: np.ndarray
    nn_in_problem_hz: np.ndarray  # the embedded network's output at the solution
    nn_torch_hz: np.ndarray  # plain torch at the solution's inputs
    simulated_hz: np.ndarray | None  # power.dynamics at the solution's base case
    bus_number: np.ndarray
    min_frequency_hz: float | None

    def to_json(self) -> dict:
        def low(a):
            return None if a is None else float(np.min(a))

        return {
            "status": self.stats.status, "success": self.stats.success, "objective_usd_per_h": self.stats.objective,
            "iterations": self.stats.iterations, "build_time_s": self.build_time_s,
            "solver_setup_s": self.solver_setup_s, "solve_time_s": self.stats.total_s,
            "stats": self.stats.as_dict(), "min_frequency_hz": self.min_frequency_hz,
            "min_nn_in_problem_hz": low(self.nn_in_problem_hz), "min_nn_torch_hz": low(self.nn_torch_hz),
            "min_simulated_hz": low(self.simulated_hz),
            "bus_number": self.bus_number.tolist(), "nn_torch_hz": self.nn_torch_hz.tolist(),
            "simulated_hz": None if self.simulated_hz is None else self.simulated_hz.tolist(),
            "inputs": self.inputs.tolist(),
        }


def solve_tscopf(problem: TscopfProblem, net: torch.nn.Module, options: dict | None = None,
                 dynamics=None, simulate: bool = True, blas_threads: int | None = None,
                 hessian: str = "exact") -> TscopfResult:
    """Solve with ``nncas.nlpsol``, then re-check the frequency constraint with torch and
    (``simulate``) the simulator; ``dynamics`` is a :class:`power.dynamic_data.DynamicData`
    (default: the case's); ``blas_threads``: CasADi's BLAS threads during the solve (:func:`nncas.threads.casadi_blas_threads_set`);
    ``hessian``: :func:`nncas.nlpsol`'s Hessian route."""
    # IPOPT moves a start point bound_push into its bounds; a previous solution sits on them
    warm = WARM_START_OPTIONS if problem.warm_start else {}
    started = time.perf_counter()
    solver = nncas.nlpsol("tscopf", "ipopt", problem.nlp,
                          {**IPOPT_OPTIONS, **warm, "record_time": True, **(options or {})}, hessian=hessian)
    setup = time.perf_counter() - started
    with casadi_blas_threads_set(blas_threads):
        result = solver(**problem.args)  # a failed solve returns IPOPT's last iterate
    raise_if_interrupted(solver.stats()["return_status"])  # Ctrl-C is no result
    stats = nncas.problem_stats(solver, result)
    solution = np.asarray(result["x"]).ravel()
    x_vec = problem.value(problem.x, solution)
    inputs = problem.value(problem.inputs, solution)
    in_problem = problem.value(problem.frequency_hz, solution)
    dtype = next(net.parameters()).dtype
    with torch.no_grad():
        torch_hz = net(torch.as_tensor(inputs, dtype=dtype)[None, :])[0].to(torch.float64).numpy()
    scopf = problem.scopf
    blocks = {name: x_vec[s] for name, s in scopf.nlp.x_slices.items()}
    simulated = None
    if simulate:
        case = scopf.case
        point = OperatingPoint(blocks["base.vm_pu"], blocks["base.va_rad"], blocks["base.pg_pu"],
                               blocks["base.qg_pu"])
        data = dynamics if dynamics is not None else dynamic_data_for(case.network)
        simulated = simulate_trip(scopf.pu, data, point, tripped_generator(case)).nadir_hz
    return TscopfResult(stats, problem.build_time_s, setup, blocks, x_vec, inputs, in_problem, torch_hz, simulated,
                        scopf.pu.bus_number, problem.min_frequency_hz)


def check_arguments(args) -> None:
    """Refuse settings that make no sense, before any sampling, training or solving."""
    if not (math.isfinite(args.min_frequency) and args.min_frequency > 0):
        raise ValueError(f"--min-frequency must be a positive number of Hz, got {args.min_frequency}.")
    if args.tol is not None and not (math.isfinite(args.tol) and args.tol > 0):
        raise ValueError(f"--tol must be a positive tolerance (e.g. 1e-8), got {args.tol}.")
    if args.formulation != "graybox" and (args.backend, args.device) != ("torch", "cpu"):
        raise ValueError("--backend and --device apply to --formulation graybox only.")
    if args.json:
        check_output_path(args.json, "--json")
    if args.scenarios is None and (args.out, args.workers, args.scheduler) != (None, None, None):
        raise ValueError("--out, --workers and --scheduler apply to --scenarios only.")
    if args.scenarios is not None and (args.out is None or args.json or args.warm_start):
        raise ValueError("--scenarios needs --out (and takes no --json; it starts from the nominal solution "
                         "without --warm-start).")


def main(argv: list[str] | None = None) -> int:
    from power.default_surrogate import ensure_surrogate
    from power.surrogate import load_surrogate

    parser = ArgumentParser(prog="python -m power.tscopf", description=__doc__.split("\n\n")[0])
    parser.add_argument("case", help="'example' or a folder with one .raw/.rop/.inl/.con each")
    parser.add_argument("--model", help="surrogate HDF5 file (python -m power.surrogate); default: a "
                        "width-100 surrogate of the case, trained once and cached (power.default_surrogate)")
    parser.add_argument("--formulation", choices=("full", "reduced", "graybox"), default="reduced",
                        help="how the surrogate enters the NLP (default: reduced)")
    parser.add_argument("--backend", choices=("torch", "l4casadi"), default="torch",
                        help="gray box only: torch (float64) or l4casadi (float32) (default: torch)")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu", help="gray box only (default: cpu)")
    parser.add_argument("--min-frequency", type=float,
                        help=f"Hz (default {MIN_FREQUENCY_HZ}; {EXAMPLE_MIN_FREQUENCY_HZ} for the example)")
    parser.add_argument("--dynamics", help="JSON dynamic-data overrides for the simulator check (default: none)")
    parser.add_argument("--tol", type=float, help=f"IPOPT tolerance (default {TOL}; {TOL_FLOAT32} with "
                        "--backend l4casadi, whose float32 outputs resolve 59 Hz to 4e-6 Hz)")
    parser.add_argument("--warm-start", action=argparse.BooleanOptionalAction,
                        help="start from the SCOPF optimum without the frequency constraint (default: on for "
                        "the example with the torch backend, whose default start point can end infeasible; off otherwise)")
    parser.add_argument("--json", help="write the result here (atomically; default: not written)")
    parser.add_argument("--scenarios", help="solve for N seeded load scenarios, or for the load factors in a "
                        "CSV file (power.scenarios), from the nominal solution; needs --out")
    parser.add_argument("--out", help="folder of the scenario sweep (results.csv, summary.json, scenarios.png)")
    parser.add_argument("--workers", type=int, help="scenarios: a LocalCluster of this many worker processes "
                        "(default: one per core)")
    parser.add_argument("--scheduler", help="scenarios: address of a running dask scheduler")
    args = parser.parse_args(argv)
    if args.min_frequency is None:
        args.min_frequency = EXAMPLE_MIN_FREQUENCY_HZ if args.case == "example" else MIN_FREQUENCY_HZ
    if args.tol is None:
        args.tol = TOL_FLOAT32 if args.backend == "l4casadi" else TOL
    if args.warm_start is None:
        args.warm_start = args.case == "example" and args.backend == "torch" and args.scenarios is None
    try:
        check_arguments(args)
        case = load_case(args.case)
        dynamics = dynamic_data_for(case.network, args.dynamics)
        if not args.min_frequency < dynamics.f0_hz:
            raise ValueError(f"--min-frequency {args.min_frequency} Hz is not below the system's nominal "
                             f"{dynamics.f0_hz} Hz.")
        if args.scenarios is not None:
            from power.scenarios import main_sweep
            return main_sweep(args, case, dynamics)
        net, meta = load_surrogate(args.model) if args.model else ensure_surrogate(args.case)[:2]
        x0 = Scopf(case).solve().solution.x_vector if args.warm_start else None
        problem = build_tscopf(case, net, args.formulation, args.backend, args.device, args.min_frequency, x0)
        cpu_graybox = args.formulation == "graybox" and args.device == "cpu"
        result = solve_tscopf(problem, net, {"ipopt.tol": args.tol}, dynamics, blas_threads=1 if cpu_graybox else None)
    except BAD_INPUT as err:
        return fail(parser, err, args.debug)
    s = result.stats
    print(f"case: {case.network.name}, surrogate width {meta['width']} ({s.n_variables} variables, "
          f"{s.n_constraints} constraints), {args.formulation}"
          + (f" ({args.backend}, {args.device})" if args.formulation == "graybox" else ""))
    print(f"status: {s.status}")
    print(f"objective: {s.objective:.6f} $/h")
    print(f"iterations: {s.iterations}" + (f" (KKT matrix: {s.linear_solver})" if s.linear_solver else ""))
    print(f"time: {s.total_s:.3f} s solve, {result.solver_setup_s:.3f} s solver setup, "
          f"{result.build_time_s:.3f} s build")
    print("breakdown: " + ", ".join(f"{k} {getattr(s, k + '_s'):.3f} s ({v:.0%})" for k, v in s.shares().items()))
    print(f"min frequency (Hz): bound {args.min_frequency}, surrogate in problem "
          f"{result.nn_in_problem_hz.min():.4f}, plain torch {result.nn_torch_hz.min():.4f}, "
          f"simulator {result.simulated_hz.min():.4f}")
    if args.json:
        write_json_atomic(args.json, {"case": case.network.name, "formulation": args.formulation,
                                      "backend": args.backend, "device": args.device,
                                      "model": {k: meta[k] for k in ("width", "hidden_layers", "n_parameters",
                                                                      "data_source")},
                                      **result.to_json()})
        print(f"result: {args.json}")
    return 0 if s.success else 1


if __name__ == "__main__":
    # run the imported module, whose functions dask's workers unpickle by name (--scenarios)
    from power import tscopf
    sys.exit(run_main(tscopf.main, "finished scenarios are saved; run the same command again to go on."))
