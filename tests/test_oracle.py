"""The torch gray-box oracle: structured and generic paths, batched and unbatched, vs torch.func."""
import casadi as ca
import numpy as np
import pytest
import torch
from torch import nn

import nncas
import zoo
from nncas.derivatives import derivative_functions, find_graybox_calls
from nncas.oracles import is_graybox

NETS = {
    "tanh-softmax": lambda: zoo.mlp([6, 9, 7, 4], nn.Tanh, head=lambda: nn.Softmax(dim=-1)),
    "sigmoid": lambda: zoo.mlp([6, 8, 8, 3], nn.Sigmoid),
    "gelu-logsoftmax": lambda: zoo.mlp([6, 8, 4], nn.GELU, head=lambda: nn.LogSoftmax(dim=-1)),
    # scaled input into a narrower first layer: tangents start in the 3 first-layer coordinates
    "narrowing": lambda: nn.Sequential(nncas.AffineScaling(np.linspace(0.5, 2, 6), np.zeros(6)),
                                       zoo.mlp([6, 3, 5, 4], nn.SiLU, head=lambda: nn.LogSoftmax(dim=-1))),
}


def _oracle(net, batch, method):
    opti = ca.Opti()
    X = opti.variable(6, batch)
    Y, form = nncas.add_predictor(opti, net, X, formulation="graybox", method=method)
    assert Y.shape == (form.n_out, batch)
    return form.oracle


@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize("method", ["structured", "generic"])
@pytest.mark.parametrize("name", sorted(NETS))
def test_block_diagonal_derivatives_match_torch_func(name, method, batch):
    net = NETS[name]()
    oracle = _oracle(net, batch, method)
    rng = np.random.default_rng(batch)
    U, LAM = rng.normal(size=(6, batch)), rng.normal(size=(oracle.n_out, batch))
    Y = oracle.function(U).full()
    J = oracle.jacobian(U).full()
    H = oracle.hessian(U, LAM).full()
    m, n = oracle.n_out, 6
    for k in range(batch):
        value, jac, hess = zoo.torch_derivatives(net, U[:, k], LAM[:, k])
        np.testing.assert_allclose(Y[:, k], value, rtol=1e-10, atol=1e-14)
        np.testing.assert_allclose(J[k * m:(k + 1) * m, k * n:(k + 1) * n], jac, rtol=1e-10, atol=1e-14)
        np.testing.assert_allclose(H[k * n:(k + 1) * n, k * n:(k + 1) * n], hess, rtol=1e-10, atol=1e-13)
    # nothing outside the diagonal blocks
    assert oracle.jacobian.sparsity_out(0).nnz() == batch * m * n
    assert oracle.hessian.sparsity_out(0).nnz() == batch * n * n


@pytest.mark.parametrize("widths", [[80, 100, 70, 5], [100, 70, 90, 4], [260, 270, 20, 3]])
def test_wide_and_narrowing_hessians_match_torch_func(widths):
    """Many tangent coordinates (80 inputs; 100 inputs narrowed to 70 by the first layer;
    260, enough for the block-triangular sum) and layers summed in one product: the Hessian
    still equals torch.func's."""
    net = zoo.mlp(widths, nn.Tanh, head=lambda: nn.Softmax(dim=-1))
    opti = ca.Opti()
    _, form = nncas.add_predictor(opti, net, opti.variable(widths[0], 2), formulation="graybox")
    rng = np.random.default_rng(5)
    U, LAM = rng.normal(size=(widths[0], 2)), rng.normal(size=(widths[-1], 2))
    H = form.oracle.hessian_tensor(U.T.ravel(), LAM.T.ravel()).numpy()
    for k in range(2):
        _, _, hess = zoo.torch_derivatives(net, U[:, k], LAM[:, k])
        np.testing.assert_allclose(H[k], hess, rtol=1e-10, atol=1e-13)


