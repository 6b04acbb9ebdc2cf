"""nncas speaks plain CasADi: every formulation through every solve route reaches the same
optimum; gray boxes on parameters, in copies, in the objective, through to_function and map,
under sqpmethod and detect_simple_bounds; a problem changed after nncas.solver never solves stale."""
import casadi as ca
import numpy as np
import pytest
from torch import nn

import nncas
import zoo

FORMULATIONS = ["full", "reduced", "graybox"]
#: how each formulation name of the route test is embedded
EMBEDDINGS = {"full": {"formulation": "full"}, "reduced": {"formulation": "reduced"},
              "graybox": {"formulation": "graybox"},
              "graybox-variables": {"formulation": "graybox", "graybox_output": "variables"},
              "graybox-lifted": {"formulation": "graybox", "graybox_input": "lifted"}}
ROUTES = ["opti", "nncas.solver", "nlpsol", "nncas.nlpsol"]
QUIET = {"ipopt.print_level": 0, "print_time": False, "ipopt.sb": "yes"}
TIGHT = {**QUIET, "ipopt.tol": 1e-12}
N_IN, TARGET = 4, 2


@pytest.fixture(scope="module")
def net():
    return zoo.mlp([N_IN, 8, 6, 3], nn.Tanh, head=lambda: nn.Softmax(dim=-1), seed=4)


@pytest.fixture(scope="module")
def case(net):
    """Reference point and a reachable threshold above its own output."""
    rng = np.random.default_rng(2)
    x_ref = rng.uniform(-0.5, 0.5, N_IN)
    network = nncas.from_torch(net)
    y_ref = network.numpy(x_ref)[TARGET]
    y_max = network.numpy(rng.uniform(-1, 1, (N_IN, 400)))[TARGET].max()
    return x_ref, y_ref + 0.5 * (y_max - y_ref)


def _opti_problem(net, case, formulation="graybox"):
    """The route test's problem as an Opti; returns (opti, x, y)."""
    x_ref, threshold = case
    opti = ca.Opti()
    x = opti.variable(N_IN)
    opti.set_initial(x, x_ref)
    y, _ = nncas.add_predictor(opti, net, x, **EMBEDDINGS[formulation])
    opti.subject_to(opti.bounded(-1, x, 1))
    opti.subject_to(y[TARGET] >= threshold)
    opti.minimize(ca.sumsqr(x - x_ref))
    return opti, x, y


def _solve_opti(net, case, formulation, route):
    opti, x, _ = _opti_problem(net, case, formulation)
    if route == "opti":
        opti.solver("ipopt", TIGHT)
    else:
        nncas.solver(opti, "ipopt", TIGHT)
    sol = opti.solve()
    return sol.value(opti.f), sol.value(x)


def _solve_nlpsol(net, case, formulation, route, symbol=ca.MX):
    x_ref, threshold = case
    x = symbol.sym("x", N_IN)
    e = nncas.embed(net, x, x0=x_ref, **EMBEDDINGS[formulation])
    nlp = {"x": ca.vertcat(x, e.w), "f": ca.sumsqr(x - x_ref), "g": ca.vertcat(e.g, e.y[TARGET])}
    S = (ca.nlpsol if route == "nlpsol" else nncas.nlpsol)("S", "ipopt", nlp, TIGHT)
    result = S(x0=np.concatenate([x_ref, e.w0]), lbx=np.concatenate([-np.ones(N_IN), e.lbw]),
               ubx=np.concatenate([np.ones(N_IN), e.ubw]), lbg=np.concatenate([e.lbg, [threshold]]),
               ubg=np.concatenate([e.ubg, [np.inf]]))
    assert S.stats()["success"], S.stats()["return_status"]
    return float(result["f"]), result["x"].full().ravel()[:N_IN]


def _solve(net, case, formulation, route):
    if route.endswith("nlpsol"):
        return _solve_nlpsol(net, case, formulation, route)
    return _solve_opti(net, case, formulation, route)


@pytest.fixture(scope="module")
def reference(net, case):
    return _solve(net, case, "reduced", "nncas.nlpsol")


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("formulation", sorted(EMBEDDINGS))
def test_every_formulation_and_route_reaches_the_same_optimum(net, case, reference, formulation, route):
    objective, x = _solve(net, case, formulation, route)
    assert reference[0] > 1e-3, "the threshold must be active for a meaningful comparison"
    assert objective == pytest.approx(reference[0], rel=1e-8)
    np.testing.assert_allclose(x, reference[1], atol=1e-6)


