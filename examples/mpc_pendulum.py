r"""Model predictive control of an inverted pendulum with a learned neural dynamics model.

The plant is a damped pendulum driven by a bounded torque, with :math:`\theta = 0` upright:

.. math::  \dot\theta = \omega, \qquad
           \dot\omega = \tfrac{g}{l}\sin\theta - \tfrac{b}{m l^2}\,\omega + \tfrac{u}{m l^2},
           \qquad |u| \le u_{max} < m g l,

so near the horizontal the torque cannot hold the pendulum and the controller has to act early.
A tanh MLP learns one sample time of it, :math:`x^+ = x + NN(x, u)`, from RK4 simulations of
this ODE. The controller solves, at every sample, with the measured state :math:`\hat x` as an
NLP parameter (multiple shooting, the network in every step's dynamics constraint):

.. math::  \min_{x, u} \sum_{k=0}^{N-1} \big(x_k^T Q x_k + r u_k^2\big) + x_N^T P x_N
           \quad\text{s.t.}\quad x_0 = \hat x,\ x_{k+1} = x_k + NN(x_k, u_k),\
           |u_k| \le u_{max},\ |\theta_k| \le \pi,\ |\omega_k| \le \omega_{max},

warm-started from its previous solution shifted by one step, and applies :math:`u_0` to the true
ODE. ``--embedding`` picks how the network enters: ``full``, ``reduced``, ``graybox-torch``
(all N steps in one batched torch call) or ``graybox-l4casadi`` (likewise, one l4casadi external).

Run:  python examples/mpc_pendulum.py [--embedding graybox-torch] [--horizon 20] [--steps 60]
                                      [--x0 0.45 0 --x0 -0.3 1] [--figure mpc.png]
"""
from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass, field

import casadi as ca
import numpy as np
import torch
from torch import nn

import nncas
from nncas.apps.cli import ArgumentParser
from nncas.apps.storage import torch_save_atomic
from nncas.cache import cache_root

#: --embedding value -> keyword arguments of nncas.add_predictor
EMBEDDINGS = {
    "full": {"formulation": "full"},
    "reduced": {"formulation": "reduced"},
    "graybox-torch": {"formulation": "graybox", "backend": "torch"},
    "graybox-l4casadi": {"formulation": "graybox", "backend": "l4casadi"},
}
N_STATES, N_CONTROLS = 2, 1
#: revision of the training procedure in learned_model, part of the cache key
RECIPE = 2


@dataclass(frozen=True)
class Pendulum:
    """Physical constants, sample time and limits of the plant (SI units, theta = 0 upright)."""

    mass: float = 1.0
    length: float = 1.0
    gravity: float = 9.81
    damping: float = 0.1
    dt: float = 0.05
    u_max: float = 5.0
    omega_max: float = 8.0
    substeps: int = 10

    def rhs(self, x: np.ndarray, u: np.ndarray) -> np.ndarray:
        """Time derivative for states ``x`` (2, B) and torques ``u`` (B,) or a scalar."""
        theta, omega = x
        inertia = self.mass * self.length ** 2
        return np.stack([omega, self.gravity / self.length * np.sin(theta)
                         - self.damping / inertia * omega + u / inertia])

    def step(self, x: np.ndarray, u) -> np.ndarray:
        """State after one sample time with ``u`` held: RK4 with ``substeps`` steps."""
        h = self.dt / self.substeps
        for _ in range(self.substeps):
            k1 = self.rhs(x, u)
            k2 = self.rhs(x + h / 2 * k1, u)
            k3 = self.rhs(x + h / 2 * k2, u)
            k4 = self.rhs(x + h * k3, u)
            x = x + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
        return x

    def training_box(self) -> tuple[np.ndarray, np.ndarray]:
        """Half-widths and centre of the (theta, omega, u) box the model is trained on.

        It covers the controller's constraint box with a margin, so every input IPOPT can
        visit (within the bounds) lies where the network has seen data.
        """
        half = np.array([np.pi + 0.3, self.omega_max + 1.0, self.u_max + 0.5])
        return half, np.zeros(3)


# --------------------------------------------------------------------------------------------
# learned model


