"""Training data for the frequency surrogate: ``python -m power.sample CASE OUT.h5 -n N``.

Sample k draws, with a generator seeded by (seed, k), factors u ~ U[1 - s, 1 + s] (s = 0.1):
targets Pg* = u Pg_nom and Qg* = u' Qg_nom for every online generator, and loads
Pd = u'' Pd_nom, Qd = u'' Qd_nom.  The nominal dispatch is the base-case AC-OPF optimum
(``--nominal opf``, the default: the region the TSC-SCOPF explores) or the case file's
Pg, Qg (``--nominal case``); nominal loads are the file's.  With ``--qg limits`` the Qg target of
every online unit is instead drawn uniformly in [Qmin, Qmax], so the surrogate also sees reactive
dispatches far from the nominal ones (the draws of Pg and loads are unchanged).  With ``--qg
edges`` it is Qmin or Qmax with chance 1/4 each and uniform in between otherwise: an optimizer
that games the surrogate through Qg drives many units to their reactive limits at once, a region
that uniform draws in a 45-dimensional box almost never reach (``docs/power_transient.md``).  A power flow
makes the sample physical: the AC power-flow point closest to the targets,

    min sum_g (pg - pg*)^2 + (qg - qg*)^2   s.t. AC power balance, pmin <= pg <= pmax,
                                                 qmin <= qg <= qmax, vmin <= vm <= vmax

(IPOPT), then :func:`power.dynamics.simulate_trip` gives the minimum frequency at every bus
after the case's generator contingency.  Inputs are the surrogate's: Pg (MW), Qg (MVAr) of all
generators and Pd (MW) of all loads, each sorted by bus as ``power.scopf.Scopf`` orders them
(offline units 0); outputs are the minimum frequencies (Hz) per bus.

Samples go to HDF5 in batches; every batch is written to a copy of the file that then replaces
it (``os.replace``), so an interrupted run leaves only whole samples, and running the same
command again computes only the missing ones.  The map step runs on a process pool
(``--workers``) or on a dask.distributed cluster (``--scheduler ADDRESS``; the workers must
see the case folder under the same path).
"""

from __future__ import annotations

import json
import math
import os
import sys
from contextlib import closing, nullcontext
from dataclasses import asdict, dataclass, replace
from functools import lru_cache
from multiprocessing import get_context
from pathlib import Path

import casadi as ca
import h5py
import numpy as np

from nncas.apps.cli import BAD_INPUT, ArgumentParser, check_interrupt, fail, run_main
from nncas.apps.storage import check_output_path, replaced_atomically
from nncas.apps.sweep import Progress, connect, interrupts_ignored, stream
from power.acopf import AcOpf, add_ac_network
from power.dynamic_data import dynamic_data_for, load_case, tripped_generator
from power.dynamics import OperatingPoint, simulate_trip
from power.network import Network, per_unit
from power.nlp import NlpBuilder

FORMAT = "nncas-frequency-samples/1"
QG_DRAWS = ("scaled", "limits", "edges")
#: with --qg edges, the chance that a unit's Qg target sits at Qmin, and again at Qmax
EDGE_CHANCE = 0.25


@dataclass(frozen=True)
class SampleConfig:
    """What a sample depends on (stored in the file; a resumed run must match)."""

    case: str  # "example" or a case folder
    dynamics: str | None = None  # JSON overrides (power.dynamic_data)
    seed: int = 0
    spread: float = 0.1
    t_end_s: float = 30.0
    dt_s: float = 0.01
    nominal: str = "opf"  # "opf" or "case"
    qg: str = "scaled"  # "scaled" (u' Qg_nom), "limits" (U[Qmin, Qmax]) or "edges" (see module doc)

    def __post_init__(self):
        """Refuse settings that would simulate nothing, before any file is touched."""
        for name, value in (("t_end_s", self.t_end_s), ("dt_s", self.dt_s)):
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a positive number of seconds, got {value!r}.")
        if self.dt_s > self.t_end_s:
            raise ValueError(f"dt_s = {self.dt_s} s exceeds t_end_s = {self.t_end_s} s; take a step "
                             "below the simulated time (e.g. 0.01 s).")
        if not (math.isfinite(self.spread) and 0 <= self.spread < 1):
            raise ValueError(f"spread must be a fraction in [0, 1), got {self.spread!r}.")
        if self.seed < 0:
            raise ValueError(f"seed must be >= 0, got {self.seed!r}.")
        if self.nominal not in ("opf", "case"):
            raise ValueError(f"nominal must be 'opf' or 'case', got {self.nominal!r}.")
        if self.qg not in QG_DRAWS:
            raise ValueError(f"qg must be one of {QG_DRAWS}, got {self.qg!r}.")

    def to_json(self) -> str:
        """The file's ``config`` attribute; ``qg`` only when not the default, so files made
        before the option existed still match."""
        fields = asdict(self)
        if fields["qg"] == "scaled":
            del fields["qg"]
        return json.dumps(fields, sort_keys=True)


