"""Sampling: physical samples, Qg drawn within limits, a run killed mid-way resumes to the same data,
dask LocalCluster."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import h5py
import numpy as np
import pytest

from power.sample import SampleConfig, Sampler, evaluate_sample, read_samples, run

ROOT = Path(__file__).resolve().parents[1]
CONFIG = SampleConfig("example", t_end_s=10.0)


def _count(path: Path) -> int:
    try:
        with h5py.File(path, "r") as f:
            return f["index"].shape[0]
    except (OSError, KeyError):
        return 0


def test_samples_are_power_flows_within_the_spread():
    sampler = Sampler(CONFIG)
    sample = sampler.evaluate(3)
    assert sample.ok
    net = sampler.net
    pd = sample.inputs[-len(net.loads):]
    nominal = np.array([d.pd_mw for d in net.loads])
    assert np.all(np.abs(pd / nominal - 1) <= 0.1 + 1e-12)
    pg = sample.inputs[:len(net.generators)]
    assert pg.sum() >= pd.sum()  # generation covers load plus losses
    assert sample.outputs.shape == (3,) and np.all(sample.outputs < 60.0)


def test_qg_limits_draw_stays_within_the_limits_and_differs_from_the_default():
    scaled, limits = Sampler(CONFIG), Sampler(replace(CONFIG, qg="limits"))
    online = np.array([g.in_service for g in limits.net.generators])
    spans = []
    for k in range(5):
        _, pg_s, qg_s = scaled.draw(k)
        net, pg_l, qg_l = limits.draw(k)
        assert np.all((limits.qmin <= qg_l) & (qg_l <= limits.qmax))
        np.testing.assert_array_equal(pg_l, pg_s)  # Pg and loads are drawn as before
        assert [d.pd_mw for d in net.loads] == [d.pd_mw for d in scaled.draw(k)[0].loads]
        assert not np.allclose(qg_l[online], qg_s[online])
        spans.append(qg_l)
    spans = np.array(spans)
    # the draws leave the +-10% band around nominal Qg
    assert np.any(np.abs(spans - scaled.qg_nominal) > 0.1 * np.abs(scaled.qg_nominal) + 1e-9)
    sample = limits.evaluate(0)
    assert sample.ok and np.all(sample.outputs < 60.0)


def test_qg_edges_draw_puts_about_half_the_units_at_a_reactive_limit():
    scaled, edges = Sampler(CONFIG), Sampler(replace(CONFIG, qg="edges"))
    online = np.array([g.in_service for g in edges.net.generators])
    at_limit, total = 0, 0
    for k in range(40):
        net, pg, qg = edges.draw(k)
        assert np.all((edges.qmin <= qg) & (qg <= edges.qmax))
        np.testing.assert_array_equal(pg, scaled.draw(k)[1])  # Pg and loads are drawn as before
        limit = np.isclose(qg, edges.qmin) | np.isclose(qg, edges.qmax)
        at_limit, total = at_limit + limit[online].sum(), total + online.sum()
    assert 0.35 < at_limit / total < 0.65  # chance 1/2, over 40 draws of every online unit
    assert edges.evaluate(0).ok


def test_qg_setting_is_part_of_the_recorded_config(tmp_path):
    assert "qg" not in json.loads(CONFIG.to_json())  # files made before the option still match
    assert json.loads(replace(CONFIG, qg="limits").to_json())["qg"] == "limits"
    with pytest.raises(ValueError, match="qg must be one of"):
        replace(CONFIG, qg="box")
    out = tmp_path / "s.h5"
    run(CONFIG, out, 1, log=lambda *_: None)
    with pytest.raises(ValueError, match="use another output file or the same settings"):
        run(replace(CONFIG, qg="limits"), out, 2, log=lambda *_: None)


def test_killed_run_resumes_without_losing_or_repeating_samples(tmp_path):
    out = tmp_path / "samples.h5"
    cmd = [sys.executable, "-m", "power.sample", "example", str(out), "-n", "12", "--workers", "1",
           "--batch", "1", "--t-end", "10"]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while _count(out) < 3 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    partial = _count(out)
    assert 3 <= partial < 12, "the run should have been killed part-way"
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"{partial} present, computing {12 - partial}" in done.stdout
    data = read_samples(out)
    np.testing.assert_array_equal(data["index"], np.arange(12))
    for k in (0, partial - 1, 11):
        expected = evaluate_sample(CONFIG, k)
        np.testing.assert_allclose(data["inputs"][k], expected.inputs, rtol=1e-9)
        np.testing.assert_allclose(data["outputs"][k], expected.outputs, rtol=1e-9)
    assert not list(tmp_path.glob(".*.tmp")), "temporary files left behind"


def test_other_settings_refuse_to_extend_a_file(tmp_path):
    out = tmp_path / "s.h5"
    run(CONFIG, out, 1, log=lambda *_: None)
    with pytest.raises(ValueError, match="use another output file or the same settings"):
        run(SampleConfig("example", seed=1, t_end_s=10.0), out, 2, log=lambda *_: None)


def test_a_shorter_request_says_how_many_the_file_holds(tmp_path):
    out, said = tmp_path / "s.h5", []
    run(CONFIG, out, 2, log=lambda *_: None)
    assert run(CONFIG, out, 1, log=said.append) == 0
    assert said == [f"{out}: samples 0..0 all present (2 in the file)"]


def test_dask_local_cluster(tmp_path):
    distributed = pytest.importorskip("distributed")
    out = tmp_path / "dask.h5"
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as cluster:
        added = run(CONFIG, out, 3, batch=2, scheduler=cluster.scheduler_address, log=lambda *_: None)
    assert added == 3
    data = read_samples(out)
    np.testing.assert_array_equal(data["index"], [0, 1, 2])
    np.testing.assert_allclose(data["outputs"][1], evaluate_sample(CONFIG, 1).outputs, rtol=1e-9)


@pytest.mark.parametrize("argv, message", [
    (["--dt", "-0.01"], "dt_s must be a positive number of seconds"),
    (["--dt", "0"], "dt_s must be a positive number of seconds"),
    (["--t-end", "-5"], "t_end_s must be a positive number of seconds"),
    (["--dt", "2", "--t-end", "1"], "exceeds t_end_s"),
    (["--spread", "1.5"], "spread must be a fraction"),
])
def test_bad_simulation_settings_exit_2_before_any_file(tmp_path, capsys, argv, message):
    from power.sample import main
    out = tmp_path / "s.h5"
    assert main(["example", str(out), "-n", "2", "--workers", "1", *argv]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err
    assert not out.exists()  # so the corrected rerun is not refused by a file stamped with the bad setting
    assert main(["example", str(out), "-n", "1", "--workers", "1"]) == 0
