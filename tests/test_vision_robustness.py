"""``python -m vision.robustness``: problem 7 over test images on a LocalCluster and on a scheduler
and workers started here, every row equal to a serial ``vision.adversarial`` solve of the same
(image, target); resumed and extended runs; Ctrl-C; bad input. Real MNIST, the real width-128
classifier, real IPOPT solves."""
from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from dask_processes import LIMIT_S, scheduler_and_workers
from nncas.apps.cli import INTERRUPTED_EXIT
from signals import WITH_DEFAULT_SIGINT
from vision.adversarial import THRESHOLD, solve_adversarial
from vision.data import as_inputs, load_mnist
from vision.robustness import COLUMNS, built_problems, main, parse_images, targets_of
from vision.train import ensure_classifier

ROOT = Path(__file__).resolve().parents[1]
EXACT = 1e-6  # rows against serial solves (relative; they run the same iterations)


@pytest.fixture(scope="module")
def mnist():
    return load_mnist()


@pytest.fixture(scope="module")
def serial(mnist):
    """(image, target) -> objective of ``vision.adversarial.solve_adversarial``, solved here on demand."""
    net, _ = ensure_classifier(128, data=mnist)
    cache = {}

    def objective(image, target):
        if (image, target) not in cache:
            x_ref = as_inputs(mnist.test_images[image:image + 1])[0].astype(np.float64)
            _, stats, _, _ = solve_adversarial(net, x_ref, target)
            assert stats["success"]
            cache[image, target] = stats["objective"]
        return cache[image, target]

    return objective


def rows(out: Path) -> list[dict]:
    with open(out / "results.csv", newline="") as f:
        return list(csv.DictReader(f))


def assert_equal_to_serial(found: list[dict], serial, pairs=None) -> None:
    for row in found:
        key = (int(row["image"]), int(row["target"]))
        if pairs is not None and key not in pairs:
            continue
        assert row["status"] == "Solve_Succeeded" and row["success"] == "1"
        assert float(row["objective"]) == pytest.approx(serial(*key), rel=EXACT)
        assert float(row["norm"]) ** 2 == pytest.approx(float(row["objective"]), rel=1e-9)
        assert float(row["p_target"]) >= THRESHOLD - 1e-6 and int(row["predicted"]) == key[1]


def test_images_and_targets_are_parsed_and_checked():
    assert parse_images("0:100") == range(0, 100) and parse_images("7") == range(7, 8)
    assert targets_of(7, "next") == [8] and targets_of(9, "next") == [0]
    assert targets_of(3, "all") == [0, 1, 2, 4, 5, 6, 7, 8, 9]


def test_two_workers_write_rows_equal_to_serial_solves_then_resume_and_extend(tmp_path, serial, capsys):
    out = tmp_path / "sweep"
    assert main(["--images", "0:3", "--targets", "next", "--out", str(out), "--workers", "2"]) == 0
    first = rows(out)
    assert [(r["image"], r["label"], r["target"]) for r in first] == [("0", "7", "8"), ("1", "2", "3"), ("2", "1", "2")]
    assert list(first[0]) == [c.name for c in COLUMNS]
    assert_equal_to_serial(first, serial)
    assert "0 of 3 rows present, solving 3 on 2 dask workers" in capsys.readouterr().out

    table = (out / "results.csv").read_bytes()
    assert main(["--images", "0:3", "--targets", "next", "--out", str(out), "--workers", "1"]) == 0
    assert "all 3 rows present" in capsys.readouterr().out
    assert (out / "results.csv").read_bytes() == table  # nothing solved again

    # every target of image 0 with one worker: its (0, 8) row is kept, 8 new ones
    assert main(["--images", "0", "--targets", "all", "--out", str(out), "--workers", "1"]) == 0
    assert "1 of 9 rows present, solving 8 on 1 dask worker" in capsys.readouterr().out
    found = rows(out)
    assert len(found) == 11
    assert [r for r in found if r["image"] != "0"] == first[1:]
    image0 = [r for r in found if r["image"] == "0"]
    assert sorted(int(r["target"]) for r in image0) == [0, 1, 2, 3, 4, 5, 6, 8, 9]
    assert next(r for r in image0 if r["target"] == "8") == first[0]
    assert_equal_to_serial(image0, serial, pairs={(0, 3), (0, 9)})

    per_image = list(csv.DictReader(open(out / "images.csv")))
    assert [r["image"] for r in per_image] == ["0"] and per_image[0]["targets"] == "9"
    solved = [r for r in image0 if r["success"] == "1"]
    closest = min(solved, key=lambda r: float(r["norm"]))
    assert per_image[0]["closest_class"] == closest["target"] and per_image[0]["min_norm"] == closest["norm"]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["rows"] == 9 and summary["tasks"] == 9 and summary["rows_added"] == 8
    assert summary["min_norm"]["q0"] == float(closest["norm"]) and summary["settings"]["formulation"] == "graybox"
    for figure in ("histogram.png", "closest.png"):
        assert (out / figure).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    x = np.load(out / "x" / f"0_{closest['target']}.npy")
    assert x.shape == (784,) and np.sum((x - as_inputs(load_mnist().test_images[:1])[0]) ** 2) == pytest.approx(
        float(closest["objective"]), rel=1e-6)
    assert not list(out.rglob(".*.tmp"))


