"""MPC with a learned pendulum model: the model, the closed loop on the true ODE, the embeddings."""
import sys
from pathlib import Path

import casadi as ca
import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))
import mpc_pendulum as mpc  # noqa: E402  (examples/ is not a package)

PLANT = mpc.Pendulum()


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    """Networks this small run best on one torch thread (l4casadi stalls on two; docs/mpc.md)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def net():
    return mpc.learned_model(PLANT, progress=False)


def test_learned_model_matches_the_ode_and_is_cached(net, capsys):
    inputs, increments = mpc.make_dataset(PLANT, 2000, np.random.default_rng(123))
    with torch.no_grad():
        predicted = net(torch.tensor(inputs, dtype=torch.float32)).numpy()
        at_rest = net(torch.zeros(1, 3)).numpy()
    relative_rmse = np.sqrt(np.mean((predicted - increments) ** 2, axis=0)) / increments.std(axis=0)
    assert np.all(relative_rmse < 0.02), relative_rmse
    np.testing.assert_allclose(at_rest, 0, atol=1e-6)
    again = mpc.learned_model(PLANT)
    assert "loaded" in capsys.readouterr().out
    for a, b in zip(net.state_dict().values(), again.state_dict().values()):
        assert torch.equal(a, b)


# closed-loop costs measured with this model and N = 20 were 29.96, 6.70 and 6.55
@pytest.mark.parametrize("x0, cost_bound",
                         [((0.45, 0.0), 33.0), ((-0.3, 1.0), 7.5), ((0.2, -1.5), 7.3)])
def test_closed_loop_reaches_upright(net, x0, cost_bound):
    controller = mpc.PendulumMPC(net, PLANT, horizon=20, embedding="graybox-torch")
    run = mpc.closed_loop(controller, x0, steps=60)
    assert run.all_succeeded
    assert np.all(np.abs(run.controls) <= PLANT.u_max + 1e-6)
    assert run.cost < cost_bound
    assert np.max(np.abs(run.states[-1])) < 5e-3
    warm_iterations = [s.iterations for s in run.steps[1:]]
    assert np.median(warm_iterations) <= 8  # the shifted warm start keeps re-solves short


@pytest.mark.parametrize("x0", [(0.45, 0.0), (-0.2, -1.2)])
def test_embeddings_give_the_same_first_control(net, x0):
    controls = {}
    for embedding in mpc.EMBEDDINGS:
        controller = mpc.PendulumMPC(net, PLANT, horizon=10, embedding=embedding)
        first = controller.step(x0)
        assert first.success, (embedding, first.status)
        controls[embedding] = controller.last_controls[0]
    # measured: 2e-7 (float64 embeddings, IPOPT tol 1e-6) and 1.2e-5 (l4casadi, float32)
    reference = controls["reduced"]
    np.testing.assert_allclose(controls["full"], reference, atol=1e-5)
    np.testing.assert_allclose(controls["graybox-torch"], reference, atol=1e-5)
    np.testing.assert_allclose(controls["graybox-l4casadi"], reference, atol=2e-4)


def test_warm_start_is_the_previous_solution_shifted(net):
    controller = mpc.PendulumMPC(net, PLANT, horizon=5, embedding="graybox-torch")
    with pytest.raises(RuntimeError, match="call step"):
        controller.shifted_start()
    controller.step([0.3, 0.2])
    values = ca.Function("values", [controller.opti.x], [controller.X, controller.U])
    X, U = (np.asarray(v) for v in values(controller.shifted_start()))
    np.testing.assert_array_equal(X[:, :-1], controller.last_states[:, 1:])
    np.testing.assert_array_equal(X[:, -1], controller.last_states[:, -1])
    np.testing.assert_array_equal(U[:, :-1], controller.last_controls[:, 1:])
    np.testing.assert_array_equal(U[:, -1], controller.last_controls[:, -1])


def test_bad_requests_are_refused_with_a_reason(net):
    with pytest.raises(ValueError, match="embedding='graybox'; choose one of"):
        mpc.PendulumMPC(net, PLANT, embedding="graybox")
    with pytest.raises(ValueError, match="horizon must be a positive integer"):
        mpc.PendulumMPC(net, PLANT, horizon=0)
    controller = mpc.PendulumMPC(net, PLANT, horizon=3, embedding="reduced")
    with pytest.raises(ValueError, match="x_meas must be 2 finite numbers"):
        controller.step([0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match="x_meas must be 2 finite numbers"):
        controller.step([np.nan, 0.0])