@dataclass(frozen=True)
class Sample:
    index: int
    ok: bool  # power flow converged
    inputs: np.ndarray
    outputs: np.ndarray


class Sampler:
    """Draws and evaluates samples of one case (see the module doc)."""

    def __init__(self, config: SampleConfig):
        self.config = config
        case = load_case(config.case)
        self.net: Network = case.network
        self.qmin = np.array([g.qmin_mvar for g in self.net.generators])
        self.qmax = np.array([g.qmax_mvar for g in self.net.generators])
        online = np.array([g.in_service for g in self.net.generators], dtype=bool)
        unbounded = online & ~(np.isfinite(self.qmin) & np.isfinite(self.qmax))
        if config.qg in ("limits", "edges") and unbounded.any():
            names = [f"{g.bus}/{g.id}" for g, u in zip(self.net.generators, unbounded) if u]
            raise ValueError(f"--qg {config.qg} needs finite reactive limits; unit(s) {', '.join(names)} "
                             f"of {self.net.name} have none.")
        self.pg_nominal = np.array([g.pg_mw for g in self.net.generators])
        self.qg_nominal = np.array([g.qg_mvar for g in self.net.generators])
        if config.nominal == "opf":
            opf = AcOpf(self.net).solve()
            if not opf.success:
                raise ValueError(f"the AC-OPF of {self.net.name} failed ({opf.status}); use --nominal case.")
            records = per_unit(self.net).gen_record
            self.pg_nominal[records], self.qg_nominal[records] = opf.pg_mw, opf.qg_mvar
        self.data = dynamic_data_for(self.net, config.dynamics)
        self.trip = tripped_generator(case)
        net = self.net
        self.gen_order = np.argsort([g.bus for g in net.generators], kind="stable")
        self.load_order = np.argsort([d.bus for d in net.loads], kind="stable")
        self.bus_number = per_unit(net).bus_number
        gens, loads = net.generators, net.loads
        self.input_names = ([f"pg_mw[{gens[i].bus}/{gens[i].id}]" for i in self.gen_order]
                            + [f"qg_mvar[{gens[i].bus}/{gens[i].id}]" for i in self.gen_order]
                            + [f"pd_mw[{loads[i].bus}/{loads[i].id}]" for i in self.load_order])

    @property
    def n_inputs(self) -> int:
        return len(self.input_names)

    def draw(self, index: int) -> tuple[Network, np.ndarray, np.ndarray]:
        """Network with drawn loads, and the Pg, Qg targets (MW, MVAr, all generators)."""
        rng = np.random.default_rng([self.config.seed, index])
        s = self.config.spread
        net = self.net
        u_pg, u_qg = (rng.uniform(1 - s, 1 + s, len(net.generators)) for _ in range(2))
        u_load = rng.uniform(1 - s, 1 + s, len(net.loads))
        loads = tuple(replace(d, pd_mw=d.pd_mw * u, qd_mvar=d.qd_mvar * u) for d, u in zip(net.loads, u_load))
        pg = self.pg_nominal * u_pg
        qg = self.qg_nominal * u_qg
        if self.config.qg != "scaled":  # drawn after the others, which therefore stay the same
            finite = np.isfinite(self.qmin) & np.isfinite(self.qmax)  # offline units may lack limits
            low, high = np.where(finite, self.qmin, 0), np.where(finite, self.qmax, 0)
            drawn = rng.uniform(low, high)
            if self.config.qg == "edges":
                side = rng.uniform(size=drawn.size)
                drawn = np.where(side < EDGE_CHANCE, low, np.where(side > 1 - EDGE_CHANCE, high, drawn))
            qg = np.where(finite, drawn, qg)
        return replace(net, loads=loads), pg, qg

    def evaluate(self, index: int) -> Sample:
        net, pg_target, qg_target = self.draw(index)
        pu = per_unit(net)
        point, ok = power_flow(net, pg_target, qg_target)
        n_out = len(self.bus_number)
        if not ok:
            return Sample(index, False, np.full(self.n_inputs, np.nan), np.full(n_out, np.nan))
        response = simulate_trip(pu, self.data, point, self.trip, self.config.t_end_s, self.config.dt_s)
        base = pu.base_mva
        pg_all, qg_all = np.zeros(len(net.generators)), np.zeros(len(net.generators))
        pg_all[pu.gen_record] = base * point.pg_pu
        qg_all[pu.gen_record] = base * point.qg_pu
        pd_all = np.array([d.pd_mw if d.in_service else 0.0 for d in net.loads])
        inputs = np.concatenate((pg_all[self.gen_order], qg_all[self.gen_order], pd_all[self.load_order]))
        return Sample(index, True, inputs, response.nadir_hz)