def test_external_scheduler_gives_the_same_rows_and_builds_once_per_worker(tmp_path, mnist, serial):
    ensure_classifier(128, data=mnist)
    out = tmp_path / "sweep"
    with scheduler_and_workers(tmp_path, 2) as (address, _):
        done = subprocess.run([sys.executable, "-m", "vision.robustness", "--images", "0:4", "--targets", "next",
                               "--out", str(out), "--scheduler", address], cwd=ROOT, capture_output=True, text=True,
                              timeout=LIMIT_S)
        from distributed import Client
        with Client(address) as client:
            built = client.run(built_problems)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 of 4 rows present, solving 4 on 2 dask workers" in done.stdout
    assert sorted(built.values()) in ([0, 1], [1, 1])  # one problem per worker, not one per task
    assert_equal_to_serial(rows(out), serial)
    assert json.loads((out / "summary.json").read_text())["rows"] == 4


def test_ctrl_c_keeps_every_finished_row_whole(tmp_path, mnist):
    ensure_classifier(128, data=mnist)
    out = tmp_path / "sweep"
    command = [sys.executable, "-m", "vision.robustness", "--images", "0:40", "--targets", "next", "--out", str(out),
               "--workers", "1"]
    proc = subprocess.Popen(WITH_DEFAULT_SIGINT + command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"}, start_new_session=True)
    try:
        for line in proc.stdout:
            if " rows, " in line:  # a progress line: at least one row is stored
                break
        os.killpg(proc.pid, signal.SIGINT)  # as a terminal's Ctrl-C: the client and its workers
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == INTERRUPTED_EXIT and "Traceback" not in err, err
    assert err.strip().splitlines() == ["interrupted; finished rows are saved; run the same command again to go on."]
    found = rows(out)
    assert 1 <= len(found) < 40
    for r in found:
        assert r["status"] and float(r["objective"]) > 0 and (out / "x" / f"{r['image']}_{r['target']}.npy").is_file()
    assert not list(out.rglob(".*.tmp"))


@pytest.mark.parametrize("argv, message", [
    (["--images", "5:3"], "--images 5:3: need 0 <= A < B <= 10000"),
    (["--images", "a:b"], "--images 'a:b': give A:B"),
    (["--images", "9999:10001"], "need 0 <= A < B <= 10000"),
    (["--workers", "0"], "--workers must be a positive whole number"),
    (["--workers", "2", "--scheduler", "tcp://127.0.0.1:1"], "not both"),
    (["--width", "100"], "width 100 is not offered"),
])
def test_bad_input_exits_2_with_one_line(tmp_path, capsys, argv, message):
    assert main(["--out", str(tmp_path / "o"), *argv]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err, err
    assert not (tmp_path / "o").exists()


def test_out_that_is_a_file_is_refused(tmp_path, capsys):
    (tmp_path / "f").write_text("keep")
    assert main(["--out", str(tmp_path / "f"), "--images", "0", "--workers", "1"]) == 2
    assert "is a file; give a folder" in capsys.readouterr().err and (tmp_path / "f").read_text() == "keep"
