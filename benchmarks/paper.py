"""The paper's Tables 2-4 side by side: formulations x backends x sizes, on CPU or GPU.

    python -m benchmarks.paper --problem mnist --sizes 128,512 \\
        --formulations full,reduced,graybox --backends torch,l4casadi --device cpu \\
        --time-limit 600 --out docs/paper_cpu

Every cell (problem, size, formulation, backend, device) runs in its own process and records
structure (variables, constraints, Jacobian and Hessian nonzeros), status, objective,
iterations, solve time, time per iteration and the shares of function, Jacobian, Hessian and
solver time. Each finished cell is appended to ``OUT/results.jsonl`` at once, so an
interrupted run keeps what it finished and a rerun skips finished cells (cells that ended in
an error are run again; the tables show the latest record of each cell). A cell that passes
``--time-limit`` (IPOPT's wall-time limit, and a hard stop a little later) is recorded as such.
``OUT/tables.md`` and ``OUT/*.png`` (log-log plots) are rendered from all recorded cells.

Formulations: ``full`` (start values from a forward pass), ``full-cold`` (every intermediate
variable starts at 0), ``full-bounds`` (interval bounds on intermediates from the input box),
``reduced`` (one nested expression), ``graybox`` (with each of ``--backends``).

Hessian routes (``--hessians``): ``exact`` (the default; CasADi's and the gray box's exact
Hessian of the Lagrangian), ``limited-memory`` (IPOPT's L-BFGS from exact gradients and
Jacobians, no Hessian built) and ``float32`` (torch gray boxes only: the network's Hessian from
float32 weights, ``hessian_dtype``); each record names the route it ran (``hessian``).

Problems: ``mnist`` (paper problem 7; sizes are hidden widths of Table 1; classifiers are
trained once and cached, see ``vision.train``) and ``scopf`` (paper problem 8 on Hawaii 37;
sizes are surrogate widths, see ``power.tscopf``; the case and the authors' samples are read
from ``$NNCAS_HAWAII37``, default ``../shared/hawaii37`` beside the repository).
"""
from __future__ import annotations

import json
import math
import multiprocessing
import os
import resource
import signal
import sys
import time
from pathlib import Path

from benchmarks.report import machine, whole_numbers
from nncas.apps.cli import BAD_INPUT, ArgumentParser, fail, raise_if_interrupted, run_main
from nncas.apps.storage import check_output_path, replaced_atomically, write_text_atomic
from nncas.errors import InputError

FORMULATIONS = ("full", "full-cold", "full-bounds", "reduced", "graybox")
BACKENDS = ("torch", "l4casadi")
PROBLEMS = ("mnist", "scopf")
HESSIANS = ("exact", "limited-memory", "float32")
STARTS = ("cold", "warm")
GRACE_S = 60  # after IPOPT's own wall-time limit, before the cell's process is stopped
HAWAII37_ENV = "NNCAS_HAWAII37"  # folder with the Hawaii 37 case and the authors' samples


# problems ------------------------------------------------------------------------------
def _ipopt_options(time_limit):
    return {"ipopt.print_level": 0, "ipopt.sb": "yes", "print_time": False,
            "ipopt.max_wall_time": float(time_limit), "ipopt.max_iter": 10000}


def _blas_threads(options):
    """One BLAS thread for IPOPT when a torch gray box shares the CPU (docs/oracle.md#threads)."""
    return 1 if options.get("formulation") == "graybox" and options.get("device") == "cpu" else None


def _solver_hessian(hessian):
    """``nncas.solver``'s ``hessian`` for a route (a float32 Hessian is the gray box's business)."""
    return "exact" if hessian == "float32" else hessian


def _solve(opti, time_limit, blas_threads=None, hessian="exact"):
    """Solve with nncas.solver under IPOPT's wall-time limit; returns problem_stats as dict."""
    import nncas

    build = nncas.solver(opti, "ipopt", _ipopt_options(time_limit), blas_threads=blas_threads, hessian=hessian)
    try:
        sol = opti.solve()
    except RuntimeError:  # not converged or stopped: keep what IPOPT reports
        sol = opti.debug
        raise_if_interrupted(sol.stats()["return_status"])  # Ctrl-C is no result
    stats = nncas.problem_stats(opti, sol).as_dict()
    stats["solver_build_s"] = build
    return stats


