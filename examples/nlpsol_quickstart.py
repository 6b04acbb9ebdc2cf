"""The quickstart's problem as a plain ``casadi.nlpsol`` dict, in every formulation:

    min ||x - x_ref||^2   s.t.   NN(x)[1] >= 0.6,   -3 <= x <= 3.

``nncas.embed`` returns the network's pieces of an nlp dict (``y``; extra variables ``w`` with
``w0, lbw, ubw``; extra constraints ``g`` with ``lbg, ubg``); the user writes the rest. The
same dict goes to ``casadi.nlpsol`` (CasADi builds the exact Hessian through the gray box's
own derivative hooks) and to ``nncas.nlpsol`` (same signature, fast derivative construction):
both reach the same optimum.

Run:  python examples/nlpsol_quickstart.py
"""
import time

import casadi as ca
import numpy as np

import nncas
from nncas.apps.cli import ArgumentParser
from quickstart import train_classifier


def solve(nlpsol, net, x_ref, formulation):
    """Solve with ``nlpsol`` (``casadi.nlpsol`` or ``nncas.nlpsol``); return (objective, x,
    construction seconds, solve seconds)."""
    x = ca.MX.sym("x", 2)
    e = nncas.embed(net, x, formulation=formulation, x0=x_ref)
    nlp = {"x": ca.vertcat(x, e.w), "f": ca.sumsqr(x - x_ref), "g": ca.vertcat(e.g, e.y[1])}
    start = time.perf_counter()
    solver = nlpsol("solver", "ipopt", nlp, {"ipopt.print_level": 0, "print_time": False, "ipopt.sb": "yes"})
    construction = time.perf_counter() - start
    start = time.perf_counter()
    result = solver(x0=np.concatenate([x_ref, e.w0]),
                    lbx=np.concatenate([np.full(2, -3.0), e.lbw]), ubx=np.concatenate([np.full(2, 3.0), e.ubw]),
                    lbg=np.concatenate([e.lbg, [0.6]]), ubg=np.concatenate([e.ubg, [np.inf]]))
    if not solver.stats()["success"]:
        raise RuntimeError(f"{formulation}: {solver.stats()['return_status']}")
    return float(result["f"]), result["x"].full().ravel()[:2], construction, time.perf_counter() - start


def main(argv=None):
    ArgumentParser(prog="python examples/nlpsol_quickstart.py",
                   description=__doc__.split("\n\n")[0].rstrip(":") + ".").parse_args(argv)
    net = train_classifier()
    x_ref = np.array([-0.5, 0.5])
    print("{:<12}{:<14}{:>16}{:>22}{:>9}{:>9}".format("formulation", "route", "objective", "x*", "build s", "solve s"))
    for formulation in ("full", "reduced", "graybox"):
        for route, nlpsol in (("casadi.nlpsol", ca.nlpsol), ("nncas.nlpsol", nncas.nlpsol)):
            objective, x_opt, build, run = solve(nlpsol, net, x_ref, formulation)
            print(f"{formulation:<12}{route:<14}{objective:>16.10f}{str(x_opt.round(5)):>22}{build:>9.3f}{run:>9.3f}")


if __name__ == "__main__":
    main()