@pytest.mark.parametrize("formulation", ["full", "reduced"])
def test_sx_embeddings_solve_like_mx(net, case, reference, formulation):
    objective, _ = _solve_nlpsol(net, case, formulation, "nncas.nlpsol", symbol=ca.SX)
    assert objective == pytest.approx(reference[0], rel=1e-8)


def test_graybox_on_a_parameter_and_in_the_objective(net, case):
    """min |x - x_ref|^2 - NN(p)[t] * x[0]: the gray box on a parameter is a constant; a second
    gray box call inside f on an expression of x is differentiated exactly."""
    x_ref, _ = case
    p_value = np.linspace(-0.3, 0.3, N_IN)
    answers = []
    for formulation in ("graybox", "reduced"):
        opti = ca.Opti()
        x, p = opti.variable(N_IN), opti.parameter(N_IN)
        opti.set_value(p, p_value)
        y_p, _ = nncas.add_predictor(opti, net, p, formulation=formulation)
        y_x, _ = nncas.add_predictor(opti, net, ca.tanh(x), formulation=formulation)
        opti.minimize(ca.sumsqr(x - x_ref) - y_p[TARGET] * x[0] - y_x[TARGET])
        nncas.solver(opti, "ipopt", TIGHT)
        answers.append(opti.solve().value(x))
    np.testing.assert_allclose(answers[0], answers[1], atol=1e-8)


def test_a_copied_opti_solves(net, case, reference):
    """A copy shares the original's gray boxes, which the expression graph keeps alive, not the
    original Opti (docs/api.md#lifetimes)."""
    original = _opti_problem(net, case)[0]
    copy = original.copy()
    nncas.solver(copy, "ipopt", TIGHT)
    assert copy.solve().value(copy.f) == pytest.approx(reference[0], rel=1e-8)


def _changing_problem(net, case):
    opti, x, y = _opti_problem(net, case)
    nncas.solver(opti, "ipopt", TIGHT)
    return opti, x, y


def test_a_changed_objective_is_refused_not_solved_stale(net, case):
    opti, x, y = _changing_problem(net, case)
    opti.minimize(ca.sumsqr(x + 0.2))
    with pytest.raises(nncas.StaleProblemError, match="changed after nncas.solver"):
        opti.solve()
    with pytest.raises(nncas.StaleProblemError, match="changed after nncas.solver"):
        opti.solve_limited()
    nncas.solver(opti, "ipopt", TIGHT)  # again after the change: solves the new problem
    sol = opti.solve()
    assert sol.value(ca.sumsqr(x + 0.2)) == pytest.approx(sol.value(opti.f))


def test_an_added_constraint_is_refused(net, case):
    opti, x, y = _changing_problem(net, case)
    opti.subject_to(x[0] >= 0.1)
    with pytest.raises(nncas.StaleProblemError, match="changed after nncas.solver"):
        opti.solve()
    nncas.solver(opti, "ipopt", TIGHT)
    assert opti.solve().value(x[0]) >= 0.1 - 1e-8


def test_plain_opti_solver_after_nncas_solver_is_not_refused(net, case):
    """After a plain opti.solver(...) CasADi builds fresh derivatives: a changed problem solves."""
    opti, x, y = _changing_problem(net, case)
    opti.minimize(ca.sumsqr(x + 0.2))
    opti.solver("ipopt", TIGHT)
    sol = opti.solve()
    assert sol.value(ca.sumsqr(x + 0.2)) == pytest.approx(sol.value(opti.f))


def test_detect_simple_bounds_with_the_fast_path(net, case, reference):
    opti = _opti_problem(net, case)[0]
    nncas.solver(opti, "ipopt", {**TIGHT, "detect_simple_bounds": True})
    sol = opti.solve()
    assert sol.value(opti.f) == pytest.approx(reference[0], rel=1e-8)
    stats = nncas.problem_stats(opti, sol)
    assert stats.n_constraints == opti.ng - N_IN  # IPOPT saw the box as bounds: the rows it got


