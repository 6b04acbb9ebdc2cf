"""Command lines refuse bad input before any work, with exit status 2 and one line on stderr, and
create no output file; benchmarks.paper exits non-zero when a cell ends in an error."""
from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def exit_code(module: str, argv: list[str]) -> int:
    """``module``'s main run with ``argv`` in this process: its exit status (argparse's
    refusals exit by SystemExit)."""
    try:
        return importlib.import_module(module).main(argv)
    except SystemExit as stop:
        return stop.code


def refused(capsys, module: str, argv: list[str]) -> str:
    """Run ``module``'s main with ``argv``; assert exit 2 and one line on stderr without a
    traceback; return that line."""
    assert exit_code(module, argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert err.startswith(f"python -m {module}: error: "), err
    return err


def test_missing_weights_file_is_refused_not_trained_into(tmp_path, capsys):
    typo = tmp_path / "typo.h5"
    err = refused(capsys, "vision.adversarial", ["--weights", str(typo)])
    assert f"--weights {typo}: no such file" in err and "python -m vision.train --width 128 --out" in err
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("module, argv, message", [
    ("vision.adversarial", ["--json", "/proc/nncas-test.json"], "--json /proc/nncas-test.json cannot be written"),
    ("vision.adversarial", ["--plot", "/proc/nncas-test.png"], "--plot /proc/nncas-test.png cannot be written"),
    ("vision.train", ["--out", "/proc/nncas-test.h5"], "--out /proc/nncas-test.h5 cannot be written"),
    ("power.opf", ["--json", "/proc/nncas-test.json"], "--json /proc/nncas-test.json cannot be written"),
    ("power.scopf", ["--json", "/proc/nncas-test.json"], "--json /proc/nncas-test.json cannot be written"),
    ("power.sample", ["example", "/proc/nncas-test.h5", "-n", "1", "--workers", "1"],
     "out /proc/nncas-test.h5 cannot be written"),
])
def test_output_under_a_special_folder_is_refused_before_the_work(capsys, module, argv, message):
    """/proc takes no new files, not even from root (for whom os.access says yes)."""
    assert message in refused(capsys, module, argv)


@pytest.mark.parametrize("module, option", [("vision.adversarial", "--json"), ("power.opf", "--json"),
                                            ("vision.adversarial", "--plot")])
def test_output_that_is_not_a_regular_file_is_refused(tmp_path, capsys, module, option):
    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    assert f"{option} {fifo} is not a regular file" in refused(capsys, module, [option, str(fifo)])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pipe.png"]


def test_output_folder_given_as_a_file_is_refused_before_measuring(tmp_path, capsys):
    (tmp_path / "report.json").mkdir()
    err = refused(capsys, "benchmarks.oracle", ["--mnist", "", "--scopf", "100", "--out", str(tmp_path / "report")])
    assert f"--out {tmp_path / 'report.json'} is a folder; give a file name" in err


def test_training_seed_out_of_range_is_refused_before_training(tmp_path, capsys):
    """(``--seed 1e23`` is no whole number: argparse refuses it in one line.)"""
    err = refused(capsys, "vision.train", ["--seed", str(10 ** 23), "--out", str(tmp_path / "c.h5")])
    assert "seed must be at most 4294967295" in err
    assert not list(tmp_path.iterdir())


def test_dead_dask_scheduler_fails_before_creating_the_file(tmp_path, capsys):
    dask = pytest.importorskip("dask")
    pytest.importorskip("distributed")  # its config defaults first: config.set restores what it found
    out = tmp_path / "s.h5"
    with dask.config.set({"distributed.comm.timeouts.connect": "2s"}):
        err = refused(capsys, "power.sample", ["example", str(out), "-n", "2", "--scheduler", "tcp://127.0.0.1:1"])
    assert "--scheduler tcp://127.0.0.1:1: no dask scheduler answers there" in err
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("module, argv, message", [
    ("benchmarks.oracle", ["--mnist", "abc"], "argument --mnist: 'abc' is not a list of positive whole numbers"),
    ("benchmarks.oracle", ["--device", "gpu"], "device='gpu' is not a torch device"),
    ("benchmarks.oracle", ["--mnist", "", "--scopf", "7"], "width 7 is not a paper width"),
    ("benchmarks.oracle", ["--out", "/proc/nncas-test"], "--out /proc/nncas-test.json cannot be written"),
    ("benchmarks.iteration", ["--scopf", "7"], "width 7 is not a paper width"),
    ("benchmarks.mpc", ["--horizons", "0"], "argument --horizons: '0' is not a list of positive whole numbers"),
    ("benchmarks.mpc", ["--out", "/proc/nncas-test"], "--out /proc/nncas-test.json cannot be written"),
    ("benchmarks.construction", ["--nlpsol", "a,b"], "argument --nlpsol: 'a,b' is not a list"),
    ("benchmarks.paper", ["--problem", "mnist", "--sizes", "12x", "--out", "o"], "argument --sizes: '12x'"),
    ("benchmarks.scopf_iterations", ["--sizes", "0"], "argument --sizes: '0'"),
    ("benchmarks.scopf_iterations", ["--out", "/proc/nncas-test"], "--out /proc/nncas-test.json cannot be written"),
    ("benchmarks.paper", ["--problem", "mnist", "--sizes", "128", "--formulations", "fool", "--out", "o"],
     "unknown formulation fool"),
    ("benchmarks.paper", ["--problem", "mnist", "--sizes", "128", "--hessians", "exact,bfgs", "--out", "o"],
     "unknown Hessian route bfgs"),
    ("benchmarks.paper", ["--problem", "mnist", "--sizes", "128", "--device", "tpu", "--out", "o"],
     "--device 'tpu': use cpu or cuda"),
    ("benchmarks.paper", ["--problem", "mnist", "--sizes", "128", "--out", "/proc/nncas-test"],
     "--out /proc/nncas-test/results.jsonl"),
])
def test_benchmark_command_lines_refuse_bad_input_in_one_line(tmp_path, monkeypatch, capsys, module, argv, message):
    monkeypatch.chdir(tmp_path)
    assert message in refused(capsys, module, argv)
    assert not list(tmp_path.iterdir())


def test_paper_exits_non_zero_when_a_cell_errors(tmp_path):
    """full-bounds needs an input box, which the SCOPF problem does not offer: the cell errors."""
    command = [sys.executable, "-m", "benchmarks.paper", "--problem", "scopf", "--sizes", "100",
               "--formulations", "full-bounds", "--out", str(tmp_path)]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "1 cell(s) ended in an error" in done.stderr and "Traceback" not in done.stderr
    (record,) = [json.loads(line) for line in (tmp_path / "results.jsonl").read_text().splitlines()]
    assert record["status"] == "error" and "full-bounds needs an input box" in record["error"]


COMMANDS = ["vision.train", "vision.adversarial", "vision.robustness", "power.opf", "power.scopf", "power.tscopf",
            "power.sample", "power.surrogate", *(f"benchmarks.{name}" for name in (
                "construction", "iteration", "kkt", "mpc", "oracle", "paper", "scopf_iterations", "sweep",
                "verification"))]


@pytest.mark.parametrize("module", COMMANDS)
def test_help_explains_every_option_in_plain_text(capsys, monkeypatch, module):
    """--help exits 0 under the command's own name; every option has help text (nncas's
    ArgumentParser refuses one without) and states its default; no reStructuredText markup;
    the description is a sentence, not the lead-in to a code block."""
    assert exit_code(module, ["--help"]) == 0
    text = capsys.readouterr().out
    assert text.startswith(f"usage: python -m {module} "), text
    assert "``" not in text and ":func:" not in text and ":class:" not in text, text
    description = text.split("\n\n")[1]
    assert not description.rstrip().endswith(":"), description
    parser = _parser_of(module, monkeypatch)
    for action in parser._actions:
        assert action.help, f"{module} {action.option_strings}"
        if action.default not in (None, False, [], "==SUPPRESS==") and action.option_strings:
            assert "default" in action.help, f"{module} {action.option_strings}: {action.help}"


def _parser_of(module: str, monkeypatch):
    """The ArgumentParser that ``module``'s main builds, caught as its --help runs."""
    from nncas.apps import cli
    built = []
    monkeypatch.setattr(cli.ArgumentParser, "print_help", lambda self, file=None: built.append(self))
    exit_code(module, ["--help"])
    return built[0]


def test_an_option_without_help_is_a_programming_error():
    from nncas.apps.cli import ArgumentParser
    with pytest.raises(TypeError, match="--x needs help text"):
        ArgumentParser(prog="p").add_argument("--x")
