r"""Every embedding checked against the torch module as the user calls it, before it is returned.

The embedding's own CasADi pieces, :math:`y(x, w)` and the rows :math:`g(x, w)`, are evaluated
as one Function and compared with ``net(x)`` (hooks, in-place operations and a custom
``forward`` all included, in the module's own dtype and device):

- at the start point :math:`x_0` (every column) with the variables' start values :math:`w_0`:
  the outputs, every row within its bounds, and the derivative :math:`(dy/dx)\,v` along random
  directions v (against torch's autograd on the module) — directly when the embedding adds no
  variables, else implicitly, :math:`dy/dx = y_x - y_w\, g_w^{-1} g_x`, when the rows are
  equalities that determine the variables (a square system: the full space of smooth layers,
  a lifted first layer, gray-box output variables) and there are at most
  :data:`IMPLICIT_VARIABLES` of them;
- at a few seeded points of the input box (or near :math:`x_0` without one): the outputs, with
  the variables solved from that square system by the chord method (up to the same size);
  where the variables are not determined by equalities (ReLU and max-pooling
  complementarities) or too many, the translated network the rows were built from is
  evaluated instead.

With K > 1 columns the module is also called on a batch of distinct samples and on each alone:
a model that mixes samples (``softmax(dim=0)``, batch statistics) is refused, since the
embedding's columns are independent.

The tolerance is relative to :math:`1 + \max|y|`: :math:`4\sqrt{\varepsilon}` for the coarser of
the module's and the embedding's floating-point types (6e-8 in float64, 1.4e-3 in float32).
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import casadi as ca
import numpy as np
import scipy.sparse
import scipy.sparse.linalg
import torch

from .errors import InputError, VerificationError
from .tensors import to_numpy

#: points of the input box checked besides x0
EXTRA_POINTS = 3
#: the Jacobian is compared along this many random directions, on at most JACOBIAN_COLUMNS
#: columns of x (each a forward and a double reverse sweep of the module)
JACOBIAN_DIRECTIONS = 2
JACOBIAN_COLUMNS = 4
#: chord steps at most for the variables at another point (each makes one more layer exact)
CHORD_STEPS = 60
#: Krylov steps for a derivative of the variables (about twice the number of layers needed)
GMRES_STEPS = 80
#: embeddings whose variables are determined by equality rows get their derivatives (at x0,
#: through the rows) and their values at other points (the chord method) checked up to this many
#: variables; larger ones are checked at x0 and, elsewhere, through the network they translate
IMPLICIT_VARIABLES = 4096


@dataclass(frozen=True)
class Verification:
    """What was checked: ``points`` inputs, the largest relative differences of the outputs and
    (None when not compared) of the Jacobian, the tolerance, and the seconds it took."""

    points: int
    value_error: float
    jacobian_error: float | None
    tolerance: float
    seconds: float

    def __str__(self):
        jac = "not compared" if self.jacobian_error is None else f"{self.jacobian_error:.1e}"
        return (f"checked against torch at {self.points} points: outputs {self.value_error:.1e}, "
                f"Jacobian {jac} (tolerance {self.tolerance:.0e}, {self.seconds:.2f} s)")


class Unverifiable(Exception):
    """The embedding's pieces cannot be evaluated on their own (an SX expression as x)."""