def test_to_function_and_map(net, case):
    """A solve as a Function of the reference point, mapped over three points, equals three
    separate reduced-space solves; the Opti is gone by then."""
    _, threshold = case
    e_keep = []

    def build(formulation):
        opti = ca.Opti()
        x, ref = opti.variable(N_IN), opti.parameter(N_IN)
        opti.set_initial(x, np.zeros(N_IN))
        y, form = nncas.add_predictor(opti, net, x, formulation=formulation)
        e_keep.append(form)
        opti.subject_to(opti.bounded(-1, x, 1))
        opti.subject_to(y[TARGET] >= threshold)
        opti.minimize(ca.sumsqr(x - ref))
        opti.solver("ipopt", TIGHT)
        return opti.to_function("solve", [ref], [x])

    refs = np.random.default_rng(5).uniform(-0.5, 0.5, (N_IN, 3))
    mapped = build("graybox").map(3)(refs).full()
    single = build("reduced")
    for k in range(3):
        np.testing.assert_allclose(mapped[:, k], single(refs[:, k]).full().ravel(), atol=1e-7)


def test_sqpmethod_with_exact_hessian(net, case, reference):
    """sqpmethod (whole symmetric Hessian) through plain and nncas nlpsol: the same iterates,
    and IPOPT's optimum to sqpmethod's accuracy."""
    x_ref, threshold = case
    x = ca.MX.sym("x", N_IN)
    e = nncas.embed(net, x, formulation="graybox", x0=x_ref)
    nlp = {"x": ca.vertcat(x, e.w), "f": ca.sumsqr(x - x_ref), "g": ca.vertcat(e.g, e.y[TARGET])}
    options = {"print_time": False, "print_header": False, "print_iteration": False,
               "qpsol": "qrqp", "qpsol_options": {"print_iter": False, "print_header": False},
               "max_iter": 100, "tol_du": 1e-10, "tol_pr": 1e-10}
    results = []
    for route in (ca.nlpsol, nncas.nlpsol):
        S = route("S", "sqpmethod", nlp, options)
        result = S(x0=np.concatenate([x_ref, e.w0]), lbx=np.concatenate([-np.ones(N_IN), e.lbw]),
                   ubx=np.concatenate([np.ones(N_IN), e.ubw]), lbg=np.concatenate([e.lbg, [threshold]]),
                   ubg=np.concatenate([e.ubg, [np.inf]]))
        assert S.stats()["success"]
        results.append((float(result["f"]), S.stats()["iter_count"]))
    assert results[1][1] == results[0][1]
    assert results[1][0] == pytest.approx(results[0][0], rel=1e-10)
    assert results[0][0] == pytest.approx(reference[0], rel=1e-5)


def test_problem_stats_for_plain_solves(net, case):
    x_ref, threshold = case
    opti = ca.Opti()
    x = opti.variable(N_IN)
    y, _ = nncas.add_predictor(opti, net, x, formulation="graybox")
    opti.subject_to(y[TARGET] >= threshold)
    opti.minimize(ca.sumsqr(x - x_ref))
    opti.solver("ipopt", {**QUIET, "record_time": True})
    stats = nncas.problem_stats(opti, opti.solve())
    assert stats.success and stats.n_variables == N_IN and stats.n_constraints == 1
    assert stats.hess_nnz == N_IN * (N_IN + 1) // 2 and stats.hessian_s > 0


def test_embedding_columns(net):
    x = ca.MX.sym("x", N_IN, 2)
    e = nncas.embed(net, x, formulation="full", input_bounds=(-1, 1))
    assert e.y.shape == (3, 2)
    assert e.w.shape == (e.n_variables, 1) and e.w0.shape == e.lbw.shape == e.ubw.shape == (e.n_variables,)
    assert e.g.shape == (e.n_constraints, 1) and e.lbg.shape == e.ubg.shape == (e.n_constraints,)
    assert np.all(e.lbw <= e.w0) and np.all(e.w0 <= e.ubw)
    reduced = nncas.embed(net, x, formulation="reduced")
    assert reduced.w.shape == (0, 1) and reduced.g.shape == (0, 1)
    assert "full formulation" in str(e)