def _predictor_options(formulation, backend, device, input_bounds=None, hessian="exact"):
    """``nncas.add_predictor`` options for one of FORMULATIONS and a Hessian route."""
    if formulation == "graybox":
        import torch

        low = {"hessian_dtype": torch.float32} if hessian == "float32" else {}
        return {"formulation": "graybox", "backend": backend, "device": device, **low}
    if formulation == "full-bounds":
        if input_bounds is None:
            raise ValueError("full-bounds needs an input box; it is offered for --problem mnist only.")
        return {"formulation": "full", "input_bounds": input_bounds}
    return {"formulation": "full" if formulation.startswith("full") else formulation}


def _cold_start(opti, form, formulation):
    """``full-cold``: every intermediate variable starts at 0."""
    if formulation == "full-cold":
        for variable in form.variables:
            opti.set_initial(variable, 0)


def mnist_cell(size, formulation, backend, device, time_limit, hessian="exact"):
    """Paper problem 7 on test image 0, target (label + 1) mod 10, width-``size`` classifier."""
    import numpy as np

    from vision.adversarial import build_adversarial, check_request
    from vision.data import as_inputs, load_mnist
    from vision.train import ensure_classifier

    data = load_mnist()
    _, target = check_request(0, None, data.test_labels)
    net, meta = ensure_classifier(size, data=data)
    x_ref = as_inputs(data.test_images[:1])[0].astype(np.float64)
    options = _predictor_options(formulation, backend, device, (0.0, 1.0), hessian)
    tic = time.perf_counter()
    opti, _, form = build_adversarial(net, x_ref, target, **options)
    _cold_start(opti, form, formulation)
    build = time.perf_counter() - tic
    stats = _solve(opti, time_limit, _blas_threads(options), _solver_hessian(hessian))
    return {"params": meta["n_parameters"], "build_s": build, **stats}


def hawaii37_folder() -> Path:
    """The Hawaii 37 case and the authors' samples: ``$NNCAS_HAWAII37``, else ../shared/hawaii37."""
    return Path(os.environ.get(HAWAII37_ENV, Path(__file__).resolve().parents[2] / "shared" / "hawaii37"))


def authors_surrogate_path(size, epochs=3000) -> Path:
    """Where :func:`authors_surrogate` caches the width-``size`` surrogate."""
    from nncas.cache import cache_root
    return cache_root() / "power" / f"hawaii37_authors_w{size}{'' if epochs == 3000 else f'_e{epochs}'}.h5"


def authors_surrogate(size, epochs=3000):
    """The width-``size`` frequency surrogate trained on the authors' 110 samples with its
    recipe (``power.surrogate.recipe``) for at most ``epochs``, trained once and cached
    (``<cache>/power/hawaii37_authors_w<size>[_e<epochs>].h5``); returns ``(net, meta)``."""
    import torch

    from power import surrogate

    model = authors_surrogate_path(size, epochs)
    if not model.is_file():
        model.parent.mkdir(parents=True, exist_ok=True)
        checkpoint = model.with_name(model.name + ".ckpt.pt")
        settings = surrogate.recipe(size)
        net, meta = surrogate.train_surrogate(surrogate.load_data(hawaii37_folder()), size, epochs=epochs,
                                              lr=settings["lr"], patience=settings["patience"],
                                              dtype=settings["dtype"],
                                              checkpoint=checkpoint,
                                              device="cuda" if torch.cuda.is_available() else "cpu")
        surrogate.save_surrogate(model, net, meta)
        checkpoint.unlink(missing_ok=True)  # the finished model replaces it
    return surrogate.load_surrogate(model)