@dataclass(frozen=True)
class Training:
    """Data and optimiser settings of the learned model (part of its cache key)."""

    samples: int = 4000
    hidden: int = 32
    iterations: int = 2000
    learning_rate: float = 5e-3
    seed: int = 0


def make_dataset(plant: Pendulum, samples: int, rng: np.random.Generator):
    """Uniform (theta, omega, u) in the training box and the true increments x^+ - x."""
    half, centre = plant.training_box()
    inputs = centre + half * rng.uniform(-1, 1, size=(samples, 3))
    states = inputs[:, :2].T
    increments = (plant.step(states, inputs[:, 2]) - states).T
    return inputs, increments


def dynamics_network(plant: Pendulum, hidden: int, out_scale) -> nn.Sequential:
    """(theta, omega, u) -> increment: input scaling, two tanh layers, output scaling."""
    half, centre = plant.training_box()
    return nn.Sequential(
        nncas.AffineScaling(1 / half, -centre / half),
        nn.Linear(3, hidden), nn.Tanh(), nn.Linear(hidden, hidden), nn.Tanh(),
        nn.Linear(hidden, N_STATES),
        nncas.AffineScaling(out_scale, np.zeros(N_STATES)),
    )


def learned_model(plant: Pendulum = Pendulum(), training: Training = Training(),
                  progress: bool = True) -> nn.Sequential:
    """The trained dynamics network, from the cache when this plant and training ran before.

    Trains with Adam on the mean squared error of the scaled increments (full batch, cosine
    learning-rate decay), shifts the output offset so that NN(0, 0, 0) = 0 exactly (the true
    increment at the upright rest; otherwise the loop settles at a small offset), then stores
    the weights atomically under ``nncas.cache.cache_root() / "mpc"``, keyed by the plant, the
    settings, :data:`RECIPE` and the torch version.
    """
    key = hashlib.sha256(json.dumps([RECIPE, asdict(plant), asdict(training), torch.__version__],
                                    sort_keys=True).encode()).hexdigest()[:16]
    path = cache_root() / "mpc" / f"pendulum_{key}.pt"
    rng = np.random.default_rng(training.seed)
    inputs, increments = make_dataset(plant, training.samples, rng)
    out_scale = increments.std(axis=0)
    torch.manual_seed(training.seed)
    net = dynamics_network(plant, training.hidden, out_scale)
    if path.exists():
        net.load_state_dict(torch.load(path, weights_only=True))
        if progress:
            print(f"learned model: loaded {path}", flush=True)
        return net.eval()
    _train(net, inputs, increments, training, progress)
    with torch.no_grad():  # the upright rest (0, 0, 0) is an equilibrium: make NN vanish there
        net[-1].offset -= net(torch.zeros(1, 3))[0].to(net[-1].offset.dtype)
    torch_save_atomic(path, net.state_dict())
    return net.eval()


