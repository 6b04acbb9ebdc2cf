"""benchmarks.kkt on a small problem: each linear solver's row, the same optimum, and the
default-against-stock line naming what "auto" picks."""
import casadi as ca
import numpy as np
import pytest

from benchmarks.kkt import against_stock, markdown, measure


def test_rows_for_each_solver_reach_one_optimum():
    x = ca.MX.sym("x", 8)
    nlp = {"x": x, "f": ca.sumsqr(x - 2) + ca.sum1(ca.sin(3 * x)) ** 2, "g": ca.sum1(x)}
    args = {"x0": np.zeros(8), "lbx": -1, "ubx": 1.5, "lbg": 1, "ubg": 1}
    rows = []
    for solver in ("dense", "mumps"):
        row = measure(nlp, args, solver, {})
        assert row["status"] == "Solve_Succeeded" and row["auto"] == "dense"
        rows.append({"problem": "toy", "case": "8", "formulation": "graybox", "layout": "expression", "default_layout": "expression",
                     "solver": solver, "limit_s": 1.0, "ratio": 1.0, "ratio_1t": 1.0, **row})
    assert rows[0]["objective"] == pytest.approx(rows[1]["objective"], rel=1e-8)
    stock = {**rows[1], "layout": "rows", "total_s": 2 * rows[0]["total_s"]}
    lines = against_stock([*rows, stock])
    assert len(lines) == 1 and "expression + dense (auto)" in lines[0] and "0.50x" in lines[0]
    assert "| toy | 8 | graybox | expression | dense | dense |" in markdown(rows, 1e11, 5e10)
