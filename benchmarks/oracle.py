r"""Time per Hessian of lam^T NN(u) for the gray-box backends, against the hardware bound.

For each architecture (paper Table 1: MNIST, 784 inputs; SCOPF surrogates, 117 inputs, as
built by ``power.surrogate``) it times

- the oracle alone: one Hessian with backend torch, structured and generic paths (float64),
  against the bound 2 n P / R, R the float64 matrix-multiply rate measured in the same run.
  As IPOPT asks for them, the Jacobian at the same point comes first, so the structured path
  reuses its per-layer adjoints; the JSON also holds the structured time without that
  (``torch_structured_own_sweep_s``, one more reverse sweep through the weights);
- what IPOPT pays per iteration: one call of the NLP's ``hess_lag`` (from ``nncas.solver``),
  likewise after the Jacobian, for a problem holding the network as a gray box, with backend
  torch and backend l4casadi (float32; nncas calls l4casadi's ``jac_adj1`` once per Hessian),
  output in the NLP's sparsity;
- l4casadi with the Hessian left to CasADi: ``jacobian`` of the external's adjoint
  :math:`\lambda^T \partial y / \partial u`, which CasADi evaluates with forward directions
  (one ``jac_adj1`` call per 64 of them), the baseline of ENVIRONMENT.md.

Times are the best of repeated calls over several passes through all problems (the least
disturbed by other load). Results go to JSON and a markdown table.

    python -m benchmarks.oracle [--mnist 128,512,1024] [--scopf 100,500,1000,2000] [--cnn] [--device cpu]
                                [--skip-l4casadi] [--rounds 3] [--out docs/oracle]
"""
import itertools
import sys
import time

import casadi as ca
import numpy as np
import torch

import nncas
from nncas.apps.cli import BAD_INPUT, ArgumentParser, fail, run_main
from nncas.derivatives import derivative_functions
from nncas.devices import resolve_device
from benchmarks.report import check_report_path, cpu_name, whole_numbers, write_report
from power.surrogate import build_surrogate
from vision.models import build_classifier


def mnist_classifier(width):
    """The paper's MNIST classifier of ``width`` (vision.models; seeded, untrained; tanh at
    every width, as measured in docs/)."""
    torch.manual_seed(0)
    return build_classifier(width, "tanh").eval()


def scopf_surrogate(width):
    """The paper's SCOPF surrogate of ``width`` (power.surrogate; seeded, untrained)."""
    torch.manual_seed(0)
    return build_surrogate(117, 37, width).eval()


def matmul_rate(device, dtype=torch.float64, size=2048, repeats=7) -> float:
    """FLOP/s of the fastest of ``repeats`` square matrix products (the hardware's rate)."""
    a = torch.randn(size, size, dtype=dtype, device=device)
    b = torch.randn(size, size, dtype=dtype, device=device)
    a @ b
    best = float("inf")
    for _ in range(repeats):
        _sync(device)
        start = time.perf_counter()
        a @ b
        _sync(device)
        best = min(best, time.perf_counter() - start)
    return 2 * size ** 3 / best


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def time_call(fn, minimum_s=1.0, max_repeats=20) -> float:
    """Best seconds of ``fn()`` over repeats (at least 3, up to ``minimum_s``), after a warm-up."""
    fn()
    times = []
    while len(times) < 3 or (len(times) < max_repeats and sum(times) < minimum_s):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.min(times))


def graybox_nlp(net, n_in, device, **options):
    """A small NLP around the gray box; returns (oracle, hess_lag, x, lam_g) at a test point."""
    opti = ca.Opti()
    x = opti.variable(n_in)
    # direct input: the Hessian of the whole network in its n_in inputs (the paper's oracle)
    y, form = nncas.add_predictor(opti, net, x, formulation="graybox", device=device,
                                  graybox_output="variables", graybox_input="direct", **options)
    opti.minimize(ca.sumsqr(x) + ca.sum1(y))
    hess_lag = derivative_functions(opti.x, opti.p, opti.f, opti.g)["nlp_hess_l"]
    rng = np.random.default_rng(0)
    point = np.concatenate([rng.uniform(0, 1, n_in), np.zeros(opti.nx - n_in)])  # x, then y if variables
    return form.oracle, hess_lag, point, rng.normal(size=opti.ng)


def _nlp_hessian(hess_lag, point, lam, sign):
    """One NLP Hessian with multipliers scaled by ``sign`` (alternated, so the oracle's cache
    of the last Hessian never answers)."""
    return hess_lag(point, [], sign, sign * lam)


def measure(problem, net, n_in, n_out, device, skip_l4casadi):
    params = sum(p.numel() for p in net.parameters())
    row = {"problem": problem, "n_in": n_in, "params": params, "bound_flop": 2 * n_in * params}
    dev = torch.device(device)
    for method in ("structured", "generic"):
        o, hess_lag, point, lam = graybox_nlp(net, n_in, device, method=method)
        u = point[:n_in]

        signs = itertools.cycle((1.0, -1.0))  # a new multiplier every call: no cached Hessian

        def hessian():
            o.hessian_tensor(u, next(signs) * lam)
            _sync(dev)

        if method == "structured":  # with no Jacobian at this point: its own reverse sweep
            row["torch_structured_own_sweep_s"] = time_call(hessian)
        o.jacobian_tensor(u)  # as IPOPT calls them: the Jacobian first, at the same point
        row[f"torch_{method}_s"] = time_call(hessian)
        if method == "structured":
            row["nlp_torch_s"] = time_call(lambda: _nlp_hessian(hess_lag, point, lam, next(signs)))
    if not skip_l4casadi:
        o, hess_lag, point, lam = graybox_nlp(net, n_in, device, backend="l4casadi")
        signs = itertools.cycle((1.0, -1.0))
        row["nlp_l4casadi_s"] = time_call(lambda: _nlp_hessian(hess_lag, point, lam, next(signs)))
        u, multipliers = ca.MX.sym("u", n_in), ca.MX.sym("lam", n_out)
        external = o.external
        adjoint = external.reverse(1)(u.T, ca.MX(1, n_out), multipliers.T)[0]  # lam^T dy/du
        casadi_ad = ca.Function("h", [u, multipliers], [ca.jacobian(adjoint.T, u)])
        row["l4casadi_casadi_ad_s"] = time_call(lambda: casadi_ad(point[:n_in], lam), max_repeats=5)
    return row