def test_hessians_that_reuse_work_arrays_stay_exact_and_independent():
    """The Hessian's work arrays are kept between calls, per thread: batches of other sizes in
    turn, earlier results left untouched, and two threads at once all give torch.func's values."""
    import threading

    from nncas.oracles.mlp import StructuredMLP
    from nncas.torch_import import from_torch

    widths = [260, 270, 30, 3]
    net = zoo.mlp(widths, nn.Tanh, head=lambda: nn.Softmax(dim=-1))
    mlp = StructuredMLP(from_torch(net, widths[0]), torch.device("cpu"), torch.float64)
    rng = np.random.default_rng(6)
    U, LAM = rng.normal(size=(3, widths[0])), rng.normal(size=(3, widths[-1]))
    expected = [zoo.torch_derivatives(net, U[k], LAM[k])[2] for k in range(3)]

    def hessians(rows):
        _, state = mlp.forward(torch.tensor(U[rows]))
        return mlp.hessian(state, torch.tensor(LAM[rows]))

    results = [(rows, hessians(rows)) for rows in ([0, 1, 2], [1], [2, 0], [0, 1, 2])]
    found = {}
    threads = [threading.Thread(target=lambda k=k: found.__setitem__(k, hessians([k]))) for k in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    results += [([k], found[k]) for k in range(3)]
    for rows, H in results:
        for position, k in enumerate(rows):
            np.testing.assert_allclose(H[position].numpy(), expected[k], rtol=1e-10, atol=1e-13)


@pytest.mark.parametrize("name", sorted(NETS))
def test_hessian_from_the_jacobians_adjoints_equals_its_own_sweep(name):
    """After the Jacobian at a point, the Hessian reuses its per-layer adjoints; same result."""
    oracle = _oracle(NETS[name](), 2, "structured")
    rng = np.random.default_rng(4)
    u, lam = rng.normal(size=6 * 2), rng.normal(size=oracle.n_out * 2)
    own_sweep = oracle.hessian_tensor(u, lam).clone()
    oracle.jacobian_tensor(u)
    assert oracle._point.output_adjoints is not None
    np.testing.assert_allclose(oracle.hessian_tensor(u, lam).numpy(), own_sweep.numpy(), rtol=1e-12, atol=1e-14)


def test_one_forward_pass_per_point():
    oracle = _oracle(NETS["sigmoid"](), 1, "structured")
    u = np.linspace(-1, 1, 6)
    before = dict(oracle.evaluations)
    oracle.function(u), oracle.jacobian(u), oracle.hessian(u, np.ones(3)), oracle.function(u)
    after = {k: oracle.evaluations[k] - before[k] for k in before}
    assert after == {"forward": 1, "jacobian": 1, "hessian": 1}


def test_the_objective_gradient_runs_no_gray_box_it_does_not_depend_on():
    """nlp_grad_f of min |x|^2 s.t. NN(x) ...: no forward pass, no Jacobian (they were run, and
    their time counted as the gradient's, at every new point)."""
    x = ca.MX.sym("x", 6)
    e = nncas.embed(NETS["sigmoid"](), x, nncas.GrayBox(input="direct"))
    grad_f = derivative_functions(x, ca.MX(0, 1), ca.sumsqr(x), e.y)["nlp_grad_f"]
    before = dict(e.oracle.evaluations)
    f, grad = grad_f(np.linspace(-1, 1, 6), [])
    assert e.oracle.evaluations == before
    np.testing.assert_allclose(grad.full().ravel(), 2 * np.linspace(-1, 1, 6))
    with_box = derivative_functions(x, ca.MX(0, 1), ca.sumsqr(x) + e.y[0], e.y)["nlp_grad_f"]
    with_box(np.linspace(-1, 1, 6), [])
    assert e.oracle.evaluations["jacobian"] == before["jacobian"] + 1


def test_float32_dtype_is_honoured():
    net = NETS["sigmoid"]()
    opti = ca.Opti()
    x = opti.variable(6)
    _, form = nncas.add_predictor(opti, net, x, formulation="graybox", dtype=torch.float32)
    value, _, _ = zoo.torch_derivatives(net, np.ones(6), np.ones(3))
    got = form.oracle.function(np.ones(6)).full().ravel()
    np.testing.assert_allclose(got, value, rtol=1e-5)
    assert not np.allclose(got, value, rtol=1e-12, atol=0)


def test_batched_l4casadi_blocks_match_torch_func():
    """l4casadi compiled for K = 3 rows: one external call; its dense derivatives hold the
    per-sample blocks (float32 accuracy) and zeros between samples."""
    net = NETS["tanh-softmax"]()
    opti = ca.Opti()
    _, form = nncas.add_predictor(opti, net, opti.variable(6, 3), formulation="graybox", backend="l4casadi")
    oracle, n, m = form.oracle, 6, form.n_out
    rng = np.random.default_rng(11)
    U, LAM = rng.normal(size=(6, 3)), rng.normal(size=(m, 3))
    Y, J, H = oracle.function(U).full(), oracle.jacobian(U).full(), oracle.hessian(U, LAM).full()
    for k in range(3):
        value, jac, hess = zoo.torch_derivatives(net, U[:, k], LAM[:, k])
        np.testing.assert_allclose(Y[:, k], value, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(J[k * m:(k + 1) * m, k * n:(k + 1) * n], jac, rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(H[k * n:(k + 1) * n, k * n:(k + 1) * n], hess, rtol=1e-3, atol=1e-5)
    off_diagonal = H.copy()
    for k in range(3):
        off_diagonal[k * n:(k + 1) * n, k * n:(k + 1) * n] = 0
    assert np.abs(off_diagonal).max() < 1e-6


@pytest.mark.parametrize("backend", ["torch", "l4casadi"])
def test_batched_graybox_solves_like_separate_reduced_problems(backend):
    """K inputs in one batched gray box give the K optima of the separate problems."""
    net = NETS["tanh-softmax"]()
    rng = np.random.default_rng(7)
    refs = rng.uniform(-0.5, 0.5, (6, 3))
    with torch.no_grad():
        y_ref = net(torch.tensor(refs.T, dtype=torch.float32))[:, 0].double().numpy()
        y_max = net(torch.tensor(rng.uniform(-2, 2, (500, 6)), dtype=torch.float32))[:, 0].max().item()
    threshold = (y_ref + y_max) / 2  # reachable, and above every reference's own value

    def build(opti, X, formulation):
        Y, _ = nncas.add_predictor(opti, net, X, formulation=formulation, backend=backend)
        opti.subject_to(Y[0, :] >= threshold.reshape(1, -1))
        opti.subject_to(opti.bounded(-2, X, 2))
        opti.minimize(ca.sumsqr(X - refs))
        opti.set_initial(X, refs)

    opti = ca.Opti()
    X = opti.variable(6, 3)
    build(opti, X, "graybox")
    tol = 1e-10 if backend == "torch" else 1e-6  # l4casadi evaluates in float32
    nncas.solver(opti, "ipopt", {"ipopt.print_level": 0, "print_time": False, "ipopt.tol": tol})
    batched = opti.solve().value(X)
    for k in range(3):
        single = ca.Opti()
        x = single.variable(6, 1)
        Y, _ = nncas.add_predictor(single, net, x, formulation="reduced")
        single.subject_to(Y[0] >= threshold[k])
        single.subject_to(single.bounded(-2, x, 2))
        single.minimize(ca.sumsqr(x - refs[:, k]))
        single.set_initial(x, refs[:, k])
        nncas.solver(single, "ipopt", {"ipopt.print_level": 0, "print_time": False, "ipopt.tol": 1e-10})
        np.testing.assert_allclose(batched[:, k], single.solve().value(x), atol=1e-6 if backend == "torch" else 1e-4)


@pytest.mark.gpu
def test_cuda_oracle_matches_cpu():
    net = NETS["tanh-softmax"]()
    cpu, gpu = (_oracle_on(net, d) for d in ("cpu", "cuda"))
    u, lam = np.linspace(-1, 1, 6), np.arange(4.0)
    np.testing.assert_allclose(gpu.hessian(u, lam).full(), cpu.hessian(u, lam).full(), rtol=1e-10)


def _oracle_on(net, device):
    opti = ca.Opti()
    _, form = nncas.add_predictor(opti, net, opti.variable(6), formulation="graybox", device=device)
    return form.oracle


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=pytest.mark.gpu)])
@pytest.mark.parametrize("batch", [1, 3])
def test_assembled_nlp_derivatives_equal_casadi_symbolic(batch, device):
    """nncas's hess_lag and jac_g, with the gray box found in the graph and its blocks placed
    into the NLP's sparsity, equal CasADi's derivatives of the same NLP with the network as an
    expression; the gray box sits in the objective too, on a nonlinear and on a scaled
    expression of x (the three ways a block is placed: gather, product with P, with P(x))."""
    net = NETS["tanh-softmax"]()
    opti = ca.Opti()
    z = opti.variable(2)  # other variables around the block shift its position in x
    X = opti.variable(6, batch)
    Y, form = nncas.add_predictor(opti, net, X, formulation="graybox", device=device)
    opti.minimize(ca.sumsqr(X) + ca.sum1(ca.vec(Y)) * z[0] + z[1] ** 2
                  + ca.sum1(form.oracle.function(ca.sin(X))[2, :].T)
                  + ca.sum1(form.oracle.function(0.5 * X + 1)[0, :].T))
    opti.subject_to(z[0] * X[0, :] + Y[1, :] <= 1)
    functions = derivative_functions(opti.x, opti.p, opti.f, opti.g)

    network = nncas.from_torch(net)
    calls = find_graybox_calls([opti.f, opti.g])
    assert len(calls) == 3
    expressions = [ca.horzcat(*[network.casadi(c.input[:, k]) for k in range(batch)]) for c in calls]
    f_symbolic, g_symbolic = ca.graph_substitute([opti.f, opti.g], [c.output for c in calls], expressions)
    lam_f, x, lam_g = ca.MX.sym("s"), opti.x, opti.lam_g
    lagrangian = lam_f * f_symbolic + ca.dot(lam_g, g_symbolic)
    reference = ca.Function("ref", [x, lam_f, lam_g],
                            [ca.triu(ca.hessian(lagrangian, x)[0]), ca.jacobian(g_symbolic, x),
                             ca.gradient(f_symbolic, x)])

    rng = np.random.default_rng(7)
    point, sigma, lam = rng.normal(size=opti.nx), 0.7, rng.normal(size=opti.ng)
    hess_ref, jac_ref, grad_ref = (m.full() for m in reference(point, sigma, lam))
    hess = functions["nlp_hess_l"](point, [], sigma, lam).full()
    jac = functions["nlp_jac_g"](point, [])[1].full()
    grad = functions["nlp_grad_f"](point, [])[1].full()
    np.testing.assert_allclose(hess, hess_ref, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(jac, jac_ref, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(grad, grad_ref, rtol=1e-10, atol=1e-12)
    assert not np.tril(hess, -1).any()


def test_an_interpolant_beside_a_gray_box_stays_algebra():
    """Only nncas's gray boxes are gray boxes: an interpolant (a one-input, one-output called
    Function too) is left to CasADi's AD, and nncas.nlpsol finds casadi.nlpsol's optimum."""
    x = ca.MX.sym("x", 6)
    e = nncas.embed(NETS["sigmoid"](), x, formulation="graybox", graybox_input="direct")
    grid = np.linspace(-2, 2, 9)
    lut = ca.interpolant("lut", "bspline", [grid], np.sin(grid) + grid ** 2 / 4)
    nlp = {"x": x, "f": ca.sumsqr(x - 0.2) + lut(x[0]) + ca.sum1(e.y), "g": lut(x[1]) + e.y[0]}
    calls = find_graybox_calls([nlp["f"], nlp["g"]])
    assert [c.function.name() for c in calls] == [f"{e.oracle.name}_callback"]
    assert is_graybox(e.oracle.function) and not is_graybox(lut)
    options = {"print_time": False, "ipopt.print_level": 0, "ipopt.sb": "yes", "ipopt.tol": 1e-12}
    bounds = {"x0": 0, "lbx": -1.5, "ubx": 1.5, "lbg": 0.6, "ubg": np.inf}
    reference = ca.nlpsol("ref", "ipopt", nlp, options)(**bounds)
    ours = nncas.nlpsol("S", "ipopt", nlp, options)(**bounds)
    assert float(reference["g"]) == pytest.approx(0.6, abs=1e-8)  # the constraint is active
    np.testing.assert_allclose(ours["x"].full(), reference["x"].full(), atol=1e-6)
    assert float(ours["f"]) == pytest.approx(float(reference["f"]), abs=1e-9)


class _NumpyEvaluator:
    """A backend in plain numpy: y = tanh(W u) per sample (the protocol, nothing of torch)."""

    def __init__(self, weight, batch):
        self.W, self.batch = weight, batch
        self.n_out, self.n_in = weight.shape

    def value(self, u):
        return np.tanh(u.reshape(self.batch, self.n_in) @ self.W.T)

    def jacobian(self, u):
        slope = 1 - self.value(u) ** 2
        return slope[:, :, None] * self.W

    def hessian(self, u, lam):
        y = self.value(u)
        curvature = -2 * y * (1 - y ** 2) * lam.reshape(self.batch, self.n_out)
        return np.einsum("ka,ab,ac->kbc", curvature, self.W, self.W)


@pytest.mark.parametrize("route", ["casadi", "nncas"])
def test_an_evaluator_of_another_backend_solves_like_casadi_symbolics(route):
    """Any GrayBoxEvaluator makes a complete gray box: the optimum equals the one of the same
    network written in CasADi symbols."""
    weight = np.random.default_rng(3).normal(size=(3, 4))
    evaluator = _NumpyEvaluator(weight, 2)
    assert isinstance(evaluator, nncas.oracles.GrayBoxEvaluator)
    oracle = nncas.oracles.GrayBoxOracle(evaluator, "numpy_test")
    X = ca.MX.sym("X", 4, 2)
    solve = {"casadi": ca.nlpsol, "nncas": nncas.nlpsol}[route]
    options = {"print_time": False, "ipopt.print_level": 0, "ipopt.sb": "yes", "ipopt.tol": 1e-12}

    def optimum(Y):
        nlp = {"x": ca.vec(X), "f": ca.sumsqr(X - 0.5) + ca.sum1(ca.vec(Y)), "g": Y[0, :].T}
        return solve("S", "ipopt", nlp, options)(x0=0, lbg=-0.2, ubg=0.2)["x"].full()

    np.testing.assert_allclose(optimum(oracle.function(X)), optimum(ca.tanh(ca.mtimes(weight, X))), atol=1e-8)


class _NumpyBackend(_NumpyEvaluator):
    """A third backend, given to the gray box as a class: it evaluates the torch module
    Sequential(Linear without bias, Tanh) from its weight, in numpy, with its own backward pass."""

    options = ("scale",)

    def __init__(self, module, n_in, n_out, device, batch=1, scale=1.0):
        super().__init__(scale * module[0].weight.detach().cpu().numpy(), batch)
        self.vjp_calls = 0

    def vjp(self, u, seeds):
        self.vjp_calls += 1
        slope = 1 - self.value(u) ** 2  # (K, m)
        return (seeds * slope) @ self.W


@pytest.mark.parametrize("batch", [1, 3])
def test_a_backend_of_ones_own_is_a_class_given_to_the_gray_box(batch):
    """No table to register in: the class goes to GrayBox(backend=...), takes its own options,
    passes the check against torch, and its backward pass serves CasADi's reverse mode; the
    optimum is the full space's."""
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(4, 3, bias=False), torch.nn.Tanh()).double()
    x = ca.MX.sym("x", 4, batch)
    e = nncas.embed(net, x, formulation=nncas.GrayBox(backend=_NumpyBackend, scale=1.0), x0=np.zeros((4, batch)))
    assert e.backend == "_NumpyBackend" and e.verification.points > 0
    options = {"print_time": False, "ipopt.print_level": 0, "ipopt.sb": "yes", "ipopt.tol": 1e-12}

    def optimum(embedding, solve):
        nlp = {"x": ca.vertcat(ca.vec(x), embedding.w), "f": ca.sumsqr(x - 0.5) + ca.sum1(ca.vec(embedding.y)),
               "g": ca.vertcat(embedding.g, embedding.y[0, :].T)}
        n_w = embedding.w.numel()
        return solve("S", "ipopt", nlp, options)(
            x0=np.r_[np.zeros(4 * batch), np.asarray(embedding.w0).ravel(order="F") if n_w else []],
            lbg=np.r_[embedding.lbg, -0.2 * np.ones(batch)], ubg=np.r_[embedding.ubg, 0.2 * np.ones(batch)])
    ours = optimum(e, nncas.nlpsol)
    plain = optimum(e, ca.nlpsol)  # CasADi's own derivatives: reverse mode through vjp
    assert e.oracle.evaluator.vjp_calls > 0
    full = optimum(nncas.embed(net, x, formulation="full", x0=np.zeros((4, batch))), ca.nlpsol)
    for result in (ours, plain):
        assert float(result["f"]) == pytest.approx(float(full["f"]), abs=1e-8)
        np.testing.assert_allclose(result["x"].full()[:4 * batch], full["x"].full()[:4 * batch], atol=1e-6)


@pytest.mark.parametrize("backend, match", [
    (dict, "an evaluator class with the methods value, jacobian, hessian"),
    ("jax", "choose one of"),
])
def test_a_backend_that_is_no_evaluator_is_refused(backend, match):
    with pytest.raises(nncas.InputError, match=match):
        nncas.GrayBox(backend=backend)


def test_a_backend_class_refuses_options_it_does_not_list():
    with pytest.raises(nncas.InputTypeError, match=r"unexpected options \['dtype'\] for backend='_NumpyBackend'; "
                                                  "it takes scale"):
        nncas.GrayBox(backend=_NumpyBackend, dtype=torch.float32)
