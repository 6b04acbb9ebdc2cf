"""The Hock–Schittkowski problems (tests/hock_schittkowski.py) through casadi.nlpsol and through
nncas.nlpsol with kkt_solver="ipopt" (MUMPS) and "dense" (nncas's dense LDL^T): the same status
class, objectives within 1e-6 of each other and of the published optimum where it is unique;
the dense route never fails where stock IPOPT succeeds.

A quick subset runs by default; the whole set is marked ``hs`` and runs with ``pytest -m hs``
(setup.cfg deselects the marker otherwise)."""
import casadi as ca
import pytest

import nncas
from hock_schittkowski import PROBLEMS

OPTIONS = {"ipopt.print_level": 0, "print_time": False, "ipopt.sb": "yes", "ipopt.tol": 1e-10}
SOLVED = ("Solve_Succeeded", "Solved_To_Acceptable_Level")
QUICK = ["hs006", "hs014", "hs035", "hs040", "hs043", "hs071", "hs076", "hs100", "hs106", "hs113"]


def _status_class(status: str) -> str:
    return "solved" if status in SOLVED else status


def _solve(problem, route):
    if route == "casadi":
        S = ca.nlpsol("S", "ipopt", problem.nlp, OPTIONS)
    else:
        S = nncas.nlpsol("S", "ipopt", problem.nlp, OPTIONS, kkt_solver=route)
    result = S(**problem.bounds)
    return S.stats()["return_status"], float(result["f"])


def _check(name, kind):
    problem = PROBLEMS[name](kind)
    results = {route: _solve(problem, route) for route in ("casadi", "ipopt", "dense")}
    stock_status, stock_f = results["casadi"]
    for route, (status, f) in results.items():
        assert _status_class(status) == _status_class(stock_status), f"{name} {route}: {status}, stock {stock_status}"
        if _status_class(stock_status) == "solved":
            assert f == pytest.approx(stock_f, rel=1e-6, abs=1e-8), f"{name} {route}"
    if problem.unique:
        assert _status_class(stock_status) == "solved", f"{name}: stock IPOPT {stock_status}"
        assert stock_f == pytest.approx(problem.f_star, rel=1e-6, abs=1e-8), f"{name}: published {problem.f_star}"


def test_the_set_is_complete():
    assert len(PROBLEMS) >= 40 and set(QUICK) <= set(PROBLEMS)


@pytest.mark.parametrize("kind", [ca.SX, ca.MX], ids=["SX", "MX"])
@pytest.mark.parametrize("name", QUICK)
def test_quick_subset(name, kind):
    _check(name, kind)


@pytest.mark.hs
@pytest.mark.parametrize("kind", [ca.SX, ca.MX], ids=["SX", "MX"])
@pytest.mark.parametrize("name", sorted(PROBLEMS))
def test_hock_schittkowski(name, kind):
    _check(name, kind)
