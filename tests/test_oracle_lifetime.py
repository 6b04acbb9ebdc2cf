"""How long a torch gray box lives: as long as the Opti it was added to, or the embedding that
holds it. Functions built from the problem keep working after the Opti is gone while the
embedding lives, and nothing keeps an oracle once both are gone (no process-wide pins)."""
import gc
import weakref

import casadi as ca
import numpy as np
import pytest
import torch
from torch import nn

import nncas

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
    """An Opti solve as a Function of p, and the embedding (the MPC idiom); the Opti is gone."""
    opti, x, p, form = _problem(net, "graybox")
    return opti.to_function("solve", [p], [x]), form


def test_function_outlives_the_opti_and_matches_the_reduced_space():
    net = _net()
    solve, form = _solver_function(net)
    gc.collect()
    opti, x, p, _ = _problem(net, "reduced")
    for value in (-0.5, 0.5):
        opti.set_value(p, value)
        np.testing.assert_allclose(solve(value).full().ravel(), opti.solve().value(x), rtol=1e-7, atol=1e-9)


def test_nothing_keeps_the_oracle_once_opti_and_embedding_are_gone():
    solve, form = _solver_function(_net())
    oracle = weakref.ref(form.oracle)
    del form
    gc.collect()
    assert oracle() is None
    with pytest.raises(RuntimeError, match="Callback object has been deleted"):
        solve(0.0)


def test_the_opti_keeps_its_gray_boxes():
    """``y, _ = add_predictor(...)``: the record is dropped, the Opti still solves."""
    opti = ca.Opti()
    x = opti.variable(2)
    y, _ = nncas.add_predictor(opti, _net(), x, formulation="graybox")
    gc.collect()
    opti.minimize(ca.sumsqr(x) + y)
    opti.subject_to(opti.bounded(-1, x, 1))
    opti.solver("ipopt", QUIET)
    assert opti.solve().stats()["success"]
