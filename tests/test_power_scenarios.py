"""``python -m power.tscopf CASE --scenarios N|FILE.csv --out DIR``: paper problem 8 over load
scenarios on a LocalCluster and on a scheduler and workers started here; every row equal to a
serial solve of the same scenario; resumed runs; bad input. Real surrogate, IPOPT, simulator."""
from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from dask_processes import LIMIT_S, scheduler_and_workers
from power.default_surrogate import ensure_surrogate
from power.dynamic_data import dynamic_data_for, load_case
from power.scenarios import COLUMNS, drawn_factors, nominal_task, read_factors, scaled_case, scenario_task
from power.tscopf import EXAMPLE_MIN_FREQUENCY_HZ, main

ROOT = Path(__file__).resolve().parents[1]
TOL = 1e-8


@pytest.fixture(scope="module")
def example():
    """The example case, its default surrogate, dynamics and a serial solver of one scenario."""
    case = load_case("example")
    net, _, _ = ensure_surrogate("example", log=lambda *_: None)
    dynamics = dynamic_data_for(case.network)
    nominal = nominal_task(case, net, "reduced", EXAMPLE_MIN_FREQUENCY_HZ, TOL, dynamics)
    cache = {}

    def serial(factors):
        key = tuple(np.round(factors, 15))
        if key not in cache:
            cache[key] = scenario_task(case, net, "reduced", EXAMPLE_MIN_FREQUENCY_HZ, TOL, dynamics, nominal,
                                       np.asarray(factors))
        return cache[key]

    return case, serial


def rows(out: Path) -> list[dict]:
    with open(out / "results.csv", newline="") as f:
        return list(csv.DictReader(f))


def assert_equal_to_serial(found, factors, serial):
    assert len(found) == len(factors)
    for row, u in zip(found, factors):
        expected = serial(u)
        assert row["status"] == expected["status"] and int(row["iterations"]) == expected["iterations"]
        assert float(row["objective"]) == pytest.approx(expected["objective"], rel=1e-6)
        assert float(row["min_simulated_hz"]) == pytest.approx(expected["min_simulated_hz"], rel=1e-9)
        assert float(row["load_mw"]) == pytest.approx(expected["load_mw"], rel=1e-12)


def test_drawn_scenarios_stay_within_the_spread_and_are_seeded(example):
    case, _ = example
    factors = drawn_factors(len(case.network.loads), 50)
    assert factors.shape == (50, len(case.network.loads))
    assert np.all(np.abs(factors - 1) <= 0.1) and np.ptp(factors) > 0.1
    np.testing.assert_array_equal(drawn_factors(len(case.network.loads), 3), factors[:3])
    scaled = scaled_case(case, factors[0])
    for d, s, u in zip(case.network.loads, scaled.network.loads, factors[0]):
        assert s.pd_mw == d.pd_mw * u and s.qd_mvar == d.qd_mvar * u


def test_two_workers_solve_seeded_scenarios_as_serial_solves_and_resume(tmp_path, example, capsys):
    case, serial = example
    out = tmp_path / "sweep"
    assert main(["example", "--scenarios", "2", "--out", str(out), "--workers", "2"]) == 0
    assert "0 of 2 rows present, solving 2 on 2 dask workers" in capsys.readouterr().out
    first = rows(out)
    assert list(first[0]) == [c.name for c in COLUMNS] and [r["scenario"] for r in first] == ["0", "1"]
    factors = drawn_factors(len(case.network.loads), 3)
    assert_equal_to_serial(first, factors[:2], serial)

    assert main(["example", "--scenarios", "3", "--out", str(out), "--workers", "1"]) == 0
    assert "2 of 3 rows present, solving 1 on 1 dask worker" in capsys.readouterr().out
    found = rows(out)
    assert found[:2] == first
    assert_equal_to_serial(found, factors, serial)
    assert any(r["success"] == "1" for r in found)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["rows"] == 3 and summary["settings"]["seed"] == 0 and summary["settings"]["spread"] == 0.1
    assert summary["solved"] == sum(r["success"] == "1" for r in found)
    assert (out / "scenarios.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    # other settings in the same folder are refused
    assert main(["example", "--scenarios", "3", "--out", str(out), "--workers", "1", "--min-frequency", "59.0"]) == 2
    assert "use another --out or the same settings" in capsys.readouterr().err


def test_csv_factors_on_an_external_scheduler_match_serial_solves(tmp_path, example):
    case, serial = example
    names = [f"{d.bus}/{d.id}" for d in case.network.loads]
    per_load = tmp_path / "loads.csv"
    factors = np.array([[0.95] * len(names), np.linspace(0.92, 1.04, len(names))])
    per_load.write_text(",".join(reversed(names)) + "\n"
                        + "".join(",".join(str(v) for v in reversed(u)) + "\n" for u in factors))
    np.testing.assert_array_equal(read_factors(per_load, case), factors)
    out = tmp_path / "sweep"
    with scheduler_and_workers(tmp_path, 2) as (address, _):
        done = subprocess.run([sys.executable, "-m", "power.tscopf", "example", "--scenarios", str(per_load),
                               "--out", str(out), "--scheduler", address], cwd=ROOT, capture_output=True,
                              text=True, timeout=LIMIT_S)
    assert done.returncode == 0, done.stdout + done.stderr
    assert_equal_to_serial(rows(out), factors, serial)
    assert "factors_sha256" in json.loads((out / "summary.json").read_text())["settings"]

    scale = tmp_path / "scale.csv"
    scale.write_text("scale\n0.95\n")
    np.testing.assert_array_equal(read_factors(scale, case), factors[:1])


@pytest.mark.parametrize("argv, message", [
    (["--scenarios", "0", "--out", "{tmp}/o"], "--scenarios 0: give a positive number"),
    (["--scenarios", "{tmp}/none.csv", "--out", "{tmp}/o"], "neither a number of scenarios nor a CSV file"),
    (["--scenarios", "{tmp}/bad.csv", "--out", "{tmp}/o"], "the header must be 'scale' or the loads"),
    (["--scenarios", "{tmp}/nan.csv", "--out", "{tmp}/o"], "line 2: factors must be finite and >= 0"),
    (["--scenarios", "3"], "--scenarios needs --out"),
    (["--out", "{tmp}/o"], "apply to --scenarios only"),
    (["--scenarios", "3", "--out", "{tmp}/o", "--workers", "0"], "--workers must be a positive whole number"),
])
def test_bad_input_exits_2_with_one_line(tmp_path, capsys, argv, message):
    (tmp_path / "bad.csv").write_text("factor\n1.0\n")
    (tmp_path / "nan.csv").write_text("scale\nnan\n")
    assert main(["example", *[a.format(tmp=tmp_path) for a in argv]]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err, err
    assert not (tmp_path / "o").exists()
