"""What checking an embedding against torch costs: construction with and without ``verify``.

    python -m benchmarks.verification --widths 128,1024,8192 [--formulations graybox,reduced,full]

Each row embeds the paper's MNIST classifier of that width (random weights: the cost does not
depend on them) on one image-sized input and prints the build time without the check, the
check's own time (``Embedding.verification.seconds``) and their ratio, all from one run.
"""
from __future__ import annotations

import time

import casadi as ca
import numpy as np
import torch

import nncas
from nncas.apps.cli import ArgumentParser, fail, run_main
from vision.models import build_classifier


def measure(width: int, formulation: str) -> dict:
    torch.manual_seed(0)
    net = build_classifier(width).eval()
    x0 = np.random.default_rng(0).uniform(0, 1, 784)
    nncas.embed(net, ca.MX.sym("x", 784), formulation=formulation, x0=x0, input_bounds=(0, 1))  # warm-up
    times = {}
    for verify in (False, True):
        start = time.perf_counter()
        e = nncas.embed(net, ca.MX.sym("x", 784), formulation=formulation, x0=x0, input_bounds=(0, 1),
                        verify=verify)
        times[verify] = time.perf_counter() - start
    params = sum(p.numel() for p in net.parameters())
    return {"width": width, "params": params, "formulation": formulation, "build_s": times[False],
            "check_s": e.verification.seconds, "ratio": e.verification.seconds / times[False]}


def main(argv=None) -> int:
    parser = ArgumentParser(prog="python -m benchmarks.verification", description=__doc__.splitlines()[0])
    parser.add_argument("--widths", default="128,1024", help="MNIST classifier widths (default: %(default)s)")
    parser.add_argument("--formulations", default="graybox,reduced,full",
                        help="comma-separated formulations (default: %(default)s)")
    args = parser.parse_args(argv)
    try:
        widths = [int(w) for w in args.widths.split(",")]
        formulations = args.formulations.split(",")
        if min(widths) < 1 or not set(formulations) <= {"graybox", "reduced", "full"}:
            raise ValueError
    except ValueError:
        return fail(parser, ValueError(f"--widths {args.widths!r} / --formulations {args.formulations!r}: give "
                                       "positive widths and formulations among graybox, reduced, full"))
    print(f"{'width':>6} {'params':>12} {'formulation':<11} {'build s':>8} {'check s':>8} {'check/build':>11}")
    for width in widths:
        for formulation in formulations:
            r = measure(width, formulation)
            print(f"{r['width']:>6} {r['params']:>12,} {r['formulation']:<11} {r['build_s']:>8.3f} "
                  f"{r['check_s']:>8.3f} {r['ratio']:>11.2f}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(run_main(main))
