"""benchmarks.oracle end to end on the smallest SCOPF surrogate: report files and sane rows."""
import json

from benchmarks import oracle


def test_report_rows(tmp_path, capsys):
    out = tmp_path / "oracle"
    oracle.main(["--mnist", "", "--scopf", "100", "--skip-l4casadi", "--rounds", "2",
                 "--out", str(out)])
    assert f"wrote {out}.json and {out}.md" in capsys.readouterr().out
    report = json.loads(out.with_suffix(".json").read_text())
    (row,) = report["rows"]
    assert row["problem"] == "SCOPF-100" and row["params"] == 15537 and row["n_in"] == 117
    # every timing is a positive duration
    for key in ("bound_s", "torch_structured_s", "torch_structured_own_sweep_s", "torch_generic_s",
                "nlp_torch_s"):
        assert row[key] > 0
    assert "float64 matmul rate" in report["header"] and "best of 2 passes" in report["header"]
    assert row["bound_flop"] == 2 * 117 * 15537
    assert "| SCOPF-100 | 15,537 |" in out.with_suffix(".md").read_text()


def test_iteration_benchmark_reports_a_solved_row(capsys):
    from benchmarks.iteration import main
    main(["--scopf", "100", "--mnist", ""])
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| SCOPF-100")]
    assert len(rows) == 1 and "Solve_Succeeded" in rows[0]


def test_the_oracle_measured_takes_the_networks_inputs():
    """A first layer narrow enough to be lifted by default: the benchmark still times the
    Hessian in the network's own inputs (the paper's oracle)."""
    import numpy as np
    import torch

    net = torch.nn.Sequential(torch.nn.Linear(50, 4), torch.nn.Tanh(), torch.nn.Linear(4, 3)).double()
    o, _, point, lam = oracle.graybox_nlp(net, 50, "cpu", method="structured")
    assert np.asarray(o.hessian_tensor(point[:50], lam[:3])).shape == (1, 50, 50)