def scopf_cell(size, formulation, backend, device, time_limit, epochs=3000, hessian="exact", start="cold"):
    """Paper problem 8 on Hawaii 37 with the width-``size`` frequency surrogate
    (:func:`authors_surrogate`). ``start="warm"`` first solves the SCOPF alone and starts from its
    optimum (``power.tscopf --warm-start``); that solve's time and iterations are part of the
    cell's (``scopf_alone_s``, ``scopf_alone_iterations``; ``total_s`` holds both solves)."""
    from power import tscopf
    from power.dynamic_data import load_case
    from power.scopf import Scopf

    options = _predictor_options(formulation, backend, device, hessian=hessian)
    net, meta = authors_surrogate(size, epochs)
    case = load_case(hawaii37_folder())
    alone = Scopf(case).solve() if start == "warm" else None
    if alone is not None and not alone.success:
        raise RuntimeError(f"the SCOPF alone, the warm start, ended {alone.status}")
    problem = tscopf.build_tscopf(case, net, x0=None if alone is None else alone.solution.x_vector, **options)
    if formulation == "full-cold":  # every intermediate variable starts at 0
        problem.args["x0"][problem.x.numel():] = 0
    result = tscopf.solve_tscopf(problem, net, _ipopt_options(time_limit), simulate=False,
                                 blas_threads=_blas_threads(options), hessian=_solver_hessian(hessian))
    stats = result.stats.as_dict()
    if alone is not None:
        stats.update(total_s=stats["total_s"] + alone.solve_time_s, scopf_alone_s=alone.solve_time_s,
                     scopf_alone_iterations=alone.iterations)
    return {"params": meta["n_parameters"], "build_s": problem.build_time_s, **stats,
            "solver_build_s": result.solver_setup_s}


# cells ---------------------------------------------------------------------------------
def cell_key(cell: dict) -> tuple:
    """A cell's identity; records from before the Hessian route and the start were recorded ran
    the exact one from the cold start."""
    return tuple(cell.get(k) for k in ("problem", "size", "formulation", "backend", "device", "threads")) + (
        cell.get("hessian", "exact"), cell.get("start", "cold"))


def prepare_model(cell: dict) -> None:
    """Train and cache the cell's network if it is missing, before the cell runs: its training
    time and memory are not the solve's (a cell's deadline and peak memory count the solve)."""
    if cell["problem"] == "mnist":
        from vision.data import load_mnist
        from vision.storage import default_path
        from vision.train import ensure_classifier
        if not default_path(cell["size"]).is_file():
            ensure_classifier(cell["size"], data=load_mnist())
    elif not authors_surrogate_path(cell["size"], cell["surrogate_epochs"]).is_file():
        authors_surrogate(cell["size"], cell["surrogate_epochs"])


