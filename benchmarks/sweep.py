"""Throughput of sweeps on dask.distributed (nncas.apps.sweep): solves per second with 1, 2, ... worker
processes on this machine, as a ratio to one worker measured in the same run.

Problem 7 (``vision.robustness``: MNIST-128, gray box, test images from --offset, target
(label + 1) mod 10) and problem 8 (``power.scenarios``: the example case, reduced space, seeded
load scenarios, each warm-started from the nominal solution and checked by the simulator). For
each worker count a LocalCluster is started, every worker first solves tasks outside the timed set
(building its problem, loading torch), then the timed tasks run: rate = tasks / seconds from the
first submission to the last result; the mean task time in the workers and the load average
say how much of the machine other jobs took. The objectives of every worker count are compared with one
worker's (they must agree to 1e-6).

    python -m benchmarks.sweep [--workers 1,2] [--problems 7,8] [--tasks 40] [--out docs/sweep_cpu]
"""
import os
import sys
import time

import numpy as np

from benchmarks.report import check_report_path, machine, whole_numbers, write_report
from nncas.apps.cli import BAD_INPUT, ArgumentParser, fail, run_main
from nncas.apps.sweep import shared, stream, sweep_client

PROBLEMS = (7, 8)


def problem7(client, count: int, offset: int):
    """(task function, argument tuples) for problem 7 on ``count`` test images from ``offset``."""
    from vision.data import as_inputs, load_mnist
    from vision.robustness import Weights, solve_task
    from vision.train import ensure_classifier

    data = load_mnist()
    net, meta = ensure_classifier(128, data=data)
    weights = shared(client, Weights.of(net, meta))
    tasks = []
    for k in range(offset, offset + count):
        x_ref = as_inputs(data.test_images[k:k + 1])[0].astype(np.float64)
        tasks.append((weights, "graybox", x_ref, (int(data.test_labels[k]) + 1) % 10))
    return solve_task, tasks


def problem8(client, count: int, offset: int):
    """(task function, argument tuples) for problem 8 on seeded scenarios offset..offset+count-1."""
    from power.default_surrogate import ensure_surrogate
    from power.dynamic_data import dynamic_data_for, load_case
    from power.scenarios import drawn_factors, nominal_task, scenario_task
    from power.tscopf import EXAMPLE_MIN_FREQUENCY_HZ

    case = load_case("example")
    net = ensure_surrogate("example")[0]
    common = [shared(client, case), shared(client, net), "reduced", EXAMPLE_MIN_FREQUENCY_HZ, 1e-8,
              shared(client, dynamic_data_for(case.network))]
    nominal = client.submit(nominal_task, *common, pure=True)
    factors = drawn_factors(len(case.network.loads), offset + count)
    return scenario_task, [(*common, nominal, factors[k]) for k in range(offset, offset + count)]


def run_tasks(client, function, tasks) -> tuple[float, list]:
    """(seconds from the first submission to the last result, results in task order)."""
    start = time.perf_counter()
    results = {}
    for key, outcome in stream(client, function, tasks, list(range(len(tasks)))):
        if isinstance(outcome, BaseException):
            raise outcome
        results[key] = outcome
    return time.perf_counter() - start, [results[k] for k in range(len(tasks))]


def measure(problem: int, workers: int, count: int, offset: int) -> dict:
    make = problem7 if problem == 7 else problem8
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    with sweep_client(workers=workers) as client:
        function, warm = make(client, 2 * workers, offset + count)  # outside the timed set
        run_tasks(client, function, warm)
        function, tasks = make(client, count, offset)
        seconds, results = run_tasks(client, function, tasks)
    return {"problem": problem, "workers": workers, "tasks": count, "seconds": seconds,
            "solves_per_s": count / seconds, "task_s_mean": float(np.mean([r["solve_s"] for r in results])),
            "load_average_at_start": load, "objectives": [r["objective"] for r in results],
            "statuses": [r["status"] for r in results], "iterations": [r["iterations"] for r in results]}


def markdown(rows, header) -> str:
    cols = ["problem", "workers", "tasks", "seconds", "solves/s", "ratio to 1 worker", "task s in the worker (mean)",
            "load average at start", "max |objective - 1 worker's|"]
    lines = [header, "", "| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in rows:
        lines.append("| " + " | ".join([
            str(r["problem"]), str(r["workers"]), str(r["tasks"]), f"{r['seconds']:.1f}", f"{r['solves_per_s']:.2f}",
            "" if r.get("ratio") is None else f"{r['ratio']:.2f}", f"{r['task_s_mean']:.2f}",
            f"{r['load_average_at_start']:.1f}",
            "" if r.get("max_objective_difference") is None else f"{r['max_objective_difference']:.1e}"]) + " |")
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = ArgumentParser(prog="python -m benchmarks.sweep", description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=whole_numbers, default="1,2", help="worker counts (1 is always run)")
    parser.add_argument("--problems", type=whole_numbers, default="7,8", help="7 (MNIST), 8 (TSC-SCOPF)")
    parser.add_argument("--tasks", type=int, default=40, help="timed solves per problem and worker count")
    parser.add_argument("--offset", type=int, default=100, help="first test image / scenario of the timed set")
    parser.add_argument("--out", default=None, help="write OUT.json and OUT.md")
    args = parser.parse_args(argv)
    if args.tasks < 1 or args.offset < 0:
        parser.error(f"--tasks {args.tasks} must be positive and --offset {args.offset} at least 0")
    unknown = sorted(set(args.problems) - set(PROBLEMS))
    if unknown:
        parser.error(f"--problems: {unknown} are not among {list(PROBLEMS)}")
    if args.offset + 2 * args.tasks + 2 * max(args.workers) > 10_000:
        parser.error("--offset and --tasks reach past the 10,000 MNIST test images")
    try:
        check_report_path(args.out)
    except BAD_INPUT as err:
        return fail(parser, err, args.debug)
    counts = sorted(set([1, *args.workers]))
    info = machine()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    header = (f"Sweep throughput on dask LocalClusters (one thread per worker process), {args.tasks} timed solves "
              f"per problem and worker count after a warm-up of 2 per worker; problem 7: MNIST-128 gray box, test "
              f"images {args.offset}..{args.offset + args.tasks - 1}, target label + 1; problem 8: example case, "
              f"reduced space, seeded load scenarios {args.offset}..{args.offset + args.tasks - 1}. Machine: "
              f"{info['cpu']}, {info['cores']} cores, load average {load:.1f} at start.")
    print(header, flush=True)
    rows = []
    for problem in args.problems:
        base = None
        for workers in counts:
            row = measure(problem, workers, args.tasks, args.offset)
            if base is None:
                base = row
            row["ratio"] = row["solves_per_s"] / base["solves_per_s"]
            row["max_objective_difference"] = float(np.max(np.abs(np.subtract(row["objectives"],
                                                                               base["objectives"]))))
            rows.append(row)
            print(markdown([row], "").splitlines()[-1], flush=True)
    table = markdown(rows, header)
    print("\n" + table)
    write_report(args.out, header, rows, table)
    return 0


if __name__ == "__main__":
    # run the imported module, whose functions dask's workers unpickle by name
    from benchmarks import sweep
    sys.exit(run_main(sweep.main))
