"""The dense KKT solver: the library's factorization and inertia against numpy, its MA27
error codes, and IPOPT reaching the optima MUMPS reaches through it; which solver each
problem gets and how users override the choice."""
import ctypes

import casadi as ca
import numpy as np
import pytest
from torch import nn

import nncas
import zoo
from nncas import kkt
from nncas.kkt.build import build

QUIET = {"ipopt.print_level": 0, "print_time": False, "ipopt.sb": "yes", "ipopt.tol": 1e-10}



class Ma27:
    """The library's four MA27 entry points, called as IPOPT calls them."""

    def __init__(self, path):
        self.lib = ctypes.CDLL(str(path))
        self.icntl = np.zeros(30, np.int32)
        self.cntl = np.zeros(5)
        self.lib.ma27id_(_p(self.icntl), _p(self.cntl))

    def analyse(self, n, rows, cols):
        self.n, self.rows, self.cols = ctypes.c_int(n), np.asarray(rows, np.int32) + 1, np.asarray(cols, np.int32) + 1
        self.nz = ctypes.c_int(len(rows))
        iw, iw1 = np.zeros(2 * (2 * len(rows) + 3 * n + 1), np.int32), np.zeros(2 * n, np.int32)
        self.ikeep = np.zeros(3 * n, np.int32)  # kept from the analysis to the factorizations, as IPOPT does
        nsteps, iflag, ops, info = ctypes.c_int(0), ctypes.c_int(0), ctypes.c_double(0), np.zeros(20, np.int32)
        self.lib.ma27ad_(ctypes.byref(self.n), ctypes.byref(self.nz), _p(self.rows), _p(self.cols), _p(iw),
                         ctypes.byref(ctypes.c_int(iw.size)), _p(self.ikeep), _p(iw1), ctypes.byref(nsteps), ctypes.byref(iflag),
                         _p(self.icntl), _p(self.cntl), _p(info), ctypes.byref(ops))
        self.nsteps = nsteps
        return info

    def factorize(self, values, la, liw, grow=True):
        """MA27BD; with ``grow``, called again with the size asked for after IFLAG -3 or -4 (as
        IPOPT does when rows leave the eliminated block at the pivot test)."""
        self.a, self.iw = np.zeros(la), np.zeros(liw, np.int32)
        self.a[:len(values)] = values
        maxfrt, iw1, info = ctypes.c_int(0), np.zeros(2 * self.n.value, np.int32), np.zeros(20, np.int32)
        self.lib.ma27bd_(ctypes.byref(self.n), ctypes.byref(self.nz), _p(self.rows), _p(self.cols), _p(self.a),
                         ctypes.byref(ctypes.c_int(la)), _p(self.iw), ctypes.byref(ctypes.c_int(liw)), _p(self.ikeep),
                         ctypes.byref(self.nsteps), ctypes.byref(maxfrt), _p(iw1), _p(self.icntl), _p(self.cntl), _p(info))
        self.maxfrt = maxfrt
        if grow and info[0] in (-3, -4):
            return self.factorize(values, int(info[1]) if info[0] == -4 else la, int(info[1]) if info[0] == -3 else liw)
        return info

    def solve(self, rhs):
        x, info = np.array(rhs, dtype=float), np.zeros(20, np.int32)
        w = np.zeros(max(self.maxfrt.value, 1))
        self.lib.ma27cd_(ctypes.byref(self.n), _p(self.a), ctypes.byref(ctypes.c_int(self.a.size)), _p(self.iw),
                         ctypes.byref(ctypes.c_int(self.iw.size)), _p(w), ctypes.byref(self.maxfrt), _p(x),
                         _p(np.zeros(self.nsteps.value, np.int32)), ctypes.byref(self.nsteps), _p(self.icntl), _p(info))
        assert info[0] == 0
        return x


def _p(array):
    return array.ctypes.data_as(ctypes.c_void_p)


def _matrix(eigenvalues, seed=0, scale=None):
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.normal(size=(len(eigenvalues),) * 2))
    k = q @ np.diag(eigenvalues) @ q.T
    if scale is not None:
        k = scale[:, None] * k * scale[None, :]
    return (k + k.T) / 2