def power_flow(net: Network, pg_target_mw: np.ndarray, qg_target_mvar: np.ndarray
               ) -> tuple[OperatingPoint, bool]:
    """The AC power-flow point nearest the targets (module doc); targets per generator of ``net``."""
    pu = per_unit(net)
    base = pu.base_mva
    target_p = pg_target_mw[pu.gen_record] / base
    target_q = qg_target_mvar[pu.gen_record] / base
    nlp = NlpBuilder()
    pg = nlp.variable("pg_pu", len(target_p), pu.pmin, pu.pmax, target_p)
    qg = nlp.variable("qg_pu", len(target_q), pu.qmin, pu.qmax, target_q)
    add_ac_network(nlp, pu, "pf", pg, qg, np.full(len(pu.from_bus), np.inf))
    nlp.minimize(ca.sumsqr(pg - target_p) + ca.sumsqr(qg - target_q))
    sol = nlp.solve({"ipopt.tol": 1e-9})
    point = OperatingPoint(sol.x["pf.vm_pu"], sol.x["pf.va_rad"], sol.x["pg_pu"], sol.x["qg_pu"])
    return point, sol.success


@lru_cache(maxsize=4)
def _sampler(config: SampleConfig) -> Sampler:
    return Sampler(config)


def evaluate_sample(config: SampleConfig, index: int) -> Sample:
    """One sample (the map step); the sampler is built once per process."""
    return _sampler(config).evaluate(index)


def _evaluate_star(args):
    return evaluate_sample(*args)


# ---- storage ---------------------------------------------------------------------------------

def open_sample_file(path: Path, config: SampleConfig, sampler: Sampler) -> np.ndarray:
    """Create ``path`` for ``config`` or check that it was made with it; return done indices."""
    meta = {"format": FORMAT, "config": config.to_json()}
    if path.exists():
        try:
            with h5py.File(path, "r") as f:
                found = {k: f.attrs.get(k) for k in meta}
                done = f["index"][()]
        except (OSError, KeyError) as err:
            raise ValueError(f"{path} is not a sample file ({err}); choose another output path.") from err
        if found != meta:
            raise ValueError(f"{path} holds samples made with {found['config']}, not "
                             f"{meta['config']}; use another output file or the same settings.")
        return done
    path.parent.mkdir(parents=True, exist_ok=True)
    with replaced_atomically(path, keep=False) as tmp, h5py.File(tmp, "w") as f:
        f.attrs.update(meta)
        f.attrs["input_names"] = json.dumps(sampler.input_names)
        f.attrs["bus_number"] = sampler.bus_number
        f.attrs["dynamics"] = json.dumps(sampler.data.describe())
        tripped = sampler.net.generators[sampler.trip]
        f.attrs["trip"] = f"{tripped.bus}/{tripped.id}"
        n_in, n_out = sampler.n_inputs, len(sampler.bus_number)
        f.create_dataset("index", (0,), "i8", maxshape=(None,))
        f.create_dataset("ok", (0,), "bool", maxshape=(None,))
        f.create_dataset("inputs", (0, n_in), "f8", maxshape=(None, n_in), chunks=(64, n_in))
        f.create_dataset("outputs", (0, n_out), "f8", maxshape=(None, n_out), chunks=(64, n_out))
    return np.zeros(0, dtype=int)


def append_samples(path: Path, samples: list[Sample]) -> None:
    """Append whole samples to ``path`` in one atomic replacement."""
    if not samples:
        return
    with replaced_atomically(path, keep=True) as tmp, h5py.File(tmp, "a") as f:
        n, k = f["index"].shape[0], len(samples)
        for name in ("index", "ok", "inputs", "outputs"):
            f[name].resize(n + k, axis=0)
        f["index"][n:] = [s.index for s in samples]
        f["ok"][n:] = [s.ok for s in samples]
        f["inputs"][n:] = np.stack([s.inputs for s in samples])
        f["outputs"][n:] = np.stack([s.outputs for s in samples])


def read_samples(path: str | Path) -> dict:
    """``inputs``, ``outputs``, ``index`` of the converged samples (sorted by index) and the
    file attributes."""
    path = Path(path)
    try:
        with h5py.File(path, "r") as f:
            if f.attrs.get("format") != FORMAT:
                raise ValueError(f"{path} is not a {FORMAT} file.")
            ok = f["ok"][()]
            order = np.argsort(f["index"][()][ok])
            out = {k: f[k][()][ok][order] for k in ("index", "inputs", "outputs")}
            out["attrs"] = {k: (v.item() if isinstance(v, np.generic) else v) for k, v in f.attrs.items()}
            out["failed"] = int((~ok).sum())
    except (OSError, KeyError) as err:
        raise ValueError(f"{path} is not a readable sample file ({err}).") from err
    return out