def _run_cell(cell, queue):
    """Child process: solve one cell and put its record (or the error) on ``queue``. Ctrl-C is
    left to the parent, which stops the child."""
    import torch

    signal.signal(signal.SIGINT, signal.SIG_IGN)

    if cell["threads"]:
        torch.set_num_threads(cell["threads"])
    try:
        if cell["problem"] == "mnist":
            stats = mnist_cell(cell["size"], cell["formulation"], cell["backend"], cell["device"],
                               cell["time_limit_s"], cell["hessian"])
        else:
            stats = scopf_cell(cell["size"], cell["formulation"], cell["backend"], cell["device"],
                               cell["time_limit_s"], cell["surrogate_epochs"], cell["hessian"],
                               cell.get("start", "cold"))
        # ru_maxrss: the cell process's peak resident memory, in KiB on Linux
        queue.put({"ok": {**stats, "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20}})
    except Exception as error:  # reported in the record, the run goes on with the next cell
        queue.put({"error": f"{type(error).__name__}: {error}"})


def run_cell(cell: dict) -> dict:
    """Run ``cell`` in a fresh process; a record with status, or 'time_limit' / 'error'."""
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=_run_cell, args=(cell, queue), daemon=True)
    tic = time.perf_counter()
    process.start()
    deadline = tic + cell["time_limit_s"] + GRACE_S
    outcome = None
    try:
        while outcome is None and time.perf_counter() < deadline:
            try:
                outcome = queue.get(timeout=1.0)
            except Exception:  # queue.Empty: still running
                if not process.is_alive():
                    outcome = {"error": f"the cell's process died (exit code {process.exitcode})"}
    finally:  # the time limit passed, or Ctrl-C: the child is stopped either way
        if outcome is None:
            process.kill()
    if outcome is None:
        outcome = {"error": None, "time_limit": True}
    process.join(5)
    wall = time.perf_counter() - tic
    record = {**cell, "wall_s": wall}
    if "ok" in outcome:
        stats = outcome["ok"]
        iterations = max(stats.get("iterations", 0), 1)
        record.update(stats, per_iteration_s=stats["total_s"] / iterations)
        if stats["status"] in ("Maximum_WallTime_Exceeded", "Maximum_CpuTime_Exceeded"):
            record["time_limit"] = True
    elif outcome.get("time_limit"):
        record.update(status="time_limit", time_limit=True)
    else:
        record.update(status="error", error=outcome["error"])
    return record


def load_records(path: Path) -> list[dict]:
    """Records of a results file; a torn last line (interrupted write) is ignored."""
    if not path.is_file():
        return []
    records = []
    for line in path.read_text().splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return records


def pending(planned: list[dict], records: list[dict]) -> list[dict]:
    """The planned cells without a finished record (a record with an error does not count)."""
    finished = {cell_key(r) for r in records if r.get("status") != "error"}
    return [c for c in planned if cell_key(c) not in finished]


def append_record(path: Path, record: dict):
    with open(path, "a") as out:
        out.write(json.dumps(record) + "\n")
        out.flush()
        os.fsync(out.fileno())


# rendering -----------------------------------------------------------------------------
def _label(r):
    label = r["formulation"] + (f" {r['backend']}/{r['device']}" if r["formulation"] == "graybox" else "")
    label += {"exact": "", "limited-memory": ", L-BFGS", "float32": ", float32 Hessian"}[r.get("hessian", "exact")]
    label += ", warm start" if r.get("start") == "warm" else ""
    return label + (f", {r['threads']} thread{'s' * (r['threads'] > 1)}" if r.get("threads") else "")


def _outcome(r):
    if r.get("status") == "error":
        return "error"
    if r.get("time_limit"):
        return f"> {r['time_limit_s']:.0f} s"
    mark = "" if r.get("success") else f" ({r['status']})"
    alone = f"{r['scopf_alone_iterations']} + " if "scopf_alone_iterations" in r else ""  # warm: both solves
    return f"{r['total_s']:.1f} s, {alone}{r['iterations']} it{mark}"


def tables(records: list[dict]) -> str:
    """Markdown: Table 2 (structure), Table 3 (time and iterations), Table 4 (time shares)."""
    lines = []
    for problem in sorted({r["problem"] for r in records}):
        rows = [r for r in records if r["problem"] == problem]
        order = {_label(r): FORMULATIONS.index(r["formulation"]) for r in rows}
        labels = sorted(order, key=lambda label: (order[label], label))
        sizes = sorted({r["size"] for r in rows})
        by = {(r["size"], _label(r)): r for r in rows}
        params = {r["size"]: r.get("params") for r in rows if r.get("params")}

        def holding(key):
            """(size, label, record) in table order, for the records that hold ``key``."""
            return [(size, label, by[size, label]) for size in sizes for label in labels
                    if key in by.get((size, label), {})]

        lines += [f"## {problem}: structure (Table 2)", "",
                  "| size | params | formulation | variables | constraints | Jacobian nnz | Hessian nnz |",
                  "|---|---|---|---|---|---|---|"]
        for size, label, r in holding("n_variables"):
            lines.append(f"| {size} | {params.get(size, 0):,} | {label} | {r['n_variables']:,} | "
                         f"{r['n_constraints']:,} | {r['jac_nnz']:,} | {r['hess_nnz']:,} |")
        lines += ["", f"## {problem}: solve time and iterations (Table 3)", "",
                  "| size | params | " + " | ".join(labels) + " |", "|---|---|" + "---|" * len(labels)]
        for size in sizes:
            cells = [_outcome(by[size, label]) if (size, label) in by else "" for label in labels]
            lines.append(f"| {size} | {params.get(size, 0):,} | " + " | ".join(cells) + " |")
        lines += ["", f"## {problem}: share of time (Table 4): function / Jacobian / Hessian / solver", "",
                  "| size | formulation | function | Jacobian | Hessian | solver | per iteration | peak memory |",
                  "|---|---|---|---|---|---|---|---|"]
        for size, label, r in holding("shares"):
            s = r["shares"]
            lines.append(f"| {size} | {label} | {s['function'] + s['gradient']:.0%} | "
                         f"{s['jacobian']:.0%} | {s['hessian']:.0%} | {s['solver']:.0%} | "
                         f"{1e3 * r['per_iteration_s']:.1f} ms | "
                         + (f"{r['peak_rss_gb']:.1f} GB |" if "peak_rss_gb" in r else "|"))
        lines.append("")
    return "\n".join(lines)


def plots(records: list[dict], out: Path) -> list[Path]:
    """Log-log solve time and time per iteration against parameters, one line per formulation."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    for problem in sorted({r["problem"] for r in records}):
        rows = [r for r in records if r["problem"] == problem and "total_s" in r and r.get("params")]
        if not rows:
            continue
        fig, axes = plt.subplots(1, 2, figsize=(10, 4))
        for label in sorted({_label(r) for r in rows}):
            series = sorted((r["params"], r["total_s"], r["per_iteration_s"], r.get("time_limit", False))
                            for r in rows if _label(r) == label)
            p = [s[0] for s in series]
            for ax, column in zip(axes, (1, 2)):
                ax.loglog(p, [s[column] for s in series], marker="o", label=label)
        for ax, title in zip(axes, ("solve time [s]", "time per iteration [s]")):
            ax.set_xlabel("network parameters")
            ax.set_title(f"{problem}: {title}")
            ax.grid(True, which="both", alpha=0.3)
        axes[0].legend(fontsize=8)
        fig.tight_layout()
        path = out / f"{problem}_times.png"
        with replaced_atomically(path) as tmp:
            fig.savefig(tmp, dpi=110, format="png")
        plt.close(fig)
        written.append(path)
    return written


def render(out: Path):
    records = load_records(out / "results.jsonl")
    machines = {json.dumps(r["machine"], sort_keys=True) for r in records if "machine" in r}
    header = ["# Paper tables, as measured", "",
              "Generated by `python -m benchmarks.paper` from `results.jsonl` in this folder "
              "(times in seconds of wall clock; `> S s`: stopped at the time limit).", "",
              "Machines:"] + [f"- `{m}`" for m in sorted(machines)] + [""]
    text = "\n".join(header) + "\n" + tables(records)
    write_text_atomic(out / "tables.md", text)
    plots(records, out)
    return text


# command line --------------------------------------------------------------------------
def _list(text, allowed, what):
    items = [s.strip() for s in text.split(",") if s.strip()]
    bad = [s for s in items if s not in allowed]
    if bad:
        raise InputError(f"unknown {what} {', '.join(bad)}; choose from {', '.join(allowed)}.")
    return items


def check_out_folder(out: Path) -> None:
    """Refuse, before any cell runs, an ``--out`` that is a file or whose files cannot be written."""
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {out} is a file; give a folder for results.jsonl, tables.md and the plots.")
    for name in ("results.jsonl", "tables.md"):
        check_output_path(out / name, "--out")


def cells(problem, sizes, formulations, backends, device, time_limit, threads=None, surrogate_epochs=3000,
          hessians=("exact",), starts=("cold",)):
    """The planned cells; ``starts`` other than cold are SCOPF's only (problem 7 has no warm start)."""
    if problem != "scopf" and set(starts) != {"cold"}:
        raise InputError(f"--starts {','.join(starts)}: a warm start (the SCOPF alone first) is "
                         "offered for --problem scopf only.")
    out = []
    for size in sizes:
        for formulation in formulations:
            for backend in (backends if formulation == "graybox" else ["-"]):
                for hessian in hessians:
                    if hessian == "float32" and (formulation, backend) != ("graybox", "torch"):
                        continue  # only nncas's torch gray box computes its Hessian in float32
                    for start in starts:
                        out.append({"problem": problem, "size": size, "formulation": formulation,
                                    "backend": backend, "device": device if formulation == "graybox" else "cpu",
                                    "time_limit_s": time_limit, "threads": threads, "hessian": hessian,
                                    **({"surrogate_epochs": surrogate_epochs, "start": start}
                                       if problem == "scopf" else {})})
    return out


def main(argv=None):
    parser = ArgumentParser(prog="python -m benchmarks.paper", description=__doc__.splitlines()[0])
    parser.add_argument("--problem", choices=PROBLEMS, help="one paper problem only (default: both)")
    parser.add_argument("--sizes", type=whole_numbers, default="", help="comma-separated widths, e.g. 128,512")
    parser.add_argument("--formulations", default="full,reduced,graybox",
                        help=f"comma-separated, from {', '.join(FORMULATIONS)}")
    parser.add_argument("--backends", default="torch", help="gray-box backends: torch,l4casadi")
    parser.add_argument("--device", default="cpu", help="gray-box device: cpu or cuda")
    parser.add_argument("--hessians", default="exact",
                        help=f"comma-separated Hessian routes, from {', '.join(HESSIANS)} (default: exact)")
    parser.add_argument("--starts", default="cold",
                        help="SCOPF start points, from cold (the SCOPF's default start, as the paper) and "
                             "warm (the SCOPF alone solved first, its time counted); default: cold")
    parser.add_argument("--time-limit", type=float, default=600.0, help="seconds per cell")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads per cell (default torch's; part of the cell's identity)")
    parser.add_argument("--surrogate-epochs", type=int, default=3000,
                        help="training epochs of a missing SCOPF surrogate (cached per width and epochs)")
    parser.add_argument("--out", required=True, help="folder for results.jsonl, tables.md, plots")
    parser.add_argument("--render-only", action="store_true", help="only re-render tables and plots")
    args = parser.parse_args(argv)
    if not args.render_only and not (args.problem and args.sizes):
        parser.error("--problem and --sizes are needed (or --render-only).")
    if not (math.isfinite(args.time_limit) and args.time_limit > 0):
        parser.error(f"--time-limit {args.time_limit}: give a positive number of seconds.")
    if (args.threads is not None and args.threads < 1) or args.surrogate_epochs < 1:
        parser.error("--threads and --surrogate-epochs must be positive whole numbers.")
    if args.device not in ("cpu", "cuda") and not args.device.startswith("cuda:"):
        parser.error(f"--device {args.device!r}: use cpu or cuda.")
    out = Path(args.out)
    try:
        formulations = _list(args.formulations, FORMULATIONS, "formulation")
        backends = _list(args.backends, BACKENDS, "backend")
        hessians = _list(args.hessians, HESSIANS, "Hessian route")
        starts = _list(args.starts, STARTS, "start")
        planned = [] if args.render_only else cells(
            args.problem, args.sizes, formulations, backends, args.device, args.time_limit, args.threads,
            args.surrogate_epochs, hessians, starts)
        check_out_folder(out)
    except BAD_INPUT as err:
        return fail(parser, err, args.debug)
    results = out / "results.jsonl"
    errors = 0
    if not args.render_only:
        records = load_records(results)
        todo = pending(planned, records)
        done = len(records)
        info = machine()
        print(f"{len(todo)} cells to run ({done} recorded in {results}); machine: {info}", flush=True)
        for index, cell in enumerate(todo, 1):
            print(f"[{index}/{len(todo)}] {cell['problem']} {cell['size']} {cell['formulation']} "
                  f"{cell['backend']} {cell['device']} {cell['hessian']} {cell.get('start', '')}".rstrip() + " ...",
                  end=" ", flush=True)
            prepare_model(cell)
            record = {**run_cell(cell), "machine": info}
            append_record(results, record)
            errors += record.get("status") == "error"
            print(_outcome(record) if record.get("status") != "error" else f"error: {record['error']}",
                  flush=True)
    print(render(out))
    print(f"records: {results}; tables and plots: {out}")
    if errors:
        print(f"{parser.prog}: {errors} cell(s) ended in an error (recorded in {results}; a rerun retries them).",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main, "finished cells are recorded; run the same command again to go on."))