def _triplets(k, seed=1, upper_share=0.5):
    """Entries of the upper triangle (a share of them) and of the lower, in random order, some
    split into two summed duplicates."""
    rng = np.random.default_rng(seed)
    rows, cols = np.tril_indices(k.shape[0])
    values = k[rows, cols]
    swap = rng.random(rows.size) < upper_share
    rows, cols = np.where(swap, cols, rows), np.where(swap, rows, cols)
    split = rng.random(rows.size) < 0.2
    part = values[split] * rng.uniform(-1, 2, split.sum())
    rows, cols = np.r_[rows, rows[split]], np.r_[cols, cols[split]]
    values = np.r_[values, part]
    values[:split.size][split] -= part
    order = rng.permutation(rows.size)
    return rows[order], cols[order], values[order]


@pytest.fixture(scope="module")
def ma27():
    assert kkt.dense_library() is not None, "the dense KKT solver is not built: make install (python -m nncas.kkt.build)"
    return Ma27(kkt.dense_library())


@pytest.mark.parametrize("scaled", [False, True])
@pytest.mark.parametrize("upper_share", [0.0, 0.5, 1.0])
def test_factorization_gives_inertia_and_solution(ma27, scaled, upper_share):
    """Entries given in either triangle or both."""
    n, negative = 40, 13
    eigenvalues = np.r_[np.linspace(0.5, 3, n - negative), -np.linspace(0.1, 5, negative)]
    scale = 10.0 ** np.linspace(-5, 5, n) if scaled else None
    k = _matrix(eigenvalues, scale=scale)
    rows, cols, values = _triplets(k, upper_share=upper_share)
    info = ma27.analyse(n, rows, cols)
    assert info[0] == 0 and info[4] >= rows.size + n and info[5] >= n
    info = ma27.factorize(values, int(info[4]), int(info[5]))
    assert info[0] == 0
    assert info[14] == negative
    rhs = np.random.default_rng(3).normal(size=n)
    x = ma27.solve(rhs)
    backward_error = np.abs(k @ x - rhs) / (np.abs(k) @ np.abs(x) + np.abs(rhs))
    assert backward_error.max() < 1e-12


