r"""Transient-stability-constrained SCOPF (paper problem 8):
``python -m power.tscopf CASE --model M.h5 --formulation full|reduced|graybox``.

    min  cost(pg_0)
    s.t. the GO Challenge 1 SCOPF of ``power.scopf`` (base case and contingency networks),
         NN(pg_0 [MW], qg_0 [MVAr], pd [MW]) >= f_min   at every bus   (f_min = 59.4 Hz),

where NN is a frequency surrogate (``power.surrogate``: minimum frequency in Hz per bus after the
contingency) embedded by ``nncas.add_predictor`` as a full-space, reduced-space or gray-box
constraint.  The SCOPF (CasADi SX, built by :class:`power.scopf.Scopf`) becomes one function
x -> (f, g, NN inputs) called on a single ``casadi.Opti`` vector variable x, so the network
formulations of ``nncas`` apply unchanged; ``nncas.solver`` supplies the exact Hessian.

After the solve the constraint is checked again with plain torch at the solution's inputs and
with the simulator (``power.dynamics``) at the solution's base-case power flow.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass

import casadi as ca
import numpy as np
import torch

import nncas
from power.dynamic_data import dynamic_data_for, load_case, tripped_generator
from power.dynamics import OperatingPoint, simulate_trip
from power.errors import CaseDataError
from power.psse import GoC1Case
from power.results import write_json_atomic
from power.scopf import Scopf

MIN_FREQUENCY_HZ = 59.4
IPOPT_OPTIONS = {"ipopt.print_level": 0, "print_time": False, "ipopt.sb": "yes", "ipopt.max_iter": 3000}


@dataclass
class TscopfHandles:
    """What :func:`build_tscopf` created inside the Opti problem."""

    scopf: Scopf
    x: ca.MX  # the SCOPF's variables, one Opti vector (blocks: scopf.nlp.x_slices)
    inputs: ca.MX  # NN inputs: pg (MW), qg (MVAr), pd (MW), sorted by bus
    frequency_hz: ca.MX  # NN outputs: minimum frequency per bus
    form: nncas.Formulation
    min_frequency_hz: float
    build_time_s: float


def build_tscopf(case: GoC1Case, net: torch.nn.Module, formulation: str = "reduced",
                 backend: str = "torch", device: str = "cpu", min_frequency_hz: float | None = MIN_FREQUENCY_HZ,
                 x0: np.ndarray | None = None, **oracle_options) -> tuple[ca.Opti, TscopfHandles]:
    """The problem of the module doc as a ``casadi.Opti`` (objective, constraints, start point);
    ``min_frequency_hz=None`` embeds the network without the frequency bound; ``x0`` replaces the
    SCOPF's start point (mid-range dispatch, flat voltages), e.g. by a previous solution's
    ``TscopfResult.x_vector``.  Solve with :func:`solve_tscopf`, or
    ``nncas.solver(opti, "ipopt", options); opti.solve()``."""
    start = time.perf_counter()
    scopf = Scopf(case)
    nlp = scopf.nlp
    problem = nlp.nlp()
    inputs_sx = ca.vertcat(scopf.pg_mw_by_bus, scopf.qg_mvar_by_bus, scopf.pd_mw_by_bus)
    parts = ca.Function("scopf", [problem["x"]], [problem["f"], problem["g"], inputs_sx])
    n_in = inputs_sx.shape[0]
    _check_network(net, n_in, scopf.pu.n_bus)

    opti = ca.Opti()
    x = opti.variable(problem["x"].shape[0])
    f, g, inputs = parts(x)
    inputs = ca.densify(inputs)  # offline units are structural zeros; add_predictor needs dense values
    opti.minimize(f)
    b = nlp.bounds()
    _bounded(opti, x, b["lbx"], b["ubx"])
    _bounded(opti, g, b["lbg"], b["ubg"])
    opti.set_initial(x, b["x0"] if x0 is None else x0)
    frequency, form = nncas.add_predictor(opti, net, inputs, formulation=formulation, backend=backend,
                                          device=device, **oracle_options)
    if min_frequency_hz is not None:
        opti.subject_to(frequency >= min_frequency_hz)
    return opti, TscopfHandles(scopf, x, inputs, frequency, form, min_frequency_hz,
                               time.perf_counter() - start)


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


def _bounded(opti: ca.Opti, expr, lb: np.ndarray, ub: np.ndarray) -> None:
    """lb <= expr <= ub row by row: equalities, two-sided, one-sided; free rows skipped."""
    lo, hi = np.isfinite(lb), np.isfinite(ub)
    groups = (
        (lo & hi & (lb == ub), lambda e, l, u: e == l),
        (lo & hi & (lb != ub), lambda e, l, u: opti.bounded(l, e, u)),
        (lo & ~hi, lambda e, l, u: e >= l),
        (~lo & hi, lambda e, l, u: e <= u),
    )
    for rows, relation in groups:
        idx = np.flatnonzero(rows).tolist()
        if idx:
            opti.subject_to(relation(expr[idx], ca.DM(lb[idx]), ca.DM(ub[idx])))


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


def solve_tscopf(opti: ca.Opti, handles: TscopfHandles, net: torch.nn.Module, options: dict | None = None,
                 dynamics=None, simulate: bool = True) -> TscopfResult:
    """Solve, then re-check the frequency constraint with torch and (``simulate``) the simulator;
    ``dynamics`` is a :class:`power.dynamic_data.DynamicData` (default: the case's)."""
    setup = nncas.solver(opti, "ipopt", {**IPOPT_OPTIONS, **(options or {})})
    try:
        sol = opti.solve()
    except RuntimeError:
        sol = None  # IPOPT failed; report the last iterate
    stats = nncas.problem_stats(opti, sol)
    value = (sol or opti.debug).value
    x_vec = np.asarray(value(handles.x)).ravel()
    inputs = np.asarray(value(handles.inputs)).ravel()
    in_problem = np.asarray(value(handles.frequency_hz)).ravel()
    dtype = next(net.parameters()).dtype
    with torch.no_grad():
        torch_hz = net(torch.as_tensor(inputs, dtype=dtype)[None, :])[0].to(torch.float64).numpy()
    scopf = handles.scopf
    blocks = {name: x_vec[s] for name, s in scopf.nlp.x_slices.items()}
    simulated = None
    if simulate:
        case = scopf.case
        point = OperatingPoint(blocks["base.vm_pu"], blocks["base.va_rad"], blocks["base.pg_pu"],
                               blocks["base.qg_pu"])
        data = dynamics if dynamics is not None else dynamic_data_for(case.network)
        simulated = simulate_trip(scopf.pu, data, point, tripped_generator(case)).nadir_hz
    return TscopfResult(stats, handles.build_time_s, setup, blocks, x_vec, inputs, in_problem, torch_hz, simulated,
                        scopf.pu.bus_number, handles.min_frequency_hz)


def main(argv: list[str] | None = None) -> int:
    from power.surrogate import load_surrogate

    parser = argparse.ArgumentParser(prog="python -m power.tscopf", description=__doc__.split("\n\n")[0])
    parser.add_argument("case", help="'example' or a folder with one .raw/.rop/.inl/.con each")
    parser.add_argument("--model", required=True, help="surrogate HDF5 file (python -m power.surrogate)")
    parser.add_argument("--formulation", choices=("full", "reduced", "graybox"), default="reduced")
    parser.add_argument("--backend", choices=("torch", "l4casadi"), default="torch", help="gray box only")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu", help="gray box only")
    parser.add_argument("--min-frequency", type=float, default=MIN_FREQUENCY_HZ, help="Hz (default 59.4)")
    parser.add_argument("--dynamics", help="JSON dynamic-data overrides for the simulator check")
    parser.add_argument("--tol", type=float, default=1e-8, help="IPOPT tolerance")
    parser.add_argument("--warm-start", action="store_true",
                        help="start from the SCOPF optimum without the frequency constraint")
    parser.add_argument("--json", help="write the result here (atomically)")
    args = parser.parse_args(argv)
    try:
        case = load_case(args.case)
        net, meta = load_surrogate(args.model)
        dynamics = dynamic_data_for(case.network, args.dynamics)
        x0 = Scopf(case).solve().solution.x_vector if args.warm_start else None
        opti, handles = build_tscopf(case, net, args.formulation, args.backend, args.device, args.min_frequency, x0)
        result = solve_tscopf(opti, handles, net, {"ipopt.tol": args.tol}, dynamics)
    except (CaseDataError, OSError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    s = result.stats
    print(f"case: {case.network.name}, surrogate width {meta['width']} ({s.n_variables} variables, "
          f"{s.n_constraints} constraints), {args.formulation}"
          + (f" ({args.backend}, {args.device})" if args.formulation == "graybox" else ""))
    print(f"status: {s.status}")
    print(f"objective: {s.objective:.6f} $/h")
    print(f"iterations: {s.iterations}")
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
    return 0 if s.success else 1


if __name__ == "__main__":
    sys.exit(main())