@pytest.mark.gpu
@pytest.mark.parametrize("route", ["nlpsol", "nncas.nlpsol"])
def test_cuda_graybox_through_plain_and_fast_nlpsol(net, case, reference, route):
    x_ref, threshold = case
    x = ca.MX.sym("x", N_IN)
    e = nncas.embed(net, x, formulation="graybox", device="cuda", x0=x_ref)
    nlp = {"x": ca.vertcat(x, e.w), "f": ca.sumsqr(x - x_ref), "g": ca.vertcat(e.g, e.y[TARGET])}
    S = (ca.nlpsol if route == "nlpsol" else nncas.nlpsol)("S", "ipopt", nlp, TIGHT)
    result = S(x0=np.concatenate([x_ref, e.w0]), lbx=np.concatenate([-np.ones(N_IN), e.lbw]),
               ubx=np.concatenate([np.ones(N_IN), e.ubw]), lbg=np.concatenate([e.lbg, [threshold]]),
               ubg=np.concatenate([e.ubg, [np.inf]]))
    assert S.stats()["success"]
    assert float(result["f"]) == pytest.approx(reference[0], rel=1e-8)


@pytest.mark.parametrize("route", ["opti", "nlpsol"])
def test_l4casadi_graybox_through_plain_casadi(net, case, reference, route):
    """l4casadi leaves blocks of its jac_adj1 unset; nncas supplies them, so plain CasADi solves
    (to float32 accuracy)."""
    x_ref, threshold = case
    if route == "opti":
        opti = ca.Opti()
        x = opti.variable(N_IN)
        opti.set_initial(x, x_ref)
        y, _ = nncas.add_predictor(opti, net, x, formulation="graybox", backend="l4casadi")
        opti.subject_to(opti.bounded(-1, x, 1))
        opti.subject_to(y[TARGET] >= threshold)
        opti.minimize(ca.sumsqr(x - x_ref))
        opti.solver("ipopt", {**QUIET, "ipopt.tol": 1e-7})
        objective = opti.solve().value(opti.f)
    else:
        x = ca.MX.sym("x", N_IN)
        e = nncas.embed(net, x, formulation="graybox", backend="l4casadi", x0=x_ref)
        nlp = {"x": ca.vertcat(x, e.w), "f": ca.sumsqr(x - x_ref), "g": ca.vertcat(e.g, e.y[TARGET])}
        S = ca.nlpsol("S", "ipopt", nlp, {**QUIET, "ipopt.tol": 1e-7})
        result = S(x0=np.concatenate([x_ref, e.w0]), lbx=np.concatenate([-np.ones(N_IN), e.lbw]),
                   ubx=np.concatenate([np.ones(N_IN), e.ubw]), lbg=np.concatenate([e.lbg, [threshold]]),
                   ubg=np.concatenate([e.ubg, [np.inf]]))
        objective = float(result["f"])
    assert objective == pytest.approx(reference[0], rel=1e-4)


def test_input_bounds_box_x_alike_in_every_formulation(net):
    """input_bounds=(0, 1) is the box 0 <= x <= 1 in every formulation (the unboxed optimum of
    |x - 1.5|^2 - NN(x)[t] lies outside it); the full space's intermediates are bounded from it."""
    objectives = []
    for formulation in FORMULATIONS:
        x = ca.MX.sym("x", N_IN)
        e = nncas.embed(net, x, formulation=formulation, input_bounds=(0, 1))
        nlp = {"x": ca.vertcat(x, e.w), "f": ca.sumsqr(x - 1.5) - e.y[TARGET], "g": e.g}
        S = nncas.nlpsol("S", "ipopt", nlp, TIGHT)
        result = S(x0=np.concatenate([np.full(N_IN, 0.5), e.w0]), lbx=np.concatenate([np.full(N_IN, -np.inf), e.lbw]),
                   ubx=np.concatenate([np.full(N_IN, np.inf), e.ubw]), lbg=e.lbg, ubg=e.ubg)
        assert S.stats()["success"], formulation
        x_opt = result["x"].full().ravel()[:N_IN]
        assert np.all(x_opt >= -1e-7) and np.all(x_opt <= 1 + 1e-7), formulation  # IPOPT relaxes bounds by 1e-8
        objectives.append(float(result["f"]))
    assert objectives == pytest.approx([objectives[0]] * 3, rel=1e-8)