def _train(net, inputs, increments, training: Training, progress: bool):
    x = torch.tensor(inputs, dtype=torch.float32)
    target = torch.tensor(increments, dtype=torch.float32)
    scale = net[-1].scale.float()
    optimizer = torch.optim.Adam(net.parameters(), lr=training.learning_rate)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, training.iterations)
    start = time.perf_counter()
    for it in range(1, training.iterations + 1):
        optimizer.zero_grad()
        loss = torch.mean(((net(x) - target) / scale) ** 2)
        loss.backward()
        optimizer.step()
        schedule.step()
        if progress and (it % (training.iterations // 10) == 0 or it == 1):
            print(f"training dynamics model: iteration {it:>5}/{training.iterations}, "
                  f"scaled MSE {loss.item():.2e}, {time.perf_counter() - start:.1f} s", flush=True)


# --------------------------------------------------------------------------------------------
# controller


@dataclass
class StepResult:
    """One MPC solve: the control applied, IPOPT's status and iterations, and timings.

    ``solve_s`` is the NLP solver's wall time (CasADi's ``t_wall_total``: IPOPT and every
    callback it makes): the solve only. ``wall_s`` is the whole :meth:`PendulumMPC.step`, which
    adds setting the parameter and start values and CasADi Opti's own bookkeeping.
    """

    control: float
    status: str
    success: bool
    iterations: int
    solve_s: float
    wall_s: float


class PendulumMPC:
    """Parametric multiple-shooting MPC with the learned model embedded by nncas.

    Built once; :meth:`step` sets the measured state (an ``opti.parameter``), warm-starts from
    the previous solution shifted by one sample, and re-solves the same NLP.
    """

    def __init__(self, net: nn.Module, plant: Pendulum = Pendulum(), horizon: int = 20,
                 embedding: str = "graybox-torch", state_weights=(10.0, 1.0),
                 control_weight: float = 0.01, terminal_factor: float = 10.0,
                 ipopt: dict | None = None):
        if embedding not in EMBEDDINGS:
            raise ValueError(f"embedding={embedding!r}; choose one of {sorted(EMBEDDINGS)}.")
        if not isinstance(horizon, (int, np.integer)) or horizon < 1:
            raise ValueError(f"horizon must be a positive integer, got {horizon!r}.")
        self.plant, self.horizon, self.embedding = plant, int(horizon), embedding
        self.Q = np.diag(np.asarray(state_weights, dtype=float))
        self.r = float(control_weight)
        opti = self.opti = ca.Opti()
        N = self.horizon
        self.x_meas = opti.parameter(N_STATES)
        opti.set_value(self.x_meas, np.zeros(N_STATES))
        self.X = opti.variable(N_STATES, N + 1)
        self.U = opti.variable(N_CONTROLS, N)
        opti.set_initial(self.X, 0)
        opti.set_initial(self.U, 0)
        increments, steps_of = self._embed(net, **EMBEDDINGS[embedding])
        opti.subject_to(self.X[:, 0] == self.x_meas)
        opti.subject_to(self.X[:, 1:] == self.X[:, :N] + increments)
        opti.subject_to(opti.bounded(-plant.u_max, self.U, plant.u_max))
        opti.subject_to(opti.bounded(-np.pi, self.X[0, 1:], np.pi))
        opti.subject_to(opti.bounded(-plant.omega_max, self.X[1, 1:], plant.omega_max))
        stage = sum(ca.bilin(self.Q, self.X[:, k]) + self.r * self.U[0, k] ** 2 for k in range(N))
        opti.minimize(stage + terminal_factor * ca.bilin(self.Q, self.X[:, N]))
        # tol 1e-6: enough for control, and reachable in float32 (l4casadi)
        options = {"ipopt.print_level": 0, "print_time": False, "ipopt.sb": "yes",
                   "ipopt.tol": 1e-6, "ipopt.max_iter": 200, **(ipopt or {})}
        # one BLAS thread for IPOPT: a torch gray box shares the CPU (docs/oracle.md#threads)
        graybox = EMBEDDINGS[embedding]["formulation"] == "graybox"
        self.build_s = nncas.solver(opti, "ipopt", options, blas_threads=1 if graybox else None)
        self._shift = self._shift_map(steps_of)
        self._cold = np.asarray(opti.value(opti.x, opti.initial()), dtype=float).ravel()
        self._previous = None
        #: the last solution's predicted states (2, N+1) and controls (1, N)
        self.last_states = self.last_controls = None

    def _embed(self, net, formulation, backend=None):
        """Add the network on columns (x_k, u_k); return the increments and per-step variables.

        The gray boxes take all N columns in one call (one batched external; block-diagonal
        derivatives in the NLP); full and reduced are added per step, since their NLP is the
        same either way.
        """
        N = self.horizon
        inputs = ca.vertcat(self.X[:, :N], self.U)
        steps_of = [[] for _ in range(N)]
        if backend is not None:
            y, form = nncas.add_predictor(self.opti, net, inputs, formulation=formulation,
                                          backend=backend)
            for v in form.variables:
                for k in range(N):
                    steps_of[k].append(v[:, k])
            return y, steps_of
        columns = []
        for k in range(N):
            y, form = nncas.add_predictor(self.opti, net, inputs[:, k], formulation=formulation)
            columns.append(y)
            steps_of[k].extend(form.variables)
        return ca.horzcat(*columns), steps_of

    def _shift_map(self, steps_of) -> np.ndarray:
        """Index array s with x_start = x_previous[s]: every step takes the next step's values.

        States x_k <- x_{k+1} (x_N kept), controls and embedding variables of step k <- step
        k + 1 (the last step kept). Positions in ``opti.x`` are read from the Jacobian of each
        variable with respect to ``opti.x``, so nothing depends on the creation order.
        """
        opti, N = self.opti, self.horizon
        source = np.arange(opti.nx)

        def positions(expr):
            if isinstance(expr, list):
                expr = ca.vertcat(*[ca.vec(e) for e in expr]) if expr else ca.MX(0, 1)
            if expr.numel() == 0:
                return np.zeros(0, dtype=int)
            rows, cols = ca.evalf(ca.jacobian(ca.vec(expr), opti.x)).sparsity().get_triplet()
            return np.asarray(cols)[np.argsort(rows)]

        for k in range(N):
            source[positions(self.X[:, k])] = positions(self.X[:, k + 1])
        for k in range(N - 1):
            here = positions([self.U[:, k]] + steps_of[k])
            source[here] = positions([self.U[:, k + 1]] + steps_of[k + 1])
        return source

    def shifted_start(self) -> np.ndarray:
        """The previous solution of all of ``opti.x`` shifted by one sample (the warm start)."""
        if self._previous is None:
            raise RuntimeError("no previous solution to shift: call step() first.")
        return self._previous[self._shift]

    def reset(self):
        """Forget the previous solution: the next solve starts cold."""
        self._previous = None

    def step(self, x_meas) -> StepResult:
        """Solve for the measured state ``x_meas`` (theta, omega); return the first control."""
        x_meas = np.asarray(x_meas, dtype=float).reshape(-1)
        if x_meas.shape != (N_STATES,) or not np.all(np.isfinite(x_meas)):
            raise ValueError(f"x_meas must be 2 finite numbers (theta, omega), got {x_meas!r}.")
        start_wall = time.perf_counter()
        opti = self.opti
        opti.set_value(self.x_meas, x_meas)
        if self._previous is None:
            opti.set_initial(opti.x, self._cold)
            opti.set_initial(self.X, np.tile(x_meas[:, None], (1, self.horizon + 1)))
        else:
            opti.set_initial(opti.x, self.shifted_start())
        try:
            sol = opti.solve()
            stats, values = sol.stats(), sol.value
        except RuntimeError:  # IPOPT did not converge: apply its last iterate, report the status
            stats, values = opti.stats(), opti.debug.value
        self._previous = np.asarray(values(opti.x), dtype=float).ravel()
        self.last_states = np.asarray(values(self.X), dtype=float).reshape(N_STATES, -1)
        self.last_controls = np.asarray(values(self.U), dtype=float).reshape(N_CONTROLS, -1)
        return StepResult(control=float(self.last_controls[0, 0]),
                          status=stats.get("return_status", "unknown"),
                          success=bool(stats.get("success", False)),
                          iterations=int(stats.get("iter_count", 0)),
                          solve_s=float(stats.get("t_wall_total", np.nan)),
                          wall_s=time.perf_counter() - start_wall)

    def stage_cost(self, x, u) -> float:
        """x^T Q x + r u^2, the controller's stage cost, for closed-loop bookkeeping."""
        return float(x @ self.Q @ x + self.r * u ** 2)


@dataclass
class ClosedLoop:
    """A closed-loop run on the true ODE: states (T+1, 2), controls (T,), per-step results."""

    states: np.ndarray
    controls: np.ndarray
    steps: list[StepResult] = field(default_factory=list)
    cost: float = 0.0

    @property
    def solve_s(self) -> np.ndarray:
        return np.array([s.solve_s for s in self.steps])

    @property
    def all_succeeded(self) -> bool:
        return all(s.success for s in self.steps)


def wrap(x: np.ndarray) -> np.ndarray:
    """The state with its angle mapped to [-pi, pi)."""
    return np.array([(x[0] + np.pi) % (2 * np.pi) - np.pi, x[1]])


def closed_loop(mpc: PendulumMPC, x0, steps: int) -> ClosedLoop:
    r"""Run ``steps`` samples from ``x0``: measure, solve, apply u_0 to the RK4-integrated ODE.

    The angle is measured modulo :math:`2\pi` in :math:`[-\pi, \pi)`. The cost is
    :math:`\sum_t x_t^T Q x_t + r u_t^2` along the true trajectory.
    """
    x = wrap(np.asarray(x0, dtype=float).reshape(N_STATES))
    mpc.reset()
    states, controls, results = [x], [], []
    for _ in range(steps):
        result = mpc.step(x)
        results.append(result)
        controls.append(result.control)
        x = wrap(mpc.plant.step(x, result.control))
        states.append(x)
    states, controls = np.array(states), np.array(controls)
    cost = sum(mpc.stage_cost(s, u) for s, u in zip(states[:-1], controls))
    return ClosedLoop(states, controls, results, cost)


def plot(runs: dict[str, ClosedLoop], plant: Pendulum, path: str, title: str = ""):
    """Angle, angular velocity and torque over time for each run (matplotlib, Agg backend)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(3, 1, figsize=(6.4, 6.0), sharex=True)
    for label, run in runs.items():
        t = plant.dt * np.arange(len(run.states))
        axes[0].plot(t, run.states[:, 0], label=label)
        axes[1].plot(t, run.states[:, 1])
        axes[2].step(t[:-1], run.controls, where="post")
    for ax, name in zip(axes, ["angle θ [rad] (0 = upright)", "ω [rad/s]", "torque u [N m]"]):
        ax.set_ylabel(name)
        ax.grid(alpha=0.3)
    for bound in (-plant.u_max, plant.u_max):
        axes[2].axhline(bound, color="k", lw=0.8, ls="--")
    axes[0].legend(fontsize=8)
    axes[2].set_xlabel("time [s]")
    if title:
        axes[0].set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None):
    parser = ArgumentParser(prog="python examples/mpc_pendulum.py", description=__doc__.splitlines()[0])
    parser.add_argument("--embedding", default="graybox-torch", choices=sorted(EMBEDDINGS),
                        help="how the learned model enters the MPC problem (default: graybox-torch)")
    parser.add_argument("--horizon", type=int, default=20, help="MPC horizon N, in steps (default: 20)")
    parser.add_argument("--steps", type=int, default=60, help="closed-loop steps per run (default: 60)")
    parser.add_argument("--x0", type=float, nargs=2, action="append", metavar=("THETA", "OMEGA"),
                        help="initial state; repeat for several runs (default 0.45 0)")
    parser.add_argument("--figure", default=None, help="write the closed-loop plot here (PNG; default: no plot)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (see docs/mpc.md; default: 1)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    plant = Pendulum()
    net = learned_model(plant)
    mpc = PendulumMPC(net, plant, args.horizon, args.embedding)
    print(f"{args.embedding}, N = {args.horizon}: {mpc.opti.nx} variables, {mpc.opti.ng} "
          f"constraints, built in {mpc.build_s:.2f} s")
    runs = {}
    for x0 in args.x0 or [[0.45, 0.0]]:
        run = runs[f"x0 = ({x0[0]:g}, {x0[1]:g})"] = closed_loop(mpc, x0, args.steps)
        print(f"\nfrom theta = {x0[0]:g} rad, omega = {x0[1]:g} rad/s")
        for t in range(0, args.steps, max(args.steps // 12, 1)):
            s = run.steps[t]
            print(f"t = {t * plant.dt:4.2f} s  theta {run.states[t, 0]:+.4f}  "
                  f"omega {run.states[t, 1]:+.4f}  u {s.control:+.4f}  {s.iterations:>3} it  "
                  f"{1e3 * s.solve_s:6.1f} ms  {s.status}")
        times = 1e3 * run.solve_s[1:]
        print(f"closed-loop cost {run.cost:.4f}; final state {run.states[-1].round(5)}; solve "
              f"time per warm step median {np.median(times):.1f} ms, p95 "
              f"{np.percentile(times, 95):.1f} ms")
    if args.figure:
        plot(runs, plant, args.figure, f"{args.embedding}, N = {args.horizon}, true ODE as plant")
        print(f"figure: {args.figure}")


if __name__ == "__main__":
    main()