class TorchReference:
    """``net`` called as the user calls it: (B, n_in) float64 rows -> (B, n_out) float64 rows."""

    def __init__(self, net: torch.nn.Module, input_shape: tuple | None):
        tensor = next((t for t in list(net.parameters()) + list(net.buffers()) if t.is_floating_point()), None)
        self.net, self.input_shape = net, input_shape
        self.dtype = tensor.dtype if tensor is not None else torch.float64
        self.device = tensor.device if tensor is not None else torch.device("cpu")

    def _call(self, rows: torch.Tensor) -> torch.Tensor:
        batch = rows.shape[0]
        inputs = rows.reshape(batch, *self.input_shape) if self.input_shape else rows
        out = self.net(inputs)
        if not isinstance(out, torch.Tensor):
            raise InputError(f"{type(self.net).__name__} returns a {type(out).__name__}; nncas embeds a module "
                             "that returns one tensor (wrap it to return that tensor).")
        return out.reshape(batch, -1)

    def __call__(self, rows: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            out = self._call(torch.as_tensor(rows, dtype=self.dtype, device=self.device))
        return to_numpy(out)

    def jvp(self, row: np.ndarray, direction: np.ndarray) -> np.ndarray:
        """(dy/dx) v at one input, by torch's autograd on the module itself."""
        x, v = (torch.as_tensor(a, dtype=self.dtype, device=self.device) for a in (row, direction))
        _, out = torch.autograd.functional.jvp(lambda u: self._call(u[None])[0], x, v)
        return to_numpy(out)


class _Pieces:
    """The embedding's outputs and rows as one CasADi Function of (x, w), with its forward
    derivative and the Jacobian of the rows in w."""

    def __init__(self, form):
        x, w = form.inputs, form.w
        y, g = form.outputs, form.g
        if not x.is_valid_input():
            if not isinstance(x, ca.MX):
                raise Unverifiable
            symbol = ca.MX.sym("x", *x.shape)
            y, g = ca.graph_substitute([y, g], [x], [symbol])
            x = symbol
        try:
            self.function = ca.Function("nncas_verify", [x, w], [ca.densify(y), g])
        except RuntimeError as err:  # rows that hold other symbols than x and the embedding's own
            raise Unverifiable from err
        self._symbols, self._rows = (x, w), g
        self._forward = self._rows_in_w = None

    def __call__(self, x: np.ndarray, w: np.ndarray):
        y, g = self.function(x, w)
        return np.asarray(y, dtype=float), np.asarray(g, dtype=float).reshape(-1)

    def g_w(self, x: np.ndarray, w: np.ndarray) -> scipy.sparse.csc_matrix:
        if self._rows_in_w is None:
            self._rows_in_w = ca.Function("nncas_verify_g_w", [*self._symbols], [ca.jacobian(self._rows, self._symbols[1])])
        return scipy.sparse.csc_matrix(self._rows_in_w(x, w).sparse())

    def forward(self, x: np.ndarray, w: np.ndarray, dx: np.ndarray, dw: np.ndarray):
        """(dy, dg): the derivative of (y, g) at (x, w) in the direction (dx, dw)."""
        if self._forward is None:
            self._forward = self.function.forward(1)
        dy, dg = self._forward(x, w, *self.function(x, w), dx, dw)
        return np.asarray(dy, dtype=float), np.asarray(dg, dtype=float).reshape(-1)


def verify(form, net: torch.nn.Module, x0: np.ndarray, box, input_shape, tolerance_dtype: torch.dtype,
           seed: int = 0) -> Verification:
    """Check ``form`` (its rows before the input box's) against ``net``; raise
    :class:`VerificationError` naming the largest difference, or :class:`Unverifiable`."""
    start = time.perf_counter()
    reference = TorchReference(net, input_shape)
    pieces = _Pieces(form)
    try:
        return _verify(form, reference, pieces, x0, box, tolerance_dtype, seed, start)
    except RuntimeError as err:  # the module or its derivatives fail where the solver will call them
        raise VerificationError(
            f"the {form.kind} embedding of {form.model_name} fails when evaluated at x0 or near it: "
            f"{str(err).strip().splitlines()[-1]}. nncas embeds modules whose output and torch.autograd "
            "derivatives can be evaluated in float64 on their own (no .numpy(), no data-dependent Python).") from err


def _verify(form, reference, pieces, x0, box, tolerance_dtype, seed, start) -> Verification:
    eps = max(torch.finfo(reference.dtype).eps, torch.finfo(tolerance_dtype).eps)
    check = _Checker(form, 4 * np.sqrt(eps))
    n, K = x0.shape
    extra = _box_points(x0, box, max(EXTRA_POINTS, 2 if K > 1 else 0), seed)
    if K > 1:
        check.independent_columns(reference, extra)
    w0 = form.w0
    y0, g0 = pieces(x0, w0)
    truth0 = reference(x0.T).T
    check.outputs(y0, truth0, "the start point x0")
    check.rows(g0)
    square = _square_rows(form) and form.n_variables <= IMPLICIT_VARIABLES
    jacobian_error = _compare_jacobians(pieces, reference, x0, w0, square, check, seed)
    factor = None
    checked = K
    for first in range(0, extra.shape[1], K):
        points = extra[:, first:first + K]
        points = np.concatenate([points, x0[:, points.shape[1]:]], axis=1)  # fill the K columns
        where = "a point of the input box" if box is not None else "a point near x0"
        if form.n_variables == 0:
            check.outputs(pieces(points, w0)[0], reference(points.T).T, where)
        elif square:
            factor = factor or scipy.sparse.linalg.splu(pieces.g_w(x0, w0).tocsc())
            w = _solve_variables(pieces, form, points, w0, factor, check.tolerance)
            if w is None:
                continue
            check.outputs(pieces(points, w)[0], reference(points.T).T, where)
        elif form.network is not None:
            check.outputs(form.network.numpy(points), reference(points.T).T, where + " (translated network)")
        else:
            continue
        checked += min(K, extra.shape[1] - first)
    return Verification(checked, check.worst_value, jacobian_error, check.tolerance,
                        time.perf_counter() - start)


class _Checker:
    """Comparisons with one tolerance and one way of saying what differs."""

    def __init__(self, form, tolerance: float):
        self.form, self.formulation, self.tolerance = form, form.kind, tolerance
        self.worst_value = 0.0

    def _refuse(self, what: str, error: float, where: str, hint: str):
        raise VerificationError(
            f"the {self.formulation} embedding of {self.form.model_name} does not reproduce the torch module: "
            f"{what} differ by {error:.3g} (relative; tolerance {self.tolerance:.1g}) at {where}. {hint}")

    def _hint(self) -> str:
        if self.formulation == "graybox":
            return ("The gray box calls the module itself, so the module's output must depend on each sample "
                    "alone and be differentiable by torch.autograd.")
        return ("The translation reads the modules' parameters and the traced graph, not what forward does at "
                "run time: in-place operations (x += ..., inplace=True), hooks, or other Python logic change "
                "the result. Use formulation='graybox', which calls the module itself.")

    def outputs(self, value: np.ndarray, truth: np.ndarray, where: str) -> None:
        if not np.all(np.isfinite(truth)):
            raise VerificationError(f"{self.form.model_name} returns NaN or Inf at {where}; nncas embeds a "
                                    "network that is finite there (check the weights and constants of forward).")
        error = _relative(value, truth)
        self.worst_value = max(self.worst_value, error)
        if not error <= self.tolerance:
            self._refuse("the outputs", error, where, self._hint())

    def rows(self, g: np.ndarray) -> None:
        """Every row of the embedding within its bounds at the start values."""
        lower, upper = self.form.lbg, self.form.ubg
        scale = 1 + np.abs(g)
        excess = np.max(np.maximum(lower - g, g - upper) / scale, initial=0.0)
        if not excess <= self.tolerance:
            self._refuse("its constraint rows and their bounds", excess, "the start values", self._hint())

    def jacobian(self, value: np.ndarray, truth: np.ndarray, column: int) -> float:
        error = _relative(value, truth)
        if not error <= self.tolerance:
            self._refuse("the derivatives dy/dx", error, f"column {column} of x0", self._hint())
        return error

    def independent_columns(self, reference: TorchReference, points: np.ndarray) -> None:
        together = reference(points.T)
        alone = np.concatenate([reference(points[:, [k]].T) for k in range(points.shape[1])])
        error = _relative(together, alone)
        if not error <= self.tolerance:
            raise VerificationError(
                f"{self.form.model_name} mixes the samples of a batch (its output for one sample changes by "
                f"{error:.3g} when others are evaluated with it), but the {self.formulation} embedding's K = "
                f"{self.form.inputs.size2()} columns are independent inputs. Normalize over the features "
                "(dim=-1), or embed one column per call.")


def _relative(value, truth) -> float:
    value, truth = np.asarray(value, dtype=float), np.asarray(truth, dtype=float)
    if value.shape != truth.shape:
        return np.inf
    return float(np.max(np.abs(value - truth), initial=0.0) / (1 + np.max(np.abs(truth), initial=0.0)))


def _box_points(x0: np.ndarray, box, count: int, seed: int) -> np.ndarray:
    """``count`` seeded points (n, count): uniform in the finite part of the box, else x0's first
    column moved by up to 10 % of (1 + |x0|)."""
    rng = np.random.default_rng(seed)
    n = x0.shape[0]
    base = np.repeat(x0[:, [0]], count, axis=1)
    near = base + 0.1 * (1 + np.abs(base)) * rng.uniform(-1, 1, (n, count))
    if box is None:
        return near
    lo, hi = (np.asarray(b, dtype=float)[:, None] for b in box)
    finite = np.isfinite(lo) & np.isfinite(hi)
    inside = lo + (hi - lo) * rng.uniform(0, 1, (n, count))
    return np.clip(np.where(finite, inside, near), lo, hi)


def _square_rows(form):
    """Whether the embedding's rows (all of which hold its variables: the input box's rows come
    later) are equalities as many as the variables, which they then determine."""
    return 0 < form.n_variables == form.n_constraints and np.array_equal(form.lbg, form.ubg)


def _compare_jacobians(pieces: _Pieces, reference: TorchReference, x0, w0, square, check: _Checker, seed: int):
    """The largest relative difference of dy/dx v over random directions v (all columns of x
    moved at once, so a column's outputs must follow its own input only), or None where the
    variables are not determined by equalities."""
    if check.form.n_variables and not square:
        return None
    rng = np.random.default_rng(seed)
    K = x0.shape[1]
    worst = 0.0
    for _ in range(JACOBIAN_DIRECTIONS):
        v = rng.standard_normal(x0.shape)
        dw = np.zeros_like(w0)
        if square:
            dw = _implicit_direction(pieces, x0, w0, v)
            if dw is None:
                return None
        dy = pieces.forward(x0, w0, v, dw)[0]
        for k in range(min(K, JACOBIAN_COLUMNS)):
            worst = max(worst, check.jacobian(dy[:, k], reference.jvp(x0[:, k], v[:, k]), k))
    return worst


def _implicit_direction(pieces: _Pieces, x, w, v):
    r"""dw with :math:`g_x v + g_w\, dw = 0` on the square rows, by GMRES on forward derivatives
    (the rows of a layered embedding are block triangular in w: a few products suffice); None
    if it does not converge."""
    zero_x = np.zeros_like(v)
    rhs = -pieces.forward(x, w, v, np.zeros_like(w))[1]
    operator = scipy.sparse.linalg.LinearOperator(
        (w.size, w.size), matvec=lambda d: pieces.forward(x, w, zero_x, np.ravel(d))[1], dtype=float)
    scale = np.linalg.norm(rhs)
    if scale == 0:
        return np.zeros_like(w)
    dw, info = scipy.sparse.linalg.gmres(operator, rhs, rtol=1e-13, atol=0.0, restart=GMRES_STEPS,
                                         maxiter=1)
    residual = np.linalg.norm(operator.matvec(dw) - rhs)
    return dw if residual <= 1e-10 * scale else None


def _solve_variables(pieces: _Pieces, form, x: np.ndarray, w0: np.ndarray, factor, tolerance: float):
    r"""The variables at x from the rows :math:`g(x, w) = lbg`, by the chord method from w0 with
    the Jacobian factorized at (x0, w0): the rows of a layered embedding are block triangular in
    w with constant diagonal blocks, so each step makes one more layer exact. None if it does not
    converge (the point is then not counted)."""
    w = w0.copy()
    target = form.lbg
    for _ in range(CHORD_STEPS):
        residual = pieces(x, w)[1] - target
        if np.max(np.abs(residual) / (1 + np.abs(target)), initial=0.0) <= 1e-3 * tolerance:
            return w
        w = w - factor.solve(residual)
        if not np.all(np.isfinite(w)):
            return None
    return None
