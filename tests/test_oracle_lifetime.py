"""How long a gray box lives: as long as anything calls it. An embedding built inside a helper
function solves after the helper returned (plain casadi.nlpsol, nncas.nlpsol, an Opti and its
copy, opti.to_function), and the oracle is freed once the last Function using it is gone (no
process-wide pins, no leaked library copies or file descriptors)."""
import gc
import os
import re
import weakref

import casadi as ca
import numpy as np
import pytest
import torch
from torch import nn

import nncas
from nncas.oracles import is_graybox, keeper
from nncas.oracles.build import build

QUIET = {"print_time": False, "ipopt.print_level": 0, "ipopt.sb": "yes", "ipopt.tol": 1e-10}
TARGET = np.array([0.3, -0.4])


def _net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(2, 8), nn.Tanh(), nn.Linear(8, 1)).double()


def _built_in_a_helper(net, batch, **options):
    """An nlp dict ``min |X - T|^2 + sum NN(X)`` over [-1, 1], its bounds, and a weak reference
    to the gray box's evaluator; the embedding is dropped on return."""
    x = ca.MX.sym("x", 2, batch)
    e = nncas.embed(net, x, formulation="graybox", **options)
    n = 2 * batch
    nlp = {"x": ca.veccat(x, e.w), "f": ca.sumsqr(x - np.tile(TARGET[:, None], batch)) + ca.sum1(ca.vec(e.y)),
           "g": e.g}
    bounds = {"x0": np.r_[np.zeros(n), e.w0], "lbx": np.r_[-np.ones(n), e.lbw], "ubx": np.r_[np.ones(n), e.ubw],
              "lbg": e.lbg, "ubg": e.ubg}
    return nlp, bounds, weakref.ref(e.oracle.evaluator)


def _reference(net, batch):
    """The same problem in the reduced space."""
    x = ca.MX.sym("x", 2, batch)
    y = nncas.embed(net, x, formulation="reduced").y
    solver = ca.nlpsol("ref", "ipopt", {"x": ca.vec(x), "f": ca.sumsqr(x - np.tile(TARGET[:, None], batch))
                                        + ca.sum1(ca.vec(y))}, QUIET)
    return solver(x0=0, lbx=-1, ubx=1)["x"].full().ravel()


def _solved_after_the_nlp_is_dropped(make_solver, built, expected, atol):
    """Build a solver from ``built`` = (nlp dict, bounds, weak reference to the gray box's
    evaluator) with ``make_solver(nlp)``, drop the nlp, solve (x's first entries as
    ``expected``), then drop the solver: the gray box lives exactly as long as the solver."""
    nlp, bounds, evaluator = built
    solver = make_solver(nlp)
    del nlp, built
    gc.collect()
    assert evaluator() is not None
    x = solver(**bounds)["x"].full().ravel()[:expected.size]
    assert solver.stats()["success"]
    np.testing.assert_allclose(x, expected, atol=atol)
    del solver
    gc.collect()
    assert evaluator() is None


CASES = [(route, output, graybox_input, batch) for route in ("casadi", "nncas")
         for output in ("expression", "variables") for graybox_input in ("direct", "lifted") for batch in (1, 3)]


@pytest.mark.parametrize("route, output, graybox_input, batch", CASES)
def test_a_helper_built_gray_box_lives_with_its_solver_and_no_longer(route, output, graybox_input, batch):
    net = _net()
    _solved_after_the_nlp_is_dropped(
        lambda nlp: (ca.nlpsol if route == "casadi" else nncas.nlpsol)("S", "ipopt", nlp, QUIET),
        _built_in_a_helper(net, batch, graybox_output=output, graybox_input=graybox_input),
        _reference(net, batch), atol=1e-7)


@pytest.mark.parametrize("route", ["casadi", "nncas"])
def test_a_helper_built_gray_box_lives_through_sx_expansion(route):
    """``expand``: CasADi turns the graph into SX, the gray box's call and its keeper with it."""
    net = _net()
    _solved_after_the_nlp_is_dropped(
        lambda nlp: (ca.nlpsol if route == "casadi" else nncas.nlpsol)("S", "ipopt", nlp, {**QUIET, "expand": True}),
        _built_in_a_helper(net, 3, graybox_output="variables", graybox_input="direct"),
        _reference(net, 3), atol=1e-7)


@pytest.mark.parametrize("route", ["casadi", "nncas"])
def test_a_helper_built_l4casadi_gray_box_solves(route):
    pytest.importorskip("l4casadi")
    net = _net()
    _solved_after_the_nlp_is_dropped(
        lambda nlp: (ca.nlpsol if route == "casadi" else nncas.nlpsol)("S", "ipopt", nlp, {**QUIET, "ipopt.tol": 1e-6}),
        _built_in_a_helper(net, 2, backend="l4casadi", graybox_output="variables"),
        _reference(net, 2), atol=1e-4)