def _kkt_like(case, e=30, coupled=8, rest=5, seed=4):
    """[D C^T 0; C B11 B12; 0 B21 B22] with D diagonal: the analysis eliminates D's rows first."""
    rng = np.random.default_rng(seed)
    n = e + coupled + rest
    d = rng.uniform(1.0, 3.0, e)
    if case in ("signs", "changed structure"):
        d[e // 3:] *= -1  # two runs of equal sign
    if case == "small pivots":
        d[::7] = 1e-3  # fail Bunch-Kaufman's test against C's entries: these rows join the rest
    k = np.zeros((n, n))
    k[:e, :e] = np.diag(d)
    c = 0.3 * rng.normal(size=(coupled, e))
    k[e:e + coupled, :e], k[:e, e:e + coupled] = c, c.T
    b = rng.normal(size=(coupled + rest,) * 2)
    k[e:, e:] = b + b.T
    return k


@pytest.mark.parametrize("case", ["signs", "small pivots", "changed structure"])
def test_eliminated_diagonal_block_gives_inertia_and_solution(ma27, case):
    """Rows with a diagonal Hessian (a lifted layer's inputs) are eliminated before the dense
    factorization; pivots of either sign, pivots too small to eliminate, and entries the
    analysis did not see (they send their rows back to the dense part) give numpy's answers."""
    k = _kkt_like(case)
    n = k.shape[0]
    rows, cols = np.nonzero(np.tril(k))
    info = ma27.analyse(n, rows, cols)
    assert info[0] == 0 and np.count_nonzero(ma27.ikeep[:n] == 1) == 30  # D's rows
    if case == "changed structure":
        k[1, 0] = k[0, 1] = 0.7  # two rows of D now coupled
        rows, cols = np.nonzero(np.tril(k))
        ma27.rows, ma27.cols = rows.astype(np.int32) + 1, cols.astype(np.int32) + 1
        ma27.nz = ctypes.c_int(rows.size)
    info = ma27.factorize(k[rows, cols], int(info[4]), int(info[5]))
    assert info[0] == 0
    assert ma27.iw[2 * n] == {"signs": 30, "small pivots": 25, "changed structure": 28}[case]  # rows eliminated (both rows of the new entry leave)
    assert info[14] == np.count_nonzero(np.linalg.eigvalsh(k) < 0)
    rhs = np.random.default_rng(5).normal(size=n)
    x = ma27.solve(rhs)
    backward_error = np.abs(k @ x - rhs) / (np.abs(k) @ np.abs(x) + np.abs(rhs))
    assert backward_error.max() < 1e-12


@pytest.mark.parametrize("triangle", [np.tril, np.triu])
def test_two_by_two_pivots_count_one_negative_each(ma27, triangle):
    """Zero diagonal blocks force Bunch-Kaufman's 2x2 pivots: [[0, b], [b, 0]] has one
    negative and one positive eigenvalue."""
    k = np.kron(np.eye(5), np.array([[0.0, 2.0], [2.0, 0.0]]))
    rows, cols = np.nonzero(triangle(k))
    info = ma27.analyse(10, rows, cols)
    info = ma27.factorize(k[rows, cols], int(info[4]), int(info[5]))
    assert info[0] == 0 and info[14] == 5
    np.testing.assert_allclose(ma27.solve(np.arange(10.0)), np.linalg.solve(k, np.arange(10.0)), atol=1e-12)


def test_singular_matrix_reports_its_rank(ma27):
    n = 12
    k = np.zeros((n, n))
    k[:10, :10] = _matrix(np.r_[np.ones(7), -np.ones(3)])  # two rows and columns of zeros
    rows, cols = np.tril_indices(n)
    info = ma27.analyse(n, rows, cols)
    info = ma27.factorize(k[rows, cols], int(info[4]), int(info[5]))
    assert info[0] == 3 and info[1] == n - 2  # MA27's rank-deficiency warning, with the rank


def test_small_workspaces_are_refused_with_the_size_needed(ma27):
    n = 6
    rows, cols = np.tril_indices(n)
    values = _matrix(np.arange(1.0, n + 1))[rows, cols]
    info = ma27.analyse(n, rows, cols)
    la, liw = int(info[4]), int(info[5])
    short = ma27.factorize(values, la - 1, liw, grow=False)
    assert short[0] == -4 and short[1] == la
    short = ma27.factorize(values, la, liw - 1, grow=False)
    assert short[0] == -3 and short[1] == liw
    assert ma27.factorize(values, la, liw)[0] == 0


def test_a_nan_entry_is_refused_with_its_position(ma27):
    rows, cols = np.tril_indices(4)
    values = _matrix(np.arange(1.0, 5.0))[rows, cols]
    values[3] = np.nan
    info = ma27.analyse(4, rows, cols)
    info = ma27.factorize(values, int(info[4]), int(info[5]))
    assert info[0] == -6 and info[1] == 4


def test_out_of_range_entries_are_reported(ma27):
    assert ma27.analyse(3, [0, 1, 5], [0, 1, 2])[0:2].tolist() == [1, 1]


def test_build_compiles_the_library(tmp_path):
    path = build(tmp_path / "libdense.so")
    assert Ma27(path).analyse(2, [0, 1], [0, 1])[0] == 0


def _solve_both(nlp, args, **options):
    """(objective, x) from IPOPT with the dense solver and with stock MUMPS."""
    results = []
    for choice, name in (("dense", "dense LDLT (nncas)"), ("ipopt", "mumps")):
        S = nncas.nlpsol("S", "ipopt", nlp, {**QUIET, **options}, kkt_solver=choice)
        result = S(**args)
        assert S.stats()["success"], (choice, S.stats()["return_status"])
        assert nncas.problem_stats(S, result).linear_solver == name
        results.append((float(result["f"]), result["x"].full().ravel()))
    return results


def test_nonconvex_problem_with_inertia_correction_reaches_mumps_optimum():
    """A nonconvex objective (negative curvature: IPOPT corrects the inertia), an equality and
    an inequality: both solvers reach the same local optimum."""
    x = ca.MX.sym("x", 6)
    f = ca.sum1((1 - x) ** 2) - 3 * ca.sum1(ca.cos(2 * x)) + x[0] * x[3] * x[5]
    g = ca.vertcat(ca.sumsqr(x) - 4, x[0] + 2 * x[1] - x[2] * x[4])
    (f_dense, x_dense), (f_mumps, x_mumps) = _solve_both(
        {"x": x, "f": f, "g": g}, {"x0": np.linspace(-1, 1, 6), "lbg": [-np.inf, 0.5], "ubg": [0, 0.5]})
    assert f_dense == pytest.approx(f_mumps, rel=1e-8)
    np.testing.assert_allclose(x_dense, x_mumps, atol=1e-6)


def test_plain_casadi_nlpsol_takes_the_dense_solver():
    """The library is an IPOPT option set, usable without nncas's helpers."""
    x = ca.MX.sym("x", 6)
    nlp = {"x": x, "f": ca.sum1((1 - x) ** 2) - 3 * ca.sum1(ca.cos(2 * x)), "g": ca.sumsqr(x) - 4}
    objectives = []
    for extra in ({}, kkt.dense_options()):
        S = ca.nlpsol("S", "ipopt", nlp, {"print_time": False, "ipopt": {"print_level": 0, "sb": "yes", **extra}})
        result = S(x0=np.linspace(-1, 1, 6), lbg=-np.inf, ubg=0)
        assert S.stats()["success"]
        objectives.append(float(result["f"]))
    assert objectives[0] == pytest.approx(objectives[1], rel=1e-8)


def test_dependent_constraints_reach_mumps_optimum():
    """Two copies of one equality: the KKT matrix is singular until IPOPT perturbs it."""
    x = ca.MX.sym("x", 3)
    row = x[0] + x[1] + x[2] - 1
    (f_dense, x_dense), (f_mumps, x_mumps) = _solve_both(
        {"x": x, "f": ca.sumsqr(x - ca.DM([1, 2, 3])), "g": ca.vertcat(row, 2 * row)},
        {"x0": np.zeros(3), "lbg": 0, "ubg": 0})
    assert f_dense == pytest.approx(f_mumps, rel=1e-8)
    np.testing.assert_allclose(x_dense, [-2 / 3, 1 / 3, 4 / 3], atol=1e-7)


@pytest.fixture(scope="module")
def net():
    return zoo.mlp([16, 12, 12, 3], nn.Tanh, head=lambda: nn.Softmax(dim=-1), seed=5)


@pytest.fixture(scope="module")
def case(net):
    """A reference point and a class-2 score between its own and the best of 400 samples."""
    rng = np.random.default_rng(4)
    x_ref = rng.uniform(0.2, 0.8, 16)
    network = nncas.from_torch(net)
    y_ref, y_max = network.numpy(x_ref)[2], network.numpy(rng.uniform(0, 1, (16, 400)))[2].max()
    return x_ref, y_ref + 0.5 * (y_max - y_ref)


def _adversarial(net, case, formulation):
    """Problem 7 in miniature: the nearest x in [0, 1]^16 whose class-2 score reaches the threshold."""
    x_ref, threshold = case
    x = ca.MX.sym("x", 16)
    e = nncas.embed(net, x, formulation=formulation, x0=x_ref)
    nlp = {"x": ca.vertcat(x, e.w), "f": ca.sumsqr(x - x_ref), "g": ca.vertcat(e.g, e.y[2])}
    args = {"x0": np.r_[x_ref, e.w0], "lbx": np.r_[np.zeros(16), e.lbw], "ubx": np.r_[np.ones(16), e.ubw],
            "lbg": np.r_[e.lbg, threshold], "ubg": np.r_[e.ubg, np.inf]}
    return nlp, args, e


def _shape(nlp, detect_simple_bounds=False):
    from nncas.derivatives import derivative_functions
    functions = derivative_functions(nlp["x"], ca.MX(0, 1), nlp["f"], nlp["g"])
    return kkt.nlp_shape(functions, {"detect_simple_bounds": detect_simple_bounds})


@pytest.mark.parametrize("formulation,expected", [("graybox", "dense"), ("reduced", "dense"), ("full", "ipopt")])
def test_auto_picks_dense_for_dense_kkt_matrices(net, case, formulation, expected):
    nlp, args, keep = _adversarial(net, case, formulation)
    assert kkt.choice(nlp) == expected
    (f_dense, x_dense), (f_mumps, x_mumps) = _solve_both(nlp, args)
    assert f_dense == pytest.approx(f_mumps, rel=1e-8)
    np.testing.assert_allclose(x_dense[:16], x_mumps[:16], atol=1e-6)


def test_independent_blocks_keep_mumps(net, case):
    """A gray box batched over 3 samples, each with its own constraint: the KKT matrix is a
    third full but three independent blocks, where MUMPS does a ninth of the dense flops."""
    x_ref, threshold = case
    x = ca.MX.sym("x", 16 * 3)
    e = nncas.embed(net, ca.reshape(x, 16, 3), formulation="graybox")
    nlp = {"x": x, "f": ca.sumsqr(x - np.tile(x_ref, 3)), "g": e.y[2, :].T}
    shape = _shape(nlp)
    assert shape.fill > kkt.DENSE_FILL_MIN and shape.blocks == (18, 18, 18)
    assert kkt.choice(nlp) == "ipopt"
    one = ca.MX.sym("one", 16)
    single = {"x": one, "f": ca.sumsqr(one - x_ref), "g": nncas.embed(net, one, formulation="graybox").y[2]}
    assert kkt.choice(single) == "dense"


def test_opti_route_reaches_the_same_optimum(net, case):
    x_ref, threshold = case
    values = []
    for choice in ("auto", "ipopt"):
        opti = ca.Opti()
        x = opti.variable(16)
        opti.set_initial(x, x_ref)
        y, _ = nncas.add_predictor(opti, net, x, formulation="graybox")
        opti.subject_to(opti.bounded(0, x, 1))
        opti.subject_to(y[2] >= threshold)
        opti.minimize(ca.sumsqr(x - x_ref))
        nncas.solver(opti, "ipopt", QUIET, kkt_solver=choice)
        sol = opti.solve()
        values.append(sol.value(opti.f))
        assert nncas.problem_stats(opti, sol).linear_solver == ("dense LDLT (nncas)" if choice == "auto" else "mumps")
    assert values[0] == pytest.approx(values[1], rel=1e-8)


@pytest.mark.parametrize("formulation,expected", [("graybox", True), ("reduced", True), ("full", False)])
def test_opti_bounds_reach_ipopt_as_bounds_only_for_dense_kkt_matrices(net, formulation, expected):
    """nncas.solver's default detect_simple_bounds: bounds where the KKT matrix is dense."""
    from nncas.derivatives import derivative_functions
    from nncas.nlp import opti_nlp
    opti = ca.Opti()
    x = opti.variable(16)
    y, _ = nncas.add_predictor(opti, net, x, formulation=formulation)
    opti.subject_to(opti.bounded(0, x, 1))
    opti.subject_to(y[2] >= 0.5)
    opti.minimize(ca.sumsqr(x))
    functions = derivative_functions(*opti_nlp(opti))
    assert kkt.bounds_as_bounds(kkt.nlp_shape(functions, {"detect_simple_bounds": True})) is expected


def test_box_rows_count_only_without_detect_simple_bounds(net):
    """x's box as 16 rows makes the KKT matrix sparser; as bounds it is dense again."""
    x = ca.MX.sym("x", 16)
    e = nncas.embed(net, x, formulation="graybox")
    many = ca.vertcat(e.y[2], x, x + 0)
    nlp = {"x": x, "f": ca.sumsqr(x), "g": many}
    rows_shape, bounds_shape = _shape(nlp), _shape(nlp, detect_simple_bounds=True)
    assert rows_shape.rows == 16 + 2 * 33 and bounds_shape.rows == 16 + 2 * 1
    assert bounds_shape.fill > rows_shape.fill


def test_user_linear_solver_options_win():
    dense = kkt.KktShape(rows=10, nonzeros=55)
    assert dense.dense and kkt.solver_for_shape("auto", "ipopt", {}, dense) == "dense"
    assert kkt.solver_for_shape("auto", "ipopt", {"ipopt.linear_solver": "mumps"}, dense) == "ipopt"
    assert kkt.solver_for_shape("auto", "ipopt", {"ipopt": {"hsllib": "libhsl.so"}}, dense) == "ipopt"
    assert kkt.solver_for_shape("auto", "sqpmethod", {}, dense) == "ipopt"
    assert kkt.solver_for_shape("ipopt", "ipopt", {}, dense) == "ipopt"
    assert kkt.solver_for_shape("auto", "ipopt", {}, kkt.KktShape(rows=10, nonzeros=10)) == "ipopt"  # sparse


def test_the_solver_table_adds_options_and_names():
    dense, own = kkt.SOLVERS["dense"], kkt.SOLVERS["ipopt"]
    nested = dense.with_options({"ipopt": {"tol": 1e-9}})
    assert nested["ipopt"]["tol"] == 1e-9 and nested["ipopt"]["linear_solver"] == "ma27"
    flat = dense.with_options({"print_time": False, "ipopt.linear_system_scaling": "slack-based"})
    assert flat["ipopt.hsllib"] == str(kkt.dense_library()) and flat["ipopt.linear_system_scaling"] == "slack-based"
    assert own.with_options({"ipopt.tol": 1e-9}) == {"ipopt.tol": 1e-9}
    assert dense.name("ipopt", {}) == "dense LDLT (nncas)"
    assert own.name("ipopt", {}) == "mumps" and own.name("ipopt", {"ipopt": {"linear_solver": "ma57"}}) == "ma57"
    assert own.name("sqpmethod", {}) == ""


@pytest.mark.parametrize("kkt_solver,plugin,options,match", [
    ("fast", "ipopt", {}, "kkt_solver='fast'"),
    ("dense", "sqpmethod", {}, "plugin 'ipopt'"),
    ("dense", "ipopt", {"ipopt.linear_solver": "ma57"}, "linear_solver"),
    ("dense", "ipopt", {"ipopt.linear_system_scaling": "mc19"}, "kkt_solver='dense'.*MC19 is HSL's"),
    ("auto", "ipopt", {"ipopt": {"linear_system_scaling": "mc19"}}, "kkt_solver='auto'.*MC19 is HSL's"),
])
def test_bad_choices_are_refused(kkt_solver, plugin, options, match):
    with pytest.raises(nncas.InputError, match=match):
        kkt.solver_for_shape(kkt_solver, plugin, options, kkt.KktShape(rows=10, nonzeros=55))


def test_choice_is_the_plan_nlpsol_follows():
    """kkt.choice reads the nlp as nlpsol does: a user's cache entry for the Hessian shapes the
    KKT matrix (a zero Hessian leaves it sparse), and the plan's options are what nlpsol gets."""
    x = ca.MX.sym("x", 30)
    nlp = {"x": x, "f": ca.sumsqr(x) + ca.sum1(x) ** 4, "g": x[:5] * x[5:10]}
    assert kkt.choice(nlp) == "dense"
    diagonal = ca.Function("nlp_hess_l", [x, ca.MX(0, 1), ca.MX.sym("lam_f"), ca.MX.sym("lam_g")],
                           [ca.MX(ca.Sparsity.diag(30), 1)])
    assert kkt.choice(nlp, options={"cache": {"nlp_hess_l": diagonal}}) == "ipopt"
    planned = kkt.plan(x, ca.MX(0, 1), nlp["f"], nlp["g"], "ipopt", {"ipopt.tol": 1e-9})
    assert planned.kkt_solver == "dense" and planned.linear_solver == "dense LDLT (nncas)"
    assert planned.options["ipopt.linear_solver"] == "ma27" and planned.options["ipopt.tol"] == 1e-9
    assert set(planned.functions) == {"nlp_hess_l", "nlp_jac_g", "nlp_grad_f", "nlp_jac_fg", "nlp_gf_jg"}
    assert planned.options["cache"] == planned.functions and planned.keep == ()
    S = nncas.nlpsol("S", "ipopt", nlp, {**QUIET, "ipopt.tol": 1e-9})
    assert S.linear_solver == planned.linear_solver


def test_kkt_solver_argument_is_checked():
    x = ca.MX.sym("x", 2)
    with pytest.raises(nncas.InputError, match="kkt_solver"):
        nncas.nlpsol("S", "ipopt", {"x": x, "f": ca.sumsqr(x)}, QUIET, kkt_solver="umfpack")


def _factorized(n, rows, cols, values, threshold=None):
    """A fresh library handle (CNTL(1) = ``threshold`` when given) with the matrix analysed and
    factorized: (handle, INFO)."""
    handle = Ma27(kkt.dense_library())
    if threshold is not None:
        handle.cntl[0] = threshold
    info = handle.analyse(n, rows, cols)
    assert info[0] == 0
    return handle, handle.factorize(np.asarray(values, float), int(info[4]), int(info[5]))


def test_singular_factorization_still_solves_consistent_systems():
    """After IFLAG 3 the solve is finite and, for a right-hand side in the range, a solution (as
    MA27's, with the zero pivots' components zero): IPOPT's ma27_ignore_singularity uses it."""
    n = 12
    k = np.zeros((n, n))
    k[:10, :10] = _matrix(np.r_[np.ones(7), -np.ones(3)])
    k[10, :] = k[0, :]  # row and column 10 copies of row and column 0; row 11 stays zero
    k[:, 10] = k[:, 0]
    rows, cols = np.tril_indices(n)
    handle, info = _factorized(n, rows, cols, k[rows, cols])
    assert info[0] == 3 and info[1] == np.linalg.matrix_rank(k)
    rhs = k @ np.random.default_rng(6).normal(size=n)
    x = handle.solve(rhs)
    assert np.all(np.isfinite(x))
    np.testing.assert_allclose(k @ x, rhs, atol=1e-10)


def test_dependent_rows_are_reported_singular():
    """Cancellation to rounding level (a Jacobian row repeated) is a zero pivot."""
    k = np.zeros((5, 5))
    k[:3, :3] = 2 * np.eye(3)
    k[3:, :3] = [[1.0, 2.0, 3.0], [1.0, 2.0, 3.0]]
    k[:3, 3:] = k[3:, :3].T
    rows, cols = np.nonzero(np.tril(k + np.eye(5)))  # the structure IPOPT gives: every diagonal entry
    handle, info = _factorized(5, rows, cols, k[rows, cols])
    assert info[0] == 3 and info[1] == 4


def test_tiny_pivot_computed_exactly_is_not_zero():
    """[[1, c], [c, 0]] with c = 1e-20: the second pivot, -c^2, is tiny against the scaled
    matrix but exact (nothing cancelled), and the matrix is nonsingular (MUMPS agrees)."""
    c = 1e-20
    handle, info = _factorized(2, [0, 1], [0, 0], [1.0, c])
    assert info[0] == 0 and info[14] == 1
    np.testing.assert_allclose(handle.solve(np.array([1.0, 2.0])), [2.0 / c, (1.0 - 2.0 / c) / c], rtol=1e-14)


def test_overflowing_sum_of_duplicates_keeps_the_inertia():
    """Two entries of -1e308 at (1, 1): their sum overflows; the matrix [[-2e308, 1], [1, 1]] has
    one negative eigenvalue and the solution of K x = (1, 1) is (0, 1)."""
    handle, info = _factorized(2, [0, 0, 1, 1], [0, 0, 0, 1], [-1e308, -1e308, 1.0, 1.0])
    assert info[0] == 0 and info[14] == 1
    x = handle.solve(np.array([1.0, 1.0]))
    assert abs(x[0]) < 1e-300 and x[1] == pytest.approx(1.0, rel=1e-15)


def test_scaling_is_taken_after_duplicates_are_summed():
    """The 10 x 10 identity with (1, 1) given as 1e15 and -1e15 + 1: full rank, solution the
    right-hand side."""
    n = 10
    handle, info = _factorized(n, np.r_[0, np.arange(n)], np.r_[0, np.arange(n)], np.r_[1e15, -1e15 + 1, np.ones(n - 1)])
    assert info[0] == 0 and info[14] == 0
    np.testing.assert_allclose(handle.solve(np.arange(1.0, n + 1)), np.arange(1.0, n + 1), rtol=1e-15)


def _probe_kkt(inputs=300, outputs=8, seed=0, curvature=1e-3):
    """IPOPT's KKT matrix of benchmarks.kkt.probe at delta = 0: [[c I, 0, W^T], [0, 2 I, -I], [W, -I, 0]]
    with every diagonal entry in the structure."""
    w = np.random.default_rng(seed).normal(size=(outputs, inputs))
    n = inputs + 2 * outputs
    k = np.zeros((n, n))
    k[:inputs, :inputs] = curvature * np.eye(inputs)
    z, g = slice(inputs, inputs + outputs), slice(inputs + outputs, n)
    k[z, z] = 2 * np.eye(outputs)
    k[g, :inputs], k[g, z] = w, -np.eye(outputs)
    k = k + np.tril(k, -1).T
    rows, cols = np.nonzero(np.tril(k + np.eye(n)))
    return k, rows, cols


@pytest.mark.parametrize("threshold,eliminated", [(1e-8, 308), (1e-4, 308), (0.5, 8)])
def test_pivot_threshold_cntl1_decides_the_elimination(threshold, eliminated):
    """CNTL(1) (IPOPT's ma27_pivtol, raised by "increase quality") is the threshold u of the
    elimination test |d| >= u max|c_j|: the probe's x rows (pivot 1e-3 against W's entries) are
    eliminated at IPOPT's default and at ma27_pivtolmax, not at u = 0.5; every answer is numpy's."""
    k, rows, cols = _probe_kkt()
    handle, info = _factorized(k.shape[0], rows, cols, k[rows, cols], threshold)
    assert info[0] == 0 and handle.iw[2 * k.shape[0]] == eliminated
    assert info[14] == np.count_nonzero(np.linalg.eigvalsh(k) < 0)
    rhs = np.random.default_rng(7).normal(size=k.shape[0])
    x = handle.solve(rhs)
    backward_error = np.abs(k @ x - rhs) / (np.abs(k) @ np.abs(x) + np.abs(rhs))
    assert backward_error.max() < 1e-12


def test_sizes_past_half_int_max_are_a_terminal_error():
    """IPOPT multiplies the size asked for by ma27_meminc_factor; past INT_MAX / 2 the library
    answers IFLAG -8 (IPOPT stops) instead of -4 (IPOPT's new size would overflow)."""
    n = 33000  # 33000^2 > INT_MAX / 2
    chain = Ma27(kkt.dense_library()).analyse(n, np.arange(1, n), np.arange(n - 1))  # no diagonal: nothing eliminated
    assert chain[0] == -8 and chain[1] == n
    handle = Ma27(kkt.dense_library())
    rows, cols = np.r_[np.arange(n), np.full(n - 1, n - 1)], np.r_[np.arange(n), np.arange(n - 1)]
    info = handle.analyse(n, rows, cols)  # every row but the last eliminated first: a small LA
    assert info[0] == 0 and info[4] < 10 * n
    values = np.r_[np.zeros(n - 1), 1.0, np.ones(n - 1)]  # zero pivots: the rows go back to the dense part
    info = handle.factorize(values, int(info[4]), int(info[5]), grow=False)
    assert info[0] == -8 and info[1] == n


def test_mc19_scaling_is_refused_before_the_solve():
    x = ca.MX.sym("x", 3)
    nlp = {"x": x, "f": ca.sumsqr(x) + ca.sum1(x) ** 2}
    for kkt_solver in ("dense", "auto"):
        with pytest.raises(nncas.InputError, match="linear_system_scaling='mc19'.*kkt_solver='ipopt'"):
            nncas.nlpsol("S", "ipopt", nlp, {**QUIET, "ipopt.linear_system_scaling": "mc19"}, kkt_solver=kkt_solver)
    S = nncas.nlpsol("S", "ipopt", nlp, {**QUIET, "ipopt": {"linear_system_scaling": "slack-based"}}, kkt_solver="dense")
    S(x0=[1, 2, 3])
    assert S.stats()["success"]


def test_ignore_singularity_with_dependent_rows_reaches_mumps_optimum():
    """ma27_ignore_singularity: IPOPT goes on with the singular factorization and its solution."""
    x = ca.MX.sym("x", 4)
    row = x[0] + x[1] + x[2] - 1
    nlp = {"x": x, "f": ca.sumsqr(x - ca.DM([1, 2, 3, 4])) + x[0] * x[3],
           "g": ca.vertcat(row, row, x[3] - x[0], 3 * row)}
    (f_dense, x_dense), (f_mumps, x_mumps) = _solve_both(nlp, {"x0": np.zeros(4), "lbg": 0, "ubg": 0},
                                                         **{"ipopt.ma27_ignore_singularity": "yes"})
    assert f_dense == pytest.approx(f_mumps, rel=1e-8)
    np.testing.assert_allclose(x_dense, x_mumps, atol=1e-7)


def test_auto_probe_eliminates_at_run_time_and_reaches_mumps_optimum(tmp_path):
    """Issue 22's probe (2500 inputs): auto picks the dense solver, whose elimination of the x
    and z rows holds in every factorization of the solve: IPOPT's log of INFO(9), the reals
    holding the factor, is e (c + 1) + b (b + 1) / 2 with e = 2540 rows eliminated, c = b = 40
    (the constraint rows), where the whole 2580-row matrix would take 3.3 million."""
    from benchmarks.kkt import probe
    nlp, args = probe(2500)
    assert kkt.choice(nlp) == "dense"
    log = tmp_path / "ipopt.log"
    S = nncas.nlpsol("S", "ipopt", nlp, {**QUIET, "ipopt.output_file": str(log), "ipopt.file_print_level": 6})
    result = S(**args)
    assert S.stats()["success"] and nncas.problem_stats(S, result).linear_solver == "dense LDLT (nncas)"
    x_auto = result["x"].full().ravel()
    held = {int(line.rsplit("=", 1)[1]) for line in log.read_text().splitlines() if "(INFO(9))" in line}
    assert held == {2540 * 41 + 40 * 41 // 2}
    M = nncas.nlpsol("M", "ipopt", nlp, QUIET, kkt_solver="ipopt")
    np.testing.assert_allclose(x_auto, M(**args)["x"].full().ravel(), atol=1e-6)
