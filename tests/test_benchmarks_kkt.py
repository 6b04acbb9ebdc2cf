"""benchmarks.kkt on a small problem: each linear solver's row, the same optimum, and the
default-against-stock line naming what "auto" picks; the probe of auto at 300 inputs."""
import casadi as ca
import numpy as np
import pytest

from benchmarks.kkt import auto_against_mumps, against_stock, main, markdown, measure


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


def test_probe_line_compares_auto_with_mumps(tmp_path, capsys):
    """The probe's rows and its line: auto's pick against MUMPS, time per iteration, one run."""
    main(["--mnist", "", "--hawaii37", "", "--probe", "300", "--out", str(tmp_path / "probe")])
    assert f"wrote {tmp_path / 'probe'}.json and {tmp_path / 'probe'}.md" in capsys.readouterr().out
    text = (tmp_path / "probe.md").read_text()
    assert "| auto probe | 300 inputs | probe | rows | dense | dense | Solve_Succeeded |" in text
    assert "| auto probe | 300 inputs | probe | rows | mumps | dense | Solve_Succeeded |" in text
    lines = [line for line in text.splitlines() if line.startswith("auto probe 300 inputs: auto picks dense, ")]
    assert len(lines) == 1 and "against MUMPS's" in lines[0]
    rows = [{"problem": "auto probe", "case": "9 inputs", "solver": solver, "auto": "dense", "ipopt_per_iteration_s": s,
             "iterations": 5} for solver, s in (("dense", 0.001), ("mumps", 0.004))]
    assert auto_against_mumps(rows) == ["auto probe 9 inputs: auto picks dense, 1.0 ms per IPOPT iteration against "
                                        "MUMPS's 4.0: 0.25x (5 and 5 iterations)"]


@pytest.mark.parametrize("argv,message", [
    (["--solvers", "dense,umfpack"], "umfpack: use names out of dense, mumps, spral"),
    (["--probe-curvature", "nan"], "'nan' is not a finite number >= 0"),
    (["--probe", "-3"], "'-3' is not a whole number"),
    (["--mnist", "12x"], "not a list of positive whole numbers"),
    (["--hsllib", "no-such-libhsl.so"], "no such file"),
])
def test_bad_arguments_end_in_one_line(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--mnist", "", "--hawaii37", "", "--probe", "0", *argv])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("python -m benchmarks.kkt: error: ") and message in err and err.count("\n") == 1


def test_unwritable_out_is_refused_before_any_solve(tmp_path, capsys):
    (tmp_path / "folder.json").mkdir()
    assert main(["--mnist", "", "--hawaii37", "", "--probe", "300", "--out", str(tmp_path / "folder")]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.startswith("python -m benchmarks.kkt: error: ") and err.count("\n") == 1