def _opti(net, batch, solver):
    """An Opti around a gray box, made and configured inside a helper; returns the Opti, its x
    and a weak reference to the evaluator."""
    opti = ca.Opti()
    x = opti.variable(2, batch)
    y, form = nncas.add_predictor(opti, net, x, formulation="graybox")
    opti.minimize(ca.sumsqr(x - np.tile(TARGET[:, None], batch)) + ca.sum1(ca.vec(y)))
    opti.subject_to(opti.bounded(-1, ca.vec(x), 1))
    solver(opti)
    return opti, x, weakref.ref(form.oracle.evaluator)


@pytest.mark.parametrize("batch", [1, 3])
def test_an_opti_returned_by_a_helper_and_its_copy_solve(batch):
    net = _net()
    opti, x, evaluator = _opti(net, batch, lambda o: nncas.solver(o, options=QUIET))
    np.testing.assert_allclose(opti.solve().value(ca.vec(x)), _reference(net, batch), atol=1e-7)
    copy = opti.copy()  # shares the gray box, not the original's Python record of it
    del opti
    gc.collect()
    nncas.solver(copy, options=QUIET)
    np.testing.assert_allclose(copy.solve().value(ca.vec(x)), _reference(net, batch), atol=1e-7)
    del copy
    gc.collect()
    assert evaluator() is None


@pytest.mark.parametrize("route", ["opti.solver", "nncas.solver"])
def test_a_function_of_the_solve_outlives_opti_and_embedding(route):
    """The MPC idiom: ``opti.to_function`` kept, everything else dropped (nncas.solver's
    stale-problem guards are callbacks too)."""
    net = _net()
    setup = ((lambda o: o.solver("ipopt", QUIET)) if route == "opti.solver" else
             (lambda o: nncas.solver(o, "ipopt", QUIET)))
    opti, x, evaluator = _opti(net, 1, setup)
    solve = opti.to_function("solve", [x], [x])  # from a start value to the optimum
    del opti, x
    gc.collect()
    assert evaluator() is not None
    np.testing.assert_allclose(solve(np.zeros(2)).full().ravel(), _reference(net, 1), atol=1e-7)
    del solve
    gc.collect()
    assert evaluator() is None


def _keeper_copies() -> int:
    """Library copies mapped in this process (the path field; a deleted file is marked after it)."""
    with open("/proc/self/maps") as maps:
        return len({line.split()[5] for line in maps if re.search(r"nncas_keeper_\d+_\d+_", line)})


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="counts through /proc")
def test_dropped_gray_boxes_leave_no_library_copy_or_file_open():
    net = _net()

    def one_gray_box():
        x = ca.MX.sym("x", 2)
        y = nncas.embed(net, x, formulation="graybox", graybox_input="direct").y
        return ca.Function("f", [x], [y])(np.array([0.1, 0.2]))

    one_gray_box()
    gc.collect()
    copies, files = _keeper_copies(), len(os.listdir("/proc/self/fd"))
    held = [nncas.embed(net, ca.MX.sym("x", 2), formulation="graybox") for _ in range(3)]
    assert _keeper_copies() == copies + 3  # one copy per live gray box
    del held
    values = [float(one_gray_box()) for _ in range(30)]
    gc.collect()
    assert _keeper_copies() == copies
    assert len(os.listdir("/proc/self/fd")) == files
    assert len(set(values)) == 1


def test_without_the_keeper_library_the_embedding_keeps_the_gray_box(monkeypatch, tmp_path, capfd):
    """No library (no C compiler at install): a warning, and the old guarantee."""
    monkeypatch.setattr(keeper, "LIBRARY", tmp_path / "missing.so")
    net = _net()
    x = ca.MX.sym("x", 2)
    with pytest.warns(keeper.KeeperMissing, match="python -m nncas.oracles.build"):
        e = nncas.embed(net, x, formulation="graybox", graybox_input="direct")
    assert e.oracle.function.class_name() == "CallbackInternal" and is_graybox(e.oracle.function)
    solver = nncas.nlpsol("S", "ipopt", {"x": x, "f": ca.sumsqr(x - TARGET) + e.y}, QUIET)
    np.testing.assert_allclose(solver(x0=0, lbx=-1, ubx=1)["x"].full().ravel(), _reference(net, 1), atol=1e-7)
    evaluator = weakref.ref(e.oracle.evaluator)
    del e
    gc.collect()
    assert evaluator() is None
    capfd.readouterr()
    solver(x0=0, lbx=-1, ubx=1)
    assert not solver.stats()["success"]
    assert "Callback object has been deleted" in capfd.readouterr().err


def test_a_freshly_built_keeper_keeps_a_gray_box(monkeypatch, tmp_path):
    """``python -m nncas.oracles.build`` compiles keeper.c into a library that works."""
    monkeypatch.setattr(keeper, "LIBRARY", build(tmp_path / "libnncas_keeper.so"))
    net = _net()
    _solved_after_the_nlp_is_dropped(lambda nlp: nncas.nlpsol("S", "ipopt", nlp, QUIET),
                                     _built_in_a_helper(net, 1, graybox_input="direct"), _reference(net, 1), atol=1e-7)
