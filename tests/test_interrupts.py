"""Ctrl-C: real command lines and real solves stopped by SIGINT mid-run. The interrupt reaches
the caller as KeyboardInterrupt, a CLI exits 130 with one line "interrupted", no result file is
replaced and no sample is stored as failed."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import casadi as ca
import h5py
import numpy as np
import pytest
import torch

import nncas
from nncas.apps.cli import INTERRUPTED_EXIT, run_main
from nncas.interrupts import interrupts_remembered
from signals import WITH_DEFAULT_SIGINT

ROOT = Path(__file__).resolve().parents[1]
LIMIT_S = 300  # a hung child is killed after this long (a failure, not a measurement)


def interrupt(command: list[str], ready: str, delay: float = 1.0, group: bool = False) -> tuple[int, str, str]:
    """Run ``command``, wait for a line of its output containing ``ready`` and ``delay`` seconds
    more, send SIGINT (to its whole process group with ``group``, as a terminal's Ctrl-C does);
    return (exit status, stdout, stderr)."""
    proc = subprocess.Popen(WITH_DEFAULT_SIGINT + command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"}, start_new_session=True)
    watchdog = threading.Timer(LIMIT_S, proc.kill)
    watchdog.start()
    try:
        seen = []
        for line in proc.stdout:
            seen.append(line)
            if ready in line:
                break
        else:
            proc.wait()
            pytest.fail(f"{command} ended before printing {ready!r}: {''.join(seen)}{proc.stderr.read()}")
        time.sleep(delay)
        (os.killpg if group else os.kill)(proc.pid, signal.SIGINT)
        out, err = proc.communicate()
    finally:
        watchdog.cancel()
    return proc.returncode, "".join(seen) + out, err


def assert_reported_as_interrupted(code: int, err: str) -> None:
    """Exit 130; stderr: one line of ours starting with "interrupted", after at most CasADi's own
    warning lines about the interrupt; no traceback."""
    assert code == INTERRUPTED_EXIT, err
    assert "Traceback" not in err, err
    lines = err.strip().splitlines()
    assert lines and lines[-1].startswith("interrupted"), err
    assert all(line.startswith("CasADi - ") and "KeyboardInterrupt" in line for line in lines[:-1]), err


def stored(path: Path) -> tuple[np.ndarray, np.ndarray]:
    with h5py.File(path, "r") as f:
        return f["index"][()], f["ok"][()]


def sample_command(out: Path, n: int, workers: int, batch: int) -> list[str]:
    # a 0.02 s simulation: most of a sample's time is its IPOPT power flow
    return [sys.executable, "-m", "power.sample", "example", str(out), "-n", str(n), "--workers", str(workers),
            "--batch", str(batch), "--nominal", "case", "--t-end", "0.02", "--dt", "0.01"]


def test_sampling_stops_at_ctrl_c_without_storing_a_failed_sample(tmp_path):
    out = tmp_path / "s.h5"
    code, _, err = interrupt(sample_command(out, 3000, 1, 100_000), "computing", delay=3.0)
    assert_reported_as_interrupted(code, err)
    index, ok = stored(out)
    assert 0 < len(index) < 3000 and ok.all()  # the run stopped; what it finished is stored, all converged
    np.testing.assert_array_equal(index, np.arange(len(index)))  # so a rerun computes the rest
    assert not list(tmp_path.glob(".*.tmp"))


def test_ctrl_c_with_a_process_pool_prints_no_worker_traceback(tmp_path):
    out = tmp_path / "s.h5"
    code, _, err = interrupt(sample_command(out, 2000, 2, 1), "samples,", delay=0.5, group=True)
    assert_reported_as_interrupted(code, err)
    index, ok = stored(out)
    assert 0 < len(index) < 2000 and ok.all()


@pytest.fixture(scope="module")
def classifier():
    from vision.data import load_mnist
    from vision.train import ensure_classifier

    return ensure_classifier(128, data=load_mnist())


def test_interrupted_adversarial_solve_leaves_the_json_file(tmp_path, classifier):
    result = tmp_path / "out.json"
    result.write_text('{"a good": "result"}\n')
    command = [sys.executable, "-m", "vision.adversarial", "--formulation", "reduced", "--verbose",
               "--json", str(result)]
    code, _, err = interrupt(command, "iter    objective")
    assert_reported_as_interrupted(code, err)
    assert result.read_text() == '{"a good": "result"}\n'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.json"]


NETWORK = """
import sys, numpy as np, torch
torch.manual_seed(0)
net = torch.nn.Sequential(torch.nn.Linear(784, 1024), torch.nn.Tanh(), torch.nn.Linear(1024, 1024),
                          torch.nn.Tanh(), torch.nn.Linear(1024, 10), torch.nn.Softmax(dim=-1))
# tolerances IPOPT cannot meet: the solve runs until the interrupt (it would end in about 2 s)
ENDLESS = {"ipopt.print_level": 5, "ipopt.tol": 1e-30, "ipopt.acceptable_iter": 0, "ipopt.dual_inf_tol": 1e-30,
           "ipopt.constr_viol_tol": 1e-30, "ipopt.compl_inf_tol": 1e-30}
"""
SOLVES = {
    "vision.adversarial.solve_adversarial": """
from vision.adversarial import solve_adversarial
try:
    x, stats, _, _ = solve_adversarial(net, np.full(784, 0.5), 3, options={**ENDLESS, "ipopt.sb": "no"})
except KeyboardInterrupt:
    print("KeyboardInterrupt", file=sys.stderr)
    sys.exit(130)
print("returned", stats["status"], file=sys.stderr)
""",
    "nncas.nlpsol": """
import casadi as ca, nncas
x = ca.MX.sym("x", 784)
e = nncas.embed(net, x, formulation="graybox", x0=np.full(784, 0.5))
S = nncas.nlpsol("S", "ipopt", {"x": ca.vertcat(x, e.w), "f": ca.sumsqr(x - 0.5), "g": ca.vertcat(e.g, e.y[3])},
                 ENDLESS)
try:
    S(x0=np.r_[np.full(784, 0.5), e.w0], lbx=np.r_[np.zeros(784), e.lbw], ubx=np.r_[np.ones(784), e.ubw],
      lbg=np.r_[e.lbg, 0.6], ubg=np.r_[e.ubg, np.inf])
except KeyboardInterrupt:
    print("KeyboardInterrupt", file=sys.stderr)
    sys.exit(130)
print("returned", S.stats()["return_status"], file=sys.stderr)
""",
    "nncas.solver, opti.solve": """
import casadi as ca, nncas
opti = ca.Opti()
x = opti.variable(784)
opti.set_initial(x, np.full(784, 0.5))
y, _ = nncas.add_predictor(opti, net, x, formulation="graybox")
opti.subject_to(y[3] >= 0.6)
opti.subject_to(opti.bounded(0, x, 1))
opti.minimize(ca.sumsqr(x - 0.5))
nncas.solver(opti, "ipopt", ENDLESS)
try:
    opti.solve()
except KeyboardInterrupt:
    print("KeyboardInterrupt", file=sys.stderr)
    sys.exit(130)
print("returned", file=sys.stderr)
""",
}


@pytest.mark.parametrize("route", SOLVES)
def test_ctrl_c_in_a_torch_graybox_solve_raises_keyboard_interrupt(route):
    """A solve whose time goes to the torch gray box's callbacks, stopped by SIGINT."""
    code, _, err = interrupt([sys.executable, "-c", NETWORK + SOLVES[route]], "iter    objective", delay=2.0)
    assert code == INTERRUPTED_EXIT and err.strip().splitlines()[-1] == "KeyboardInterrupt", err


def test_ctrl_c_while_sampling_on_a_dask_cluster(tmp_path):
    """The command line's tasks reach dask workers in other processes (by module name, not as
    ``__main__``), and Ctrl-C ends the client cleanly."""
    distributed = pytest.importorskip("distributed")
    out = tmp_path / "s.h5"
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster:
        command = sample_command(out, 2000, 1, 2) + ["--scheduler", cluster.scheduler_address]
        code, _, err = interrupt(command, "samples,", delay=0.5, group=True)
    assert_reported_as_interrupted(code, err)
    index, ok = stored(out)
    assert 0 < len(index) < 2000 and ok.all()


def test_interrupted_surrogate_training_keeps_the_model_and_resumes(tmp_path):
    """Ctrl-C while training: exit 130 with a resume hint; the model file there before stays as it
    was; the checkpoint left behind is whole."""
    authors = ROOT.parent / "shared" / "hawaii37"
    if not (authors / "10_10_gen_load_input_v2.pt").is_file():
        pytest.skip("the authors' Hawaii 37 samples (../shared/hawaii37) are absent")
    out = tmp_path / "m.h5"
    out.write_bytes(b"a good model")
    command = [sys.executable, "-m", "power.surrogate", "--data", str(authors), "--width", "500",
               "--epochs", "1000000", "--checkpoint-every", "1", "--out", str(out)]
    code, _, err = interrupt(command, "training width", delay=3.0)
    assert_reported_as_interrupted(code, err)
    assert "resume" in err
    assert out.read_bytes() == b"a good model"
    assert torch.load(tmp_path / "m.h5.ckpt.pt", weights_only=True)["epoch"] >= 1


def test_ctrl_c_in_a_benchmark_is_reported_not_a_traceback():
    command = [sys.executable, "-m", "benchmarks.verification", "--widths", "2048,2048,2048",
               "--formulations", "reduced"]
    code, _, err = interrupt(command, "width", delay=1.0)
    assert_reported_as_interrupted(code, err)


# ---- an interrupt that a library swallowed, in-process ----------------------------------------

SWALLOWING_OPTIONS = {"ipopt.print_level": 0, "print_time": False, "ipopt.tol": 1e-30, "ipopt.acceptable_iter": 0,
                      "ipopt.dual_inf_tol": 1e-30, "ipopt.constr_viol_tol": 1e-30, "ipopt.compl_inf_tol": 1e-30,
                      "ipopt.max_iter": 300}


@pytest.fixture
def python_sigint():
    """Python's own SIGINT handler in this process during the test, whatever it inherited."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def swallow_a_ctrl_c() -> None:
    """What CasADi's bindings sometimes do: Ctrl-C arrives, its KeyboardInterrupt is cleared."""
    try:
        signal.raise_signal(signal.SIGINT)
    except KeyboardInterrupt:
        pass


class SwallowingIterationCallback(ca.Callback):
    """nlpsol's ``iteration_callback`` that swallows a Ctrl-C at its third call."""

    def __init__(self, nx: int, ng: int):
        ca.Callback.__init__(self)
        self.sizes = {"x": nx, "lam_x": nx, "g": ng, "lam_g": ng, "f": 1, "lam_p": 0}
        self.calls = 0
        self.construct("swallowing", {})

    def get_n_in(self):
        return ca.nlpsol_n_out()

    def get_n_out(self):
        return 1

    def get_name_in(self, i):
        return ca.nlpsol_out(i)

    def get_sparsity_in(self, i):
        size = self.sizes[ca.nlpsol_out(i)]
        return ca.Sparsity.dense(size) if size else ca.Sparsity(0, 0)

    def eval(self, arg):
        self.calls += 1
        if self.calls == 3:
            swallow_a_ctrl_c()
        return [0]


def small_network():
    return torch.nn.Sequential(torch.nn.Linear(20, 32), torch.nn.Tanh(), torch.nn.Linear(32, 3))


def graybox_opti(y_objective: bool):
    """An Opti around a small gray box: x in [-1, 1]^20 near 0.5, with y[0] in the objective
    (``y_objective``) or bounded below by 0.3."""
    opti = ca.Opti()
    x = opti.variable(20)
    y, _ = nncas.add_predictor(opti, small_network(), x, formulation="graybox")
    opti.subject_to(opti.bounded(-1, x, 1))
    if y_objective:
        opti.minimize(ca.sumsqr(x - 0.5) + y[0] ** 2)
    else:
        opti.subject_to(y[0] >= 0.3)
        opti.minimize(ca.sumsqr(x - 0.5))
    return opti


def test_a_swallowed_ctrl_c_still_stops_an_nlpsol_solve(python_sigint):
    """The interrupt is remembered: the gray box raises at its next evaluation, the solver after."""
    x = ca.MX.sym("x", 20)
    e = nncas.embed(small_network(), x, formulation="graybox", x0=np.zeros(20))
    nlp = {"x": ca.vertcat(x, e.w), "f": ca.sumsqr(x - 0.5), "g": ca.vertcat(e.g, e.y[0])}
    callback = SwallowingIterationCallback(nlp["x"].numel(), nlp["g"].numel())
    S = nncas.nlpsol("S", "ipopt", nlp, {**SWALLOWING_OPTIONS, "iteration_callback": callback})
    with pytest.raises(KeyboardInterrupt):
        S(x0=np.r_[np.zeros(20), e.w0], lbx=np.r_[-np.ones(20), e.lbw], ubx=np.r_[np.ones(20), e.ubw],
          lbg=np.r_[e.lbg, 0.3], ubg=np.r_[e.ubg, np.inf])
    assert S.stats()["iter_count"] <= 3  # stopped at once, not at the iteration limit
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # restored


def test_a_swallowed_ctrl_c_still_stops_an_opti_solve(python_sigint):
    opti = graybox_opti(y_objective=False)
    iterations = []
    opti.callback(lambda i: (iterations.append(i), i == 2 and swallow_a_ctrl_c()))
    nncas.solver(opti, "ipopt", SWALLOWING_OPTIONS)
    with pytest.raises(KeyboardInterrupt):
        opti.solve()
    assert len(iterations) <= 4
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_a_handler_of_the_callers_own_is_left_alone():
    """A caller who installed their own SIGINT handler keeps it during the solve."""
    opti = graybox_opti(y_objective=True)
    during = []
    opti.callback(lambda i: during.append(signal.getsignal(signal.SIGINT)))
    nncas.solver(opti, "ipopt", {"ipopt.print_level": 0, "print_time": False})

    def own(signum, frame):
        pass

    previous = signal.signal(signal.SIGINT, own)
    try:
        opti.solve()
    finally:
        signal.signal(signal.SIGINT, previous)
    assert during and all(handler is own for handler in during)


def test_a_ctrl_c_in_a_finalizer_is_raised_after_it(capsys, python_sigint):
    """Python prints and drops an exception raised in ``__del__`` or a weakref callback; the
    handler raises the interrupt once the finalizer is done instead."""
    class Finalized:
        def __del__(self):
            signal.raise_signal(signal.SIGINT)

    with interrupts_remembered() as handler:
        with pytest.raises(KeyboardInterrupt):
            Finalized()  # finalized at once
            time.sleep(5)  # the interrupt arrives here
    assert handler.caught
    assert "Exception ignored" not in capsys.readouterr().err


def test_a_command_line_started_with_sigint_ignored_leaves_it_ignored():
    """A background job of a shell ignores Ctrl-C; :func:`run_main` keeps it so."""
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        during = []
        assert run_main(lambda: during.append(signal.getsignal(signal.SIGINT)) or 0) == 0
        assert during == [signal.SIG_IGN]
    finally:
        signal.signal(signal.SIGINT, previous)
