"""The dense KKT solver against MUMPS on degenerate NLPs: a seeded random sample (duplicated
and dependent constraint rows, variables without curvature, IPOPT's ma27_ignore_singularity)
and CasADi's test_simple_bounds_detect2 problem (its bounds written as rows), where tiny but
exact pivots must not count as zero."""
import casadi as ca
import numpy as np
import pytest

import nncas

QUIET = {"ipopt.print_level": 0, "print_time": False, "ipopt.sb": "yes"}
SAMPLE = 30


def degenerate_nlp(seed):
    """A convex NLP (so its optimal value is unique) with dependent equality rows, and its twin
    without them: (nlp, twin, args, options). Some variables have no curvature (a linear
    objective term and a box); rows are repeated or scaled copies and sums of independent rows
    (fewer rows than variables in all); a convex inequality may join."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(4, 10))
    x = ca.MX.sym("x", n)
    curved = rng.random(n) < 0.6
    curved[0] = True
    weights, centre, slope = rng.uniform(0.5, 3, n), rng.normal(size=n), rng.normal(size=n)
    f = ca.sum1(ca.DM(np.where(curved, weights, 0)) * (x - ca.DM(centre)) ** 2) + ca.dot(ca.DM(np.where(curved, 0, slope)), x)
    copies = int(rng.integers(1, 3))
    base = rng.normal(size=(int(rng.integers(1, n - copies)), n))
    dependent = []
    for _ in range(copies):
        pick = rng.integers(0, len(base), 2)
        kind = rng.integers(0, 3)
        dependent.append(base[pick].sum(0) if kind == 2 else base[pick[0]] * (1.0 if kind == 0 else rng.uniform(-3, 3)))
    feasible = rng.uniform(-0.5, 0.5, n)
    radius = float(feasible @ feasible) + rng.uniform(0.1, 2)
    ball = rng.random() < 0.5

    def problem(rows):
        g = ca.vertcat(ca.mtimes(ca.DM(rows), x), *([ca.sumsqr(x)] if ball else []))
        bounds = {"lbg": np.r_[rows @ feasible, [-np.inf] if ball else []], "ubg": np.r_[rows @ feasible, [radius] if ball else []]}
        return {"x": x, "f": f, "g": g}, bounds

    order = rng.permutation(len(base) + copies)
    nlp, bounds = problem(np.vstack([base, *dependent])[order])
    twin, twin_bounds = problem(base)
    box = {"x0": np.zeros(n), "lbx": np.full(n, -2.0), "ubx": np.full(n, 2.0)}
    options = {**QUIET, "ipopt.ma27_ignore_singularity": "yes" if rng.random() < 0.5 else "no"}
    return nlp, {**box, **bounds}, (twin, {**box, **twin_bounds}), options


def _solve(nlp, args, options, kkt_solver):
    S = nncas.nlpsol("S", "ipopt", nlp, options, kkt_solver=kkt_solver)
    result = S(**args)
    multipliers = float(np.abs(result["lam_g"].full()).sum() + np.abs(result["lam_x"].full()).sum())
    multipliers /= nlp["x"].numel() + nlp["g"].numel()
    return S.stats()["success"], S.stats()["return_status"], float(result["f"]), multipliers


@pytest.mark.parametrize("seed", range(SAMPLE))
def test_random_degenerate_nlp_agrees_with_mumps(seed):
    """The dense solver reaches the optimum (that of the twin without dependent rows, solved by
    MUMPS) on every problem. Wherever MUMPS succeeds too (same status class), its objective is
    no better, and equal wherever IPOPT's unscaled test certifies its answer (mean |multiplier|
    <= s_max = 100). MUMPS is the one that fails here: on these 30 it ended 4 solves in
    errors (Error_In_Step_Computation, Infeasible_Problem_Detected, Restoration_Failed) and 10
    in Solve_Succeeded at feasible points that are not optimal, its mean |multiplier| up to
    9e16 (beyond s_max IPOPT scales its dual infeasibility down)."""
    nlp, args, (twin, twin_args), options = degenerate_nlp(seed)
    optimum_ok, optimum_status, optimum, _ = _solve(twin, twin_args, options, "ipopt")
    assert optimum_ok, optimum_status
    dense_ok, dense_status, dense_f, _ = _solve(nlp, args, options, "dense")
    assert dense_ok, dense_status
    assert dense_f == pytest.approx(optimum, rel=1e-6, abs=1e-8)
    mumps_ok, _, mumps_f, mumps_multipliers = _solve(nlp, args, options, "ipopt")
    if mumps_ok:
        assert mumps_f >= optimum - 1e-6 * (1 + abs(optimum))
        if mumps_multipliers <= 100:
            assert dense_f == pytest.approx(mumps_f, rel=1e-6, abs=1e-8)


def simple_bounds_detect2():
    """CasADi's test_simple_bounds_detect2 problem (casadi/test/python/nlp.py, written here): five
    variables, twelve rows of which ten bound single variables, f = ||x - p||^2."""
    x, p = ca.MX.sym("x", 5), ca.MX.sym("p", 5)
    rows = [(1.1, x[0] * x[1], 2), (-11, x[4], 2), (-10, x[0], 10), (-5, x[0], 2), (-4, x[0], 4),
            (1.1, x[4] * x[1], 2), (0, x[4], np.inf), (3, x[2], 3), (-4, x[2], 40), (2, x[1], 2),
            (-4, x[0], 4), (-4, x[1], 9)]
    nlp = {"x": x, "p": p, "f": ca.sumsqr(x - p), "g": ca.vertcat(*[row[1] for row in rows])}
    return nlp, [row[0] for row in rows], [row[2] for row in rows]


@pytest.mark.parametrize("box", [np.inf, 3.0, 4.0])
def test_simple_bounds_detect2_as_rows_solves_as_mumps_does(box):
    """The rows as rows (CasADi's nominal solver), tol 1e-12, bound_relax_factor 1e-12: the dense
    solver reaches Solve_Succeeded in MUMPS's iteration count for every target +-20 e_i."""
    nlp, lbg, ubg = simple_bounds_detect2()
    options = {**QUIET, "ipopt.tol": 1e-12, "ipopt.bound_relax_factor": 1e-12}
    solvers = {kkt_solver: nncas.nlpsol("S", "ipopt", nlp, options, kkt_solver=kkt_solver) for kkt_solver in ("dense", "ipopt")}
    for i in range(5):
        for sign in (-1, 1):
            target = 20.0 * sign * np.eye(5)[i]
            outcome = {}
            for kkt_solver, S in solvers.items():
                result = S(p=target, lbg=lbg, ubg=ubg, lbx=-box, ubx=box)
                outcome[kkt_solver] = (S.stats()["return_status"], S.stats()["iter_count"], float(result["f"]))
            (status, iterations, f), (mumps_status, mumps_iterations, mumps_f) = outcome["dense"], outcome["ipopt"]
            assert status == mumps_status == "Solve_Succeeded", (i, sign, outcome)
            assert abs(iterations - mumps_iterations) <= 2 and f == pytest.approx(mumps_f, rel=1e-9), (i, sign, outcome)