# ---- driver ----------------------------------------------------------------------------------

def run(config: SampleConfig, path: str | Path, n: int, workers: int = 1, batch: int = 16,
        scheduler: str | None = None, log=print) -> int:
    """Make samples 0..n-1 in ``path`` (skipping those present); returns how many were added.
    A dask ``scheduler`` is reached before ``path`` is created or read."""
    path = Path(path)
    with _dask_client(scheduler) as client:
        sampler = _sampler(config)
        done = set(open_sample_file(path, config, sampler).tolist())
        todo = [k for k in range(n) if k not in done]
        if not todo:
            log(f"{path}: samples 0..{n - 1} all present ({len(done)} in the file)")
            return 0
        log(f"{path}: {len(done)} present, computing {len(todo)} "
            f"({'dask ' + scheduler if scheduler else f'{workers} process(es)'})")
        pending: list[Sample] = []
        added = 0
        progress = Progress(n, len(done), log, every=0.0, unit="samples")

        def flush():
            nonlocal added
            if not pending:
                return
            append_samples(path, pending)
            added += len(pending)
            progress.step(len(pending))
            pending.clear()

        try:
            # closed here, not by the garbage collector: a pool's shutdown runs where an
            # interrupt can reach this function
            with closing(_map(config, todo, workers, client)) as samples:
                for sample in samples:
                    check_interrupt()  # a Ctrl-C that CasADi's bindings swallowed stops the run here
                    pending.append(sample)
                    if len(pending) >= batch:
                        flush()
        finally:
            flush()
    return added


def _dask_client(scheduler: str | None):
    """A dask.distributed client connected to ``scheduler`` (:func:`nncas.apps.sweep.connect`), or a
    context holding None."""
    return connect(scheduler) if scheduler else nullcontext()


def _map(config: SampleConfig, indices: list[int], workers: int, client):
    if client is not None:
        for _, outcome in stream(client, evaluate_sample, [(config, k) for k in indices], indices):
            if isinstance(outcome, BaseException):
                raise outcome
            yield outcome
        return
    if workers <= 1:
        for k in indices:
            yield evaluate_sample(config, k)
        return
    with interrupts_ignored():  # the workers inherit it: Ctrl-C goes to this process, which stops them
        pool = get_context("spawn").Pool(workers)
    with pool:
        yield from pool.imap_unordered(_evaluate_star, [(config, k) for k in indices], chunksize=2)


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(prog="python -m power.sample", description=__doc__.split("\n\n")[0])
    parser.add_argument("case", help="'example' or a folder with one .raw/.rop/.inl/.con each")
    parser.add_argument("out", help="HDF5 file to create or extend")
    parser.add_argument("-n", "--samples", type=int, default=110, help="total samples wanted (default 110)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="processes (default: all cores)")
    parser.add_argument("--scheduler", help="dask.distributed scheduler address (instead of --workers)")
    parser.add_argument("--batch", type=int, default=16, help="samples per atomic file update")
    parser.add_argument("--seed", type=int, default=0, help="seed of the sampled operating points")
    parser.add_argument("--spread", type=float, default=0.1, help="relative half-width of the draws")
    parser.add_argument("--dynamics", help="JSON file overriding the dynamic data (power.dynamic_data)")
    parser.add_argument("--t-end", type=float, default=30.0, help="simulated seconds after the trip")
    parser.add_argument("--dt", type=float, default=0.01, help="integration step (s)")
    parser.add_argument("--nominal", choices=("opf", "case"), default="opf",
                        help="draw around the AC-OPF dispatch (default) or the case file's")
    parser.add_argument("--qg", choices=QG_DRAWS, default="scaled",
                        help="Qg targets: nominal times U[1-spread, 1+spread] (scaled, default), "
                             "uniform within each unit's [Qmin, Qmax] (limits), or at Qmin or Qmax "
                             "with chance 1/4 each and uniform otherwise (edges)")
    args = parser.parse_args(argv)
    if args.samples < 1 or args.batch < 1 or args.workers < 1:
        parser.error("--samples, --batch and --workers must be positive")
    case = args.case if args.case == "example" else str(Path(args.case).resolve())
    dynamics = str(Path(args.dynamics).resolve()) if args.dynamics else None
    try:
        config = SampleConfig(case, dynamics, args.seed, args.spread, args.t_end, args.dt, args.nominal,
                              args.qg)
        check_output_path(args.out, "out")
        run(config, args.out, args.samples, args.workers, args.batch, args.scheduler)
    except BAD_INPUT as err:
        return fail(parser, err, args.debug)
    return 0


if __name__ == "__main__":
    # run the imported module, whose functions and classes dask's workers can unpickle by name
    from power import sample
    sys.exit(run_main(sample.main, "finished samples are saved; run the same command again to go on."))
