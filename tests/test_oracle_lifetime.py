"""How long a torch gray box lives: CasADi Functions built from a problem keep working after the
Opti is gone, ``release`` lets the oracle go, and rebuilding a solver reuses its callbacks."""
import gc
import weakref

import casadi as ca
import numpy as np
import torch
from torch import nn

import nncas
from nncas.oracles import callback
from nncas.placement import Placement

QUIET = {"print_time": False, "ipopt.print_level": 0, "ipopt.sb": "yes"}


def _net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(2, 8), nn.Tanh(), nn.Linear(8, 1)).double()


def _problem(net, formulation):
    """min |x - p|^2 + NN(x) over the box [-1, 1]^2, with p a parameter."""
    opti = ca.Opti()
    x, p = opti.variable(2), opti.parameter()
    y, form = nncas.add_predictor(opti, net, x, formulation=formulation)
    opti.minimize(ca.sumsqr(x - p) + y)
    opti.subject_to(opti.bounded(-1, x, 1))
    nncas.solver(opti, options=QUIET)
    return opti, x, p, form


def _solver_function(net):
    """An Opti solve as a Function of p, keeping nothing else (the MPC idiom)."""
    opti, x, p, form = _problem(net, "graybox")
    return opti.to_function("solve", [p], [x]), weakref.ref(form.oracle)


def test_function_outlives_the_opti_and_matches_the_reduced_space():
    net = _net()
    solve, oracle = _solver_function(net)
    gc.collect()
    assert oracle() is not None  # pinned for the Function
    opti, x, p, _ = _problem(net, "reduced")
    for value in (-0.5, 0.5):
        opti.set_value(p, value)
        np.testing.assert_allclose(solve(value).full().ravel(), opti.solve().value(x), rtol=1e-7, atol=1e-9)
    oracle().release()


def test_release_lets_the_oracle_go():
    pinned = len(callback._PINNED)
    solve, oracle = _solver_function(_net())
    assert len(callback._PINNED) > pinned
    del solve
    gc.collect()
    assert oracle() is not None
    oracle().release()
    gc.collect()
    assert oracle() is None
    assert len(callback._PINNED) == pinned


def test_rebuilding_the_solver_reuses_the_placed_callbacks():
    opti, _, _, form = _problem(_net(), "graybox")
    placed = dict(form.oracle._placed)
    assert len(placed) == 2  # Jacobian and Hessian
    nncas.solver(opti, options=QUIET)
    assert form.oracle._placed == placed
    form.oracle.release()


def test_placements_with_one_pattern_but_different_maps_differ():
    rows = np.array([[0, 1]])
    straight = Placement.of(rows, rows, (2, 2))
    swapped = Placement.of(rows[:, ::-1], rows[:, ::-1], (2, 2))
    assert straight.sparsity == swapped.sparsity
    assert straight.digest() != swapped.digest()
    assert straight.digest() == Placement.of(rows, rows, (2, 2)).digest()
