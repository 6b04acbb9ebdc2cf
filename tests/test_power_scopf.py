"""SCOPF (GO Challenge 1 / build_c1_scopf): a 3-bus case where the
contingency moves the dispatch, the constraint hook, and the paper's
Hawaii 37 case."""

from __future__ import annotations

import json
from pathlib import Path

import casadi as ca
import numpy as np
import pytest

from power import scopf as scopf_cli
from power.acopf import AcOpf
from power.cases import SCOPF3_CON, SCOPF3_INL, SCOPF3_RAW, SCOPF3_ROP, scopf3_case
from power.psse import read_go_c1
from power.scopf import Scopf

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
PAPER_OBJECTIVE = 82379.0  # arXiv 2509.22462 Table 3, SCOPF with the frequency surrogate


@pytest.fixture(scope="module")
def scopf3():
    model = Scopf(scopf3_case())
    return model, model.solve()


def test_contingency_moves_dispatch_from_a_to_b(scopf3):
    _, result = scopf3
    assert result.success, result.status
    opf = AcOpf(scopf3_case().network).solve()
    assert opf.success
    # without the contingency: A and C (cheap) carry the 200 MW load, B idle
    assert opf.pg_mw[1] == pytest.approx(0.0, abs=1e-3)
    assert opf.pg_mw[2] == pytest.approx(100.0, abs=1e-3)
    # with it: A must leave room on line 1-3 for its share of C's 100 MW
    pg_a, pg_b, pg_c = result.pg_mw
    assert pg_b > 40.0 and pg_a < opf.pg_mw[0] - 40.0
    assert pg_c == pytest.approx(100.0, abs=1e-3)
    # the move costs B's 30 $/MWh instead of A's 10 $/MWh on some 48 MW
    assert result.objective_usd_per_h - opf.objective_usd_per_h > 900.0


def test_contingency_network_obeys_c1_rules(scopf3):
    model, result = scopf3
    sol = result.solution
    label = "GEN_C"
    delta = result.delta_pu[label]
    # response pg_k = pg_0 + alpha delta (alpha = 1), the lost unit at 0
    assert result.contingency_pg_mw[label] == pytest.approx(
        [result.pg_mw[0] + 100 * delta, result.pg_mw[1] + 100 * delta, 0.0], abs=1e-6)
    # A and B together pick up C's 100 MW and more (losses grow with the longer path)
    assert 100.0 < 2 * 100 * delta < 110.0
    # line 1-3 (limited branch 1) at its 100 MVA rating in the contingency
    s2 = np.maximum(sol.g[f"{label}.thermal_fr"], sol.g[f"{label}.thermal_to"])
    assert np.sqrt(s2[1]) == pytest.approx(1.0, abs=1e-5)
    assert np.all(np.sqrt(s2) <= [3.0, 1.0, 3.0] + np.array(1e-6))
    # voltage magnitudes held at buses 1, 2 (generators in service), free at bus 3
    vm0, vmk = sol.x["base.vm_pu"], sol.x[f"{label}.vm_pu"]
    assert vmk[:2] == pytest.approx(vm0[:2], abs=1e-8)
    assert np.all(np.abs(sol.g[f"{label}.p_balance"]) < 1e-8)


def test_hook_adds_a_constraint_on_base_pg(scopf3):
    _, free = scopf3
    model = Scopf(scopf3_case())
    assert model.pg_mw_by_bus.shape == (3, 1) and model.pd_mw_by_bus.shape == (1, 1)
    model.nlp.constrain("cap_a", model.pg_mw_by_bus[0], -np.inf, 30.0)
    capped = model.solve()
    assert capped.success
    assert capped.pg_mw[0] == pytest.approx(30.0, abs=1e-5)
    assert capped.objective_usd_per_h > free.objective_usd_per_h + 100.0
    assert model.nlp.evaluate(model.pg_mw_by_bus, capped.solution) == pytest.approx(capped.pg_mw, abs=1e-9)
    assert model.nlp.evaluate(model.pd_mw_by_bus, capped.solution) == pytest.approx([200.0])


def test_mx_build_gives_the_same_optimum(scopf3):
    _, sx = scopf3
    mx = Scopf(scopf3_case(), sym=ca.MX).solve()
    assert mx.success
    assert mx.objective_usd_per_h == pytest.approx(sx.objective_usd_per_h, rel=1e-7)


def test_cli_reads_files_and_writes_json(tmp_path, capsys):
    paths = {}
    for ext, text in (("raw", SCOPF3_RAW), ("rop", SCOPF3_ROP), ("inl", SCOPF3_INL), ("con", SCOPF3_CON)):
        paths[ext] = tmp_path / f"c.{ext}"
        paths[ext].write_text(text)
    out = tmp_path / "s.json"
    argv = [a for ext, p in paths.items() for a in (f"--{ext}", str(p))] + ["--json", str(out)]
    assert scopf_cli.main(argv) == 0
    printed = capsys.readouterr().out
    assert "status: Solve_Succeeded" in printed and "iterations:" in printed and f"result: {out}" in printed
    data = json.loads(out.read_text())
    assert data["generators"][2]["contingency_pg_mw"]["GEN_C"] == 0.0
    assert set(data["delta_pu"]) == {"GEN_C"}


@pytest.fixture(scope="module")
def hawaii37():
    folder = SHARED / "hawaii37"
    if not (folder / "hawaii37.raw").exists():
        pytest.skip("hawaii37 data not present")
    return read_go_c1(folder / "hawaii37.raw", folder / "hawaii37.rop", folder / "hawaii37.inl",
                      folder / "hawaii37-1gen.con")


@pytest.mark.shared
def test_hawaii37_scopf_objective_against_paper(hawaii37):
    model = Scopf(hawaii37)
    assert (model.pg_mw_by_bus.shape, model.qg_mvar_by_bus.shape, model.pd_mw_by_bus.shape) == (
        (45, 1), (45, 1), (27, 1))
    result = model.solve()
    assert result.success, result.status
    opf = AcOpf(hawaii37.network).solve()
    assert opf.success
    # a restriction of the OPF, so never cheaper ...
    assert result.objective_usd_per_h >= opf.objective_usd_per_h - 1e-6 * opf.objective_usd_per_h
    # ... and here no dearer: contingency G1 does not bind, and the paper's
    # optimum with the frequency surrogate is the same number, so that
    # constraint does not bind either
    assert abs(result.objective_usd_per_h - PAPER_OBJECTIVE) / PAPER_OBJECTIVE < 1e-4
    outage = hawaii37.contingencies[0].generator
    assert result.contingency_pg_mw["G1"][outage] == 0.0
    lost = result.pg_mw[outage]
    picked_up = (result.contingency_pg_mw["G1"] - result.pg_mw).sum() + lost
    assert picked_up == pytest.approx(lost, rel=0.05)  # the rest is the change in losses
