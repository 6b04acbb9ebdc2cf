"""Frequency simulator: Anderson-Mirheydar closed form, steady state, dynamic data, Hawaii 37."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from power.cases import scopf3_case
from power.dynamic_data import (HAWAII37_H_BY_BUS, default_dynamic_data, dynamic_data_for, inertia_by_size,
                                load_case, load_dynamic_data, tripped_generator)
from power.dynamics import OperatingPoint, linearize
from power.network import Bus, Generator, Load, Network, per_unit
from power.sample import power_flow

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
SFR = {"H": 4.0, "R": 0.05, "D": 1.0, "Km": 0.95, "FH": 0.3, "TR": 8.0, "step": 0.1}


def sfr_closed_form(H, R, D, Km, FH, TR, step):
    """Nadir (pu) and its time (s) of Anderson & Mirheydar's system frequency response model.

    2H s w = -step/s - D w + Km (1 + FH TR s) / (R (1 + TR s)) (-w)  gives
    w(s) = -(step R / (2 H R TR)) (1 + TR s) / (s (s^2 + 2 z wn s + wn^2)) with
    wn^2 = (D R + Km) / (2 H R TR),  z = (2 H R + (D R + Km FH) TR) / (2 (D R + Km)) wn, so
    w(t) = -(R step / (D R + Km)) (1 + a e^{-z wn t} sin(wr t + phi)),  wr = wn sqrt(1 - z^2),
    a = sqrt((1 - 2 TR z wn + TR^2 wn^2) / (1 - z^2)),
    phi = atan2(wr TR, 1 - z wn TR) - atan2(sqrt(1 - z^2), -z);
    dw/dt = 0 at tz = atan2(wr TR, z wn TR - 1) / wr.
    """
    wn = math.sqrt((D * R + Km) / (2 * H * R * TR))
    z = (2 * H * R + (D * R + Km * FH) * TR) / (2 * (D * R + Km)) * wn
    wr = wn * math.sqrt(1 - z * z)
    a = math.sqrt((1 - 2 * TR * z * wn + TR**2 * wn**2) / (1 - z * z))
    phi = math.atan2(wr * TR, 1 - z * wn * TR) - math.atan2(math.sqrt(1 - z * z), -z)
    tz = math.atan2(wr * TR, z * wn * TR - 1) / wr
    nadir = -(R * step / (D * R + Km)) * (1 + a * math.exp(-z * wn * tz) * math.sin(wr * tz + phi))
    return nadir, tz


def single_area(H, R, D, Km, FH, TR, step):
    """One bus: a 100 MVA machine (H, R, Km, FH, TR, no valve lag), 100 MW of load with damping D,
    and an inverter-based 10 MW unit whose trip is the load step."""
    base = 100.0
    net = Network("single_area", base, (Bus(1, 3, 0.9, 1.1),), (Load(1, base, 0.0),), (),
                  (Generator(1, "M", base * (1 - step), 0.0, 0.0, 10 * base, -base, base),
                   Generator(1, "S", base * step, 0.0, 0.0, base * step, -1.0, 1.0)), ())
    data = replace(default_dynamic_data(net), h_s=np.array([H, 0.0]), mbase_mva=np.array([base, 10.0]),
                   droop=np.array([R, np.inf]), tg_s=np.zeros(2), km=np.array([Km, 1.0]),
                   fh=np.array([FH, FH]), tr_s=np.array([TR, TR]), load_damping=D)
    pu = per_unit(net)
    point = OperatingPoint(np.ones(1), np.zeros(1), np.array([1 - step, step]), np.zeros(2))
    return linearize(pu, data, point, trip=1)


def test_closed_form_reproduces_the_published_nadir():
    nadir, t = sfr_closed_form(**SFR)
    assert nadir == pytest.approx(-0.01083, abs=5e-6)
    assert t == pytest.approx(2.37, abs=5e-3)


def test_simulator_matches_anderson_mirheydar_within_one_percent():
    expected, t_expected = sfr_closed_form(**SFR)
    response = single_area(**SFR).simulate(t_end_s=30.0, dt_s=0.01)
    nadir_pu = response.nadir_hz[0] / 60.0 - 1
    assert nadir_pu == pytest.approx(expected, rel=0.01)
    assert response.nadir_time_s[0] == pytest.approx(t_expected, rel=0.01)


def test_steady_state_is_the_droop_and_damping_share():
    """On a lossless network (machine power changes then sum to the load change) all buses
    settle at -dP / (sum Km S/R + D_L sum pd) per unit."""
    case = scopf3_case()
    net = replace(case.network, branches=tuple(replace(b, r_pu=0.0) for b in case.network.branches))
    data = dynamic_data_for(net)
    pu = per_unit(net)
    point, ok = power_flow(net, np.array([g.pg_mw for g in net.generators]),
                           np.array([g.qg_mvar for g in net.generators]))
    assert ok
    trip = tripped_generator(case)
    model = linearize(pu, data, point, trip)
    response = model.simulate(t_end_s=60.0, record_every=100)
    lost = point.pg_pu[list(pu.gen_record).index(trip)]
    stiffness = np.sum(model.gain * model.km) + data.load_damping * pu.pd.sum()
    assert np.all(model.valve_hi > lost * model.gain / stiffness)  # no governor at its limit
    np.testing.assert_allclose(response.f_bus_hz[-1] / 60 - 1, -lost / stiffness, rtol=1e-4)
    np.testing.assert_allclose(model.bus_weights.sum(axis=1), 1.0, atol=1e-12)


def test_defaults_and_json_overrides(tmp_path):
    net = scopf3_case().network
    data = default_dynamic_data(net)
    np.testing.assert_array_equal(data.h_s, inertia_by_size(np.array([g.pmax_mw for g in net.generators])))
    assert np.all(data.droop == 0.05)
    spec = tmp_path / "dyn.json"
    spec.write_text(json.dumps({"load_damping": 2.0, "all": {"droop": 0.04},
                                "units": [{"bus": 3, "id": "C", "h_s": 7.0}, {"bus": 2, "droop": None}]}))
    over = load_dynamic_data(spec, net)
    assert over.load_damping == 2.0
    assert over.h_s[2] == 7.0 and over.h_s[0] == data.h_s[0]
    assert over.droop[0] == 0.04 and np.isinf(over.droop[1])
    spec.write_text(json.dumps({"units": [{"bus": 9, "h_s": 1.0}]}))
    with pytest.raises(ValueError, match="no generator None at bus 9"):
        load_dynamic_data(spec, net)
    spec.write_text(json.dumps({"all": {"inertia": 1.0}}))
    with pytest.raises(ValueError, match=r"unknown unit fields \['inertia'\]"):
        load_dynamic_data(spec, net)


@pytest.mark.shared
@pytest.mark.skipif(not (SHARED / "hawaii37").is_dir(), reason="../shared/hawaii37 absent")
def test_hawaii37_run_uses_its_inertia():
    case = load_case(SHARED / "hawaii37")
    net = case.network
    data = dynamic_data_for(net)
    assert data.source == "hawaii37"
    for g, h in zip(net.generators, data.h_s):
        assert h == HAWAII37_H_BY_BUS.get(g.bus, 0.0)
    pu = per_unit(net)
    point, ok = power_flow(net, np.array([g.pg_mw for g in net.generators]),
                           np.array([g.qg_mvar for g in net.generators]))
    assert ok
    response = linearize(pu, data, point, tripped_generator(case)).simulate()
    assert len(response.nadir_hz) == 37
    assert np.all((response.nadir_hz > 59.0) & (response.nadir_hz < 60.0))