def _hsl_library():
    """An HSL library for IPOPT: $NNCAS_HSLLIB, else libhsl / libcoinhsl on the loader's path."""
    import ctypes.util
    import os
    named = os.environ.get("NNCAS_HSLLIB")
    if named:
        return named
    for name in ("hsl", "coinhsl"):
        found = ctypes.util.find_library(name)
        if found:
            return found
    return None


@pytest.mark.skipif(_hsl_library() is None, reason="no HSL library (set NNCAS_HSLLIB to one)")
def test_user_hsl_solvers_pass_through(net, case, reference):
    """linear_solver and hsllib reach IPOPT through nncas.nlpsol unchanged: the same optimum."""
    x_ref, threshold = case
    x = ca.MX.sym("x", N_IN)
    e = nncas.embed(net, x, formulation="graybox", x0=x_ref)
    nlp = {"x": x, "f": ca.sumsqr(x - x_ref), "g": e.y[TARGET]}
    S = nncas.nlpsol("S", "ipopt", nlp, {**TIGHT, "ipopt.linear_solver": "ma27", "ipopt.hsllib": _hsl_library()})
    result = S(x0=x_ref, lbx=-1, ubx=1, lbg=threshold, ubg=np.inf)
    assert S.stats()["success"]
    assert float(result["f"]) == pytest.approx(reference[0], rel=1e-8)


@pytest.mark.parametrize("formulation", ["full", "reduced"])
def test_sx_embeddings_generate_c_code(net, tmp_path, monkeypatch, formulation):
    """An SX embedding is plain CasADi: its Function generates C, which compiles and gives the
    same values and Jacobian (here the full space's constraint rows, the reduced space's y)."""
    import shutil
    import subprocess
    if shutil.which("gcc") is None:
        pytest.skip("no C compiler")
    x = ca.SX.sym("x", N_IN)
    e = nncas.embed(net, x, formulation=formulation)
    out = e.g if formulation == "full" else e.y
    function = ca.Function("embedded", [ca.vertcat(x, e.w)], [out, ca.jacobian(out, ca.vertcat(x, e.w))])
    monkeypatch.chdir(tmp_path)  # CasADi writes the source into the working directory
    function.generate("embedded.c", {"with_header": False})
    subprocess.run(["gcc", "-fPIC", "-shared", "-O1", str(tmp_path / "embedded.c"), "-o", str(tmp_path / "embedded.so")],
                   check=True, capture_output=True)
    compiled = ca.external("embedded", str(tmp_path / "embedded.so"))
    point = np.random.default_rng(7).normal(size=function.size1_in(0))
    for a, b in zip(compiled(point), function(point)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-13, atol=1e-14)


def test_nested_gray_boxes_have_exact_derivatives():
    """A gray box on another's output (b(a(x))), both in f and g: nncas's Hessian, Jacobian and
    gradient equal CasADi's of the same networks as expressions."""
    from nncas.derivatives import derivative_functions
    a, b = zoo.mlp([3, 5, 3]), zoo.mlp([3, 4, 2], seed=1)

    def problem(x, formulation):
        inner = nncas.embed(a, x, formulation=formulation, graybox_output="expression")
        outer = nncas.embed(b, inner.y, formulation=formulation, graybox_output="expression")
        return ca.sumsqr(outer.y) + ca.dot(inner.y, inner.y), outer.y[0] * x[1]

    x = ca.MX.sym("x", 3)
    f, g = problem(x, "graybox")
    ours = derivative_functions(x, ca.MX(0, 1), f, g)
    fr, gr = problem(x, "reduced")
    sigma, lam = ca.MX.sym("sigma"), ca.MX.sym("lam")
    reference = ca.Function("r", [x, sigma, lam], [ca.triu(ca.hessian(sigma * fr + lam * gr, x)[0]),
                                                    ca.jacobian(gr, x), ca.gradient(fr, x)])
    point = np.array([0.3, -0.2, 0.5])
    expected = [np.asarray(v) for v in reference(point, 0.7, 1.3)]
    got = [ours["nlp_hess_l"](point, [], 0.7, 1.3), ours["nlp_jac_g"](point, [])[1], ours["nlp_grad_f"](point, [])[1]]
    for a_, b_ in zip(got, expected):
        np.testing.assert_allclose(np.asarray(a_).reshape(b_.shape), b_, rtol=1e-10, atol=1e-14)
