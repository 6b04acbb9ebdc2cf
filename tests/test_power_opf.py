"""AC-OPF: published PGLib-OPF optima, a derived 3-bus optimum, branch
equations against the complex-admittance form, and the command line."""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path

import casadi as ca
import numpy as np
import pytest

from power import opf
from power.acopf import AcOpf, branch_flows
from power.cases import CASE3_M, case3
from power.matpower import read_matpower
from power.network import Branch, Bus, Network, PiecewiseLinearCost, per_unit

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
PGLIB = SHARED / "pglib"

# PGLib-OPF v23.07 AC objectives ($/h), from the library's published baseline.
PGLIB_AC_OBJECTIVES = {
    "case14_ieee": 2.1781e3,
    "case30_ieee": 8.2085e3,
    "case39_epri": 1.3842e5,
    "case57_ieee": 3.7589e4,
    "case118_ieee": 9.7214e4,
}


@pytest.mark.shared
@pytest.mark.parametrize("case", sorted(PGLIB_AC_OBJECTIVES))
def test_pglib_objective_matches_published(case):
    path = PGLIB / f"pglib_opf_{case}.m"
    if not path.exists():
        pytest.skip(f"{path} not present")
    result = AcOpf(read_matpower(path)).solve()
    assert result.success, result.status
    published = PGLIB_AC_OBJECTIVES[case]
    assert abs(result.objective_usd_per_h - published) / published < 1e-4


def _solve(net):
    result = AcOpf(net).solve()
    assert result.success, result.status
    return result


def test_case3_optimum_equalizes_marginal_costs():
    result = _solve(case3())
    # lossless lines: P1 + P2 = 150; 0.02 P1 + 10 = 0.04 P2 + 12
    assert result.pg_mw == pytest.approx([400 / 3, 50 / 3], abs=1e-5)
    assert result.objective_usd_per_h == pytest.approx(5150 / 3, rel=1e-8)


def test_case3_with_binding_pmax():
    net = case3()
    gens = (replace(net.generators[0], pmax_mw=100.0), net.generators[1])
    result = _solve(replace(net, generators=gens))
    # P1 = 100 at its limit, P2 = 50: 0.01*100^2 + 1000 + 0.02*50^2 + 600
    assert result.pg_mw == pytest.approx([100.0, 50.0], abs=1e-5)
    assert result.objective_usd_per_h == pytest.approx(1750.0, rel=1e-8)


def test_case3_with_piecewise_linear_costs():
    net = case3()
    gens = (replace(net.generators[0], cost=PiecewiseLinearCost((0, 100, 250), (0, 1000, 2800))),
            replace(net.generators[1], cost=PiecewiseLinearCost((0, 250), (0, 3500))))
    result = _solve(replace(net, generators=gens))
    # marginal 10 then 12 $/MWh at bus 1 beats 14 at bus 2: P1 = 150, cost 1000 + 50*12
    assert result.pg_mw == pytest.approx([150.0, 0.0], abs=1e-4)
    assert result.objective_usd_per_h == pytest.approx(1600.0, rel=1e-7)


def test_case3_from_file_equals_embedded(tmp_path):
    path = tmp_path / "case3.m"
    path.write_text(CASE3_M)
    assert read_matpower(path).branches == case3().branches


def test_branch_flows_match_complex_admittance_form():
    rng = np.random.default_rng(0)
    buses = tuple(Bus(number=k, kind=3 if k == 1 else 1, vm_min_pu=0.9, vm_max_pu=1.1) for k in (1, 2, 3))
    branches = (
        Branch(1, 2, "1", 0.02, 0.2, g_fr_pu=0.01, b_fr_pu=0.05, g_to_pu=0.02, b_to_pu=0.03,
               tap_ratio=1.05, shift_deg=10.0),
        Branch(3, 2, "1", 0.01, 0.1, b_fr_pu=0.1, b_to_pu=0.1, tap_ratio=0.97, shift_deg=-5.0),
    )
    net = Network("t", 100.0, buses, (), (), (), branches)
    pu = per_unit(net)
    vm = 1 + 0.05 * rng.standard_normal(3)
    va = 0.1 * rng.standard_normal(3)
    flows = branch_flows(pu, ca.DM(vm), ca.DM(va))
    v = vm * np.exp(1j * va)
    for k, br in enumerate(branches):
        y = 1 / (br.r_pu + 1j * br.x_pu)
        t = br.tap_ratio * np.exp(1j * np.deg2rad(br.shift_deg))
        vf, vt = v[br.from_bus - 1], v[br.to_bus - 1]
        i_fr = (y + br.g_fr_pu + 1j * br.b_fr_pu) / abs(t) ** 2 * vf - y / np.conj(t) * vt
        i_to = -y / t * vf + (y + br.g_to_pu + 1j * br.b_to_pu) * vt
        s_fr, s_to = vf * np.conj(i_fr), vt * np.conj(i_to)
        assert float(flows.p_fr[k]) == pytest.approx(s_fr.real, abs=1e-12)
        assert float(flows.q_fr[k]) == pytest.approx(s_fr.imag, abs=1e-12)
        assert float(flows.p_to[k]) == pytest.approx(s_to.real, abs=1e-12)
        assert float(flows.q_to[k]) == pytest.approx(s_to.imag, abs=1e-12)


def test_mx_and_sx_give_the_same_optimum():
    sx = AcOpf(case3()).solve()
    mx = AcOpf(case3(), sym=ca.MX).solve()
    assert mx.objective_usd_per_h == pytest.approx(sx.objective_usd_per_h, rel=1e-9)


def test_cli_prints_summary_and_writes_json(tmp_path, capsys):
    case = tmp_path / "case3.m"
    case.write_text(CASE3_M)
    out = tmp_path / "out.json"
    assert opf.main([str(case), "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    for word in ("status: Solve_Succeeded", "objective: 1716.666667", "iterations:", "time:", f"result: {out}"):
        assert word in printed
    data = json.loads(out.read_text())
    assert data["objective_usd_per_h"] == pytest.approx(5150 / 3, rel=1e-8)
    assert [g["bus"] for g in data["generators"]] == [1, 2]
    assert set(tmp_path.iterdir()) == {case, out}  # no temporary file left behind
    umask = os.umask(0)
    os.umask(umask)
    assert out.stat().st_mode & 0o777 == 0o666 & ~umask


def test_cli_without_case_solves_embedded_case(capsys):
    assert opf.main([]) == 0
    assert "case3_nncas" in capsys.readouterr().out


def test_cli_reports_bad_file(tmp_path, capsys):
    bad = tmp_path / "bad.m"
    bad.write_text(CASE3_M.replace("mpc.baseMVA = 100;", "mpc.baseMVA = hundred;"))
    assert opf.main([str(bad)]) == 2
    err = capsys.readouterr().err
    assert f"{bad}:4: mpc.baseMVA: not a number" in err
