"""TSC-SCOPF: on the 3-bus example the full, reduced and gray-box formulations reach the same
optimum with the frequency bound active; CLI and surrogate storage; Hawaii 37 with the authors'
data."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from power import tscopf as tscopf_cli
from power.cases import scopf3_case
from power.sample import SampleConfig, Sampler, evaluate_sample
from power.scopf import Scopf
from power.surrogate import (HIDDEN_LAYERS, ignored_columns, load_data, load_surrogate, n_parameters,
                             save_surrogate, train_surrogate)
from power.tscopf import build_tscopf, solve_tscopf

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
TOL = {"ipopt.tol": 1e-9}


@pytest.fixture(scope="module")
def surrogate():
    """Width-100 surrogate (paper Table 1, 15k-parameter shape) trained on 40 simulated samples."""
    config = SampleConfig("example", t_end_s=10.0, nominal="case")
    samples = [evaluate_sample(config, k) for k in range(40)]
    assert all(s.ok for s in samples)
    data = {"inputs": np.stack([s.inputs for s in samples]), "outputs": np.stack([s.outputs for s in samples]),
            "source": "test", "path": "memory", "digest": "test"}
    net, meta = train_surrogate(data, 100, epochs=400, log=lambda *_: None)
    assert meta["validation_rmse_hz"] < 0.01
    return net, meta


@pytest.fixture(scope="module")
def unconstrained(surrogate):
    net, _ = surrogate
    return solve_tscopf(build_tscopf(scopf3_case(), net, "reduced", min_frequency_hz=None), net, TOL)


def test_unconstrained_equals_the_scopf(unconstrained):
    assert unconstrained.stats.success
    assert unconstrained.stats.objective == pytest.approx(Scopf(scopf3_case()).solve().objective_usd_per_h,
                                                          rel=1e-7)


@pytest.mark.parametrize("formulation", ["full", "reduced", "graybox"])
def test_formulations_agree_with_the_bound_active(surrogate, unconstrained, formulation):
    net, _ = surrogate
    bound = float(unconstrained.nn_torch_hz.min()) + 0.03
    # the surrogate is nonconvex outside its training range: start all three at the SCOPF optimum
    problem = build_tscopf(scopf3_case(), net, formulation, min_frequency_hz=bound, x0=unconstrained.x_vector)
    result = solve_tscopf(problem, net, TOL)
    assert result.stats.success, result.stats.status
    assert result.nn_torch_hz.min() == pytest.approx(bound, abs=1e-6)  # active
    np.testing.assert_allclose(result.nn_in_problem_hz, result.nn_torch_hz, atol=1e-7)
    assert result.stats.objective > unconstrained.stats.objective + 50.0
    reference = _REFERENCE.setdefault("objective", result.stats.objective)
    assert result.stats.objective == pytest.approx(reference, rel=1e-6)
    assert result.simulated_hz.shape == (3,)


_REFERENCE: dict[str, float] = {}


def test_storage_round_trip_and_cli(surrogate, unconstrained, tmp_path, capsys):
    net, meta = surrogate
    path = tmp_path / "model.h5"
    save_surrogate(path, net, meta)
    loaded, stored = load_surrogate(path)
    assert stored["width"] == 100 and stored["n_parameters"] == n_parameters(net)
    x = np.random.default_rng(0).uniform(0, 100, (4, 7))
    import torch
    with torch.no_grad():
        np.testing.assert_array_equal(loaded(torch.from_numpy(x)).numpy(), net(torch.from_numpy(x)).numpy())
    out = tmp_path / "r.json"
    bound = float(unconstrained.nn_torch_hz.min()) + 0.03
    code = tscopf_cli.main(["example", "--model", str(path), "--formulation", "graybox", "--warm-start",
                            "--min-frequency", str(bound), "--json", str(out)])
    assert code == 0
    printed = capsys.readouterr().out
    for word in ("status: Solve_Succeeded", "objective:", "iterations:", "breakdown:", "simulator"):
        assert word in printed
    report = json.loads(out.read_text())
    assert report["min_nn_torch_hz"] == pytest.approx(bound, abs=1e-6)
    assert set(report["stats"]) >= {"hessian_s", "jacobian_s", "function_s", "solver_s", "total_s"}
    assert tscopf_cli.main(["example", "--model", str(tmp_path / "none.h5")]) == 2
    assert "train one with" in capsys.readouterr().err


def test_a_surrogate_of_another_case_is_refused(surrogate):
    import torch
    net = torch.nn.Sequential(torch.nn.Linear(5, 3)).double()
    with pytest.raises(ValueError, match="does not take this case's 7 inputs"):
        build_tscopf(scopf3_case(), net)


def test_paper_widths_have_the_paper_parameter_counts():
    from power.surrogate import build_surrogate
    counts = {w: n_parameters(build_surrogate(117, 37, w)) for w in (100, 500, 1000)}
    assert counts == {100: 15_537, 500: 578_537, 1000: 4_159_037}
    assert set(HIDDEN_LAYERS) == {100, 500, 1000, 2000, 4000}


@pytest.mark.shared
@pytest.mark.skipif(not (SHARED / "hawaii37").is_dir(), reason="../shared/hawaii37 absent")
def test_authors_data_loads_in_the_paper_shape():
    data = load_data(SHARED / "hawaii37")
    assert data["inputs"].shape == (110, 117) and data["outputs"].shape == (110, 37)
    assert 59.0 < data["outputs"].min() and data["outputs"].max() < 60.0  # Hz, not deviations
    qg = ignored_columns(data, ("qg",))  # the paper's layout: 45 Pg, 45 Qg, 27 Pd
    np.testing.assert_array_equal(np.flatnonzero(qg), np.arange(45, 90))


def test_ignored_inputs_do_not_move_the_surrogate(tmp_path):
    """--ignore qg: the Qg columns are scaled to zero, so Qg moves cannot change the prediction;
    the network keeps its shape, and the file keeps the setting."""
    config = SampleConfig("example", t_end_s=10.0, nominal="case")
    samples = [evaluate_sample(config, k) for k in range(12)]
    data = {"inputs": np.stack([s.inputs for s in samples]), "outputs": np.stack([s.outputs for s in samples]),
            "source": "test", "path": "memory", "digest": "test", "input_names": Sampler(config).input_names}
    net, meta = train_surrogate(data, 100, epochs=50, log=lambda *_: None, ignore=("qg",))
    qg = ignored_columns(data, ("qg",))
    assert qg.sum() == meta["n_ignored_inputs"] == len(scopf3_case().network.generators)
    assert meta["ignored_inputs"] == "qg"
    plain, _ = train_surrogate(data, 100, epochs=1, log=lambda *_: None)
    assert n_parameters(net) == n_parameters(plain)

    x = torch.as_tensor(data["inputs"][:1])
    qg_moved, pg_moved = x.clone(), x.clone()
    qg_moved[:, torch.as_tensor(qg)] += 50.0
    pg_moved[:, 0] += 5.0
    with torch.no_grad():
        assert torch.equal(net(qg_moved), net(x))
        assert not torch.allclose(net(pg_moved), net(x))
        save_surrogate(tmp_path / "m.h5", net, meta)
        loaded, loaded_meta = load_surrogate(tmp_path / "m.h5")
        assert torch.equal(loaded(qg_moved), net(x)) and loaded_meta["ignored_inputs"] == "qg"

    unnamed = {**data, "input_names": None}
    with pytest.raises(ValueError, match="names no input columns"):
        ignored_columns(unnamed, ("qg",))
    with pytest.raises(ValueError, match="choose among"):
        ignored_columns(data, ("vm",))


def test_the_example_runs_without_a_model(tmp_path, monkeypatch, capsys):
    """No --model: a small surrogate of the case is simulated, trained once and cached."""
    monkeypatch.setenv("NNCAS_CACHE", str(tmp_path))
    assert tscopf_cli.main(["example", "--warm-start"]) == 0
    first = capsys.readouterr().out
    assert "simulating 40 samples" in first and "status: Solve_Succeeded" in first
    assert (tmp_path / "power" / "example_surrogate_w100.h5").is_file()
    assert tscopf_cli.main(["example", "--warm-start", "--formulation", "graybox"]) == 0
    second = capsys.readouterr().out
    assert "simulating" not in second and "status: Solve_Succeeded" in second
    objective = [line for line in first.splitlines() if line.startswith("objective:")]
    assert objective == [line for line in second.splitlines() if line.startswith("objective:")]


def test_surrogate_cli_refuses_bad_data_and_settings_before_training(tmp_path, capsys):
    """The output may not be the data; NaN samples, --validation 0 and --epochs 0 are refused."""
    from power.sample import run as sample
    from power.surrogate import main as surrogate_main
    data = tmp_path / "samples.h5"
    sample(SampleConfig("example", t_end_s=10.0, nominal="case"), data, 6, log=lambda *_: None)
    before = data.read_bytes()
    cases = [(["--out", str(data)], "is also an input"),
             (["--out", str(tmp_path / "m.h5"), "--validation", "0"], "validation must be a fraction"),
             (["--out", str(tmp_path / "m.h5"), "--epochs", "0"], "epochs must be a positive"),
             (["--out", str(tmp_path / "m.h5"), "--device", "tpu"], "device")]
    for argv, message in cases:
        assert surrogate_main(["--data", str(data), "--width", "100", *argv]) == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1
    assert data.read_bytes() == before and not (tmp_path / "m.h5").exists()
    import h5py
    with h5py.File(data, "a") as f:
        f["inputs"][0, 0] = np.nan
    assert surrogate_main(["--data", str(data), "--width", "100", "--out", str(tmp_path / "m.h5")]) == 2
    assert "hold NaN or Inf" in capsys.readouterr().err


def test_the_papers_stopping_rule_ends_training_and_a_resumed_run_ends_alike(tmp_path):
    """With ``patience`` training stops once the scaled loss stayed below 0.01 that many epochs;
    a run interrupted mid-way and resumed from its checkpoint ends at the same epoch with the
    same weights."""
    if not (SHARED / "hawaii37" / "10_10_gen_load_input_v2.pt").is_file():
        pytest.skip("the authors' Hawaii 37 samples (../shared/hawaii37) are absent")
    data = load_data(SHARED / "hawaii37")
    settings = {"epochs": 300, "patience": 20, "checkpoint_every": 1}
    net, meta = train_surrogate(data, 100, log=lambda *_: None, **settings)
    assert meta["epochs_below_target"] == 20 and 20 < meta["epochs_run"] < 300

    def stop_at_epoch_30(line):
        if "epoch 30/" in line:
            raise KeyboardInterrupt
    checkpoint = tmp_path / "m.ckpt.pt"
    with pytest.raises(KeyboardInterrupt):
        train_surrogate(data, 100, checkpoint=checkpoint, log=stop_at_epoch_30, **settings)
    assert torch.load(checkpoint, weights_only=True)["epoch"] == 29
    resumed, resumed_meta = train_surrogate(data, 100, checkpoint=checkpoint, log=lambda *_: None, **settings)
    assert resumed_meta["epochs_run"] == meta["epochs_run"]
    for a, b in zip(net.state_dict().values(), resumed.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_deep_surrogates_have_their_own_recipe():
    from power.surrogate import recipe
    assert recipe(100)["lr"] == 1e-3 and recipe(100)["patience"] is None
    assert recipe(2000)["lr"] == 1e-4 and recipe(4000)["patience"] == 1000
    with pytest.raises(ValueError, match="not a paper width"):
        recipe(3)
    assert recipe(4000)["dtype"] == "float32" and recipe(2000)["dtype"] == "float64"


def test_a_surrogate_trained_in_float32_is_stored_in_float64(tmp_path):
    """float32 training (the 593M surrogate's, for memory) gives a float64 network that fits as
    well as float64 training does."""
    if not (SHARED / "hawaii37" / "10_10_gen_load_input_v2.pt").is_file():
        pytest.skip("the authors' Hawaii 37 samples (../shared/hawaii37) are absent")
    data = load_data(SHARED / "hawaii37")
    nets = {dtype: train_surrogate(data, 100, epochs=200, log=lambda *_: None, dtype=dtype)
            for dtype in ("float32", "float64")}
    net, meta = nets["float32"]
    assert meta["dtype"] == "float32" and "dtype" not in nets["float64"][1]
    assert all(p.dtype == torch.float64 for p in net.state_dict().values())
    assert meta["validation_rmse_hz"] == pytest.approx(nets["float64"][1]["validation_rmse_hz"], rel=0.05)
    save_surrogate(tmp_path / "m.h5", net, meta)
    loaded, _ = load_surrogate(tmp_path / "m.h5")
    x = torch.from_numpy(data["inputs"][:5])
    torch.testing.assert_close(loaded(x), net(x).detach(), rtol=0, atol=0)
    with pytest.raises(ValueError, match="dtype must be one of float64, float32"):
        train_surrogate(data, 100, dtype="float16")
