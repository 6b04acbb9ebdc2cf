"""Paper problem 7 on the width-128 Table 1 classifier: real MNIST, real training, real IPOPT solves.

The classifier is trained once into the cache (a few seconds) and reused afterwards.
"""
import json

import numpy as np
import pytest
import torch

from vision.adversarial import THRESHOLD, main, run
from vision.data import load_mnist
from vision.train import accuracy, ensure_classifier

FEASIBILITY = 1e-6  # IPOPT's constraint tolerance is 1e-8 relative; torch re-evaluates in float64


@pytest.fixture(scope="module")
def mnist():
    return load_mnist()


@pytest.fixture(scope="module")
def classifier(mnist):
    return ensure_classifier(128, data=mnist)


@pytest.fixture(scope="module")
def graybox_cli(mnist, classifier, tmp_path_factory):
    """``python -m vision.adversarial`` with no solver arguments, writing JSON and PNG."""
    out = tmp_path_factory.mktemp("adversarial")
    assert main(["--json", str(out / "r.json"), "--plot", str(out / "r.png")]) == 0
    return json.loads((out / "r.json").read_text()), out / "r.png"


def test_classifier_meets_the_paper_bar(mnist, classifier):
    net, meta = classifier
    assert meta["n_parameters"] == 167818 and meta["activation"] == "tanh"
    assert meta["data_digest"] == mnist.digest
    assert meta["test_accuracy"] == pytest.approx(accuracy(net, mnist.test_images, mnist.test_labels))
    assert meta["test_accuracy"] >= 0.95


def test_default_run_writes_json_and_png(graybox_cli):
    summary, png = graybox_cli
    assert summary["image"] == 0 and summary["label"] == 7 and summary["target"] == 8
    assert summary["formulation"] == "graybox" and summary["backend"] == "torch"
    assert summary["status"] == "Solve_Succeeded"
    assert summary["objective"] == pytest.approx(summary["distance_squared"], rel=1e-9)
    assert summary["objective"] > 0.1
    assert summary["probabilities"][8] >= THRESHOLD - FEASIBILITY and summary["predicted_class"] == 8
    # the first layer (784 -> 128) lifted: the Hessian is diagonal in x and dense in its outputs
    assert summary["stats"]["hess_nnz"] == 784 + 128 * 129 // 2
    assert summary["solve_time_s"] > 0 and summary["stats"]["hessian_s"] > 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000


@pytest.mark.parametrize("formulation", ["full", "reduced"])
def test_formulations_reach_the_graybox_objective(mnist, classifier, graybox_cli, formulation):
    summary, _ = graybox_cli
    result, _ = run(128, formulation, data=mnist)
    assert result.stats["status"] == "Solve_Succeeded"
    assert result.stats["objective"] == pytest.approx(summary["objective"], rel=1e-5)
    assert np.sum((result.x - result.x_ref) ** 2) == pytest.approx(result.stats["objective"], rel=1e-9)
    assert result.probabilities[result.target] >= THRESHOLD - FEASIBILITY
    if formulation == "full":  # one Jacobian entry per weight at least (paper Table 2)
        assert result.stats["jac_nnz"] >= 167818
    assert -1e-8 <= result.x.min() and result.x.max() <= 1 + 1e-8  # IPOPT relaxes bounds by 1e-8


@pytest.mark.slow
def test_l4casadi_graybox_reaches_the_objective_in_float32(mnist, classifier, graybox_cli):
    summary, _ = graybox_cli
    result, _ = run(128, "graybox", backend="l4casadi", data=mnist)
    assert result.stats["success"]
    assert result.stats["objective"] == pytest.approx(summary["objective"], rel=1e-5)
    assert result.probabilities[result.target] >= THRESHOLD - 1e-5  # float32 network evaluations


@pytest.mark.parametrize("argv, message", [
    (["--width", "100"], "width 100 is not offered; choose one of 128, 512, 1024, 2048, 4096, 8192"),
    (["--image", "10000"], "image index 10000 is out of range; the test set has images 0..9999"),
    (["--image", "-1"], "image index -1 is out of range"),
    (["--target", "7"], "target 7 equals the true label of test image 0"),
    (["--target", "10"], "target 10 is not a class"),
    (["--formulation", "full", "--backend", "l4casadi"], "apply to --formulation graybox only"),
    pytest.param(["--device", "cuda"], "torch sees no CUDA device", marks=pytest.mark.skipif(
        torch.cuda.is_available(), reason="CUDA is available")),
])
def test_bad_requests_are_refused_clearly(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err