def with_bound(row, rate):
    """``row`` with ``bound_s``, the bound 2 n P / ``rate`` in seconds."""
    return {**row, "bound_s": row["bound_flop"] / rate}


def markdown(rows, header):
    cols = ["problem", "params", "bound ms", "structured ms", "x bound", "generic ms",
            "NLP hess torch ms", "NLP hess l4casadi ms", "l4casadi / torch", "l4casadi / bound",
            "l4casadi CasADi-AD ms", "CasADi-AD / torch"]
    lines = [header, "", "| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in rows:
        l4, ad = r.get("nlp_l4casadi_s"), r.get("l4casadi_casadi_ad_s")
        lines.append("| " + " | ".join([
            r["problem"], f"{r['params']:,}", f"{1e3 * r['bound_s']:.1f}",
            f"{1e3 * r['torch_structured_s']:.1f}", f"{r['torch_structured_s'] / r['bound_s']:.2f}",
            f"{1e3 * r['torch_generic_s']:.1f}", f"{1e3 * r['nlp_torch_s']:.1f}",
            "-" if l4 is None else f"{1e3 * l4:.1f}",
            "-" if l4 is None else f"{l4 / r['nlp_torch_s']:.1f}",
            "-" if l4 is None else f"{l4 / r['bound_s']:.2f}",
            "-" if ad is None else f"{1e3 * ad:.1f}",
            "-" if ad is None else f"{ad / r['nlp_torch_s']:.1f}"]) + " |")
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = ArgumentParser(prog="python -m benchmarks.oracle", description=__doc__.splitlines()[0])
    parser.add_argument("--mnist", type=whole_numbers, default="128,512,1024", help="hidden widths, 784 inputs")
    parser.add_argument("--scopf", type=whole_numbers, default="100,500,1000,2000", help="hidden widths, 117 inputs")
    parser.add_argument("--device", default="cpu", help="torch device of the oracles: cpu or cuda")
    parser.add_argument("--cnn", action="store_true",
                        help="add the MNIST CNN (vision --width cnn): the structured path with its "
                             "convolutions as dense matrices against torch.func (method='auto' takes the faster)")
    parser.add_argument("--skip-l4casadi", action="store_true", help="leave out the l4casadi rows")
    parser.add_argument("--rounds", type=int, default=3,
                        help="passes over all problems; each time reported is the best of them")
    parser.add_argument("--out", default=None, help="write OUT.json and OUT.md")
    args = parser.parse_args(argv)
    if args.rounds < 1:
        parser.error(f"--rounds {args.rounds}: make at least one pass.")
    try:
        device = resolve_device(args.device)
        check_report_path(args.out)
        cells = [(f"MNIST-{w}", mnist_classifier(w), 784, 10) for w in args.mnist]
        cells += [(f"SCOPF-{w}", scopf_surrogate(w), 117, 37) for w in args.scopf]
    except BAD_INPUT as err:
        return fail(parser, err, args.debug)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_name()
    if args.cnn:
        cells.append(("MNIST-CNN", mnist_classifier("cnn"), 784, 10))
    # Times are the best over several passes, and the rate is measured before and after every
    # problem, the best of all serving as R for every row: a slow spell on a shared machine
    # then neither inflates a time nor flatters a ratio.
    rates, best = [matmul_rate(device)], {}
    for round_ in range(1, args.rounds + 1):
        for problem, net, n_in, n_out in cells:
            row = measure(problem, net, n_in, n_out, args.device, args.skip_l4casadi)
            best[problem] = _faster(best[problem], row) if problem in best else row
            rates.append(matmul_rate(device))
            print(f"pass {round_}/{args.rounds}: "
                  + markdown([with_bound(best[problem], max(rates))], "").splitlines()[-1], flush=True)
    rows = list(best.values())
    rate = max(rates)
    header = (f"Hessian of lam^T NN(u), one call. Device: {name} ({args.device}, "
              f"{torch.get_num_threads()} threads); float64 matmul rate {rate / 1e9:.1f} GFLOP/s "
              f"(best of {len(rates)} measurements across the run, worst {min(rates) / 1e9:.1f}); "
              f"times best of {args.rounds} passes; "
              f"bound = 2 n P / rate.")
    rows = [with_bound(row, rate) for row in rows]
    table = markdown(rows, header)
    print("\n" + table)
    write_report(args.out, header, rows, table)
    return 0


def _faster(row, other):
    """``row`` with each time (a key ending in _s) the lesser of its and ``other``'s."""
    return {key: min(value, other[key]) if key.endswith("_s") else value for key, value in row.items()}


if __name__ == "__main__":
    sys.exit(run_main(main))
