r"""Which linear solver factorizes IPOPT's KKT matrix, and the dense one nncas ships.

IPOPT solves, every iteration and often more than once (inertia correction), the symmetric
indefinite system

.. math:: K = \begin{bmatrix} W + \Sigma + \delta_w I & J^T \\ J & -\delta_c I \end{bmatrix}

(W the Lagrangian Hessian, J the constraint Jacobian, slacks included). A reduced-space or
gray-box network makes W dense: at 784 inputs K is a 785 x 785 matrix that is 99 % nonzero,
where MUMPS's sparse machinery only adds cost. ``libnncas_dense_ldlt.so`` (``dense_ldlt.c``,
built with the package by ``pip install``) factorizes K densely (scaled Bunch-Kaufman LDL^T, LAPACK ``dsytrf``)
and reports its inertia; IPOPT loads it through MA27's run-time interface (``hsllib``).

``kkt_solver`` of :func:`nncas.nlpsol` and :func:`nncas.solver`:

- ``"auto"`` (default): the dense solver when K is dense — at most :data:`DENSE_ROWS_MAX` rows,
  at least :data:`DENSE_FILL_MIN` of its lower triangle nonzero, and not a set of independent
  blocks (the dense cost :math:`N^3` at most :data:`BLOCK_COST_RATIO` times the blocks'
  :math:`\sum_i n_i^3`), estimated from the sparsity of W and J — and the library is built;
  otherwise IPOPT's default (MUMPS). "Dense" is judged after the solver's first step: the
  variables with a diagonal Hessian row (a lifted layer's inputs) and the slacks are
  eliminated first, when each such variable touches most of the constraint rows (see
  :class:`KktShape`). A linear solver named in the options
  (``ipopt.linear_solver``, ``hsllib``, ``pardisolib``) wins.
- ``"dense"``: the dense solver whatever the structure.
- ``"ipopt"``: leave IPOPT's options as given (stock MUMPS unless they say otherwise).

:func:`choice` tells which one an NLP gets. Where the dense solver is chosen, IPOPT options it
cannot honour (``linear_system_scaling="mc19"``: MC19 is HSL's) are refused with an
:class:`~nncas.errors.InputError` before the solve.
"""
from __future__ import annotations

import ctypes
import warnings
from dataclasses import dataclass, replace
from pathlib import Path

import casadi as ca
import numpy as np
import scipy.sparse
import scipy.sparse.csgraph

from ..errors import InputError, InputTypeError, NncasError

DENSE_ROWS_MAX = 5000
DENSE_FILL_MIN = 0.3
#: the dense solver did equal flops in half MUMPS's time (problem 7); on three independent
#: 785-blocks (dense cost 9x the blocks') it was 3.2x slower per iteration
BLOCK_COST_RATIO = 2.0
CHOICES = ("auto", "dense", "ipopt")
LIBRARY = Path(__file__).resolve().with_name("libnncas_dense_ldlt.so")
_USER_SOLVER_OPTIONS = ("linear_solver", "hsllib", "pardisolib")


class DenseSolverMissing(UserWarning):
    """The dense KKT solver would serve a problem but is not built or does not load."""


#: how to get the dense solver where it is missing or does not load
HOW_TO_BUILD = ("install a C compiler (cc) and reinstall nncas from source: pip install --no-deps "
                "--force-reinstall <the path or URL you installed from>, or pip install -e . in a clone")
_ENTRY_POINTS = ("ma27id_", "ma27ad_", "ma27bd_", "ma27cd_", "nncas_bind_lapack")


def load(path: Path = LIBRARY) -> ctypes.CDLL:
    """The dense solver at ``path``, loaded and bound to SciPy's LAPACK (``dsytrf``, ``dsyrk``,
    ``dgemv`` from the capsules of ``scipy.linalg.cython_lapack`` / ``cython_blas``, resolved
    now, so a SciPy upgrade or a moved environment cannot break it); NncasError saying why not.
    IPOPT's later dlopen of the same path gets this loaded, bound library."""
    if not path.is_file():
        raise NncasError(f"the dense KKT solver is not built ({path.name} is missing next to "
                         f"nncas/kkt/__init__.py): {HOW_TO_BUILD}.")
    try:
        library = ctypes.CDLL(str(path))
    except OSError as error:
        raise NncasError(f"the dense KKT solver {path} does not load ({error}): {HOW_TO_BUILD}.") from None
    missing = [name for name in _ENTRY_POINTS if not hasattr(library, name)]
    if missing:
        raise NncasError(f"the dense KKT solver {path} lacks {', '.join(missing)} (built from another "
                         f"version of dense_ldlt.c?): {HOW_TO_BUILD}.")
    from scipy.linalg import cython_blas, cython_lapack

    threads = scipy_openblas()
    bind = ctypes.CFUNCTYPE(ctypes.c_int, *[ctypes.c_void_p] * 4)(("nncas_bind_lapack", library))
    if bind(_capsule_pointer(cython_lapack, "dsytrf"), _capsule_pointer(cython_blas, "dsyrk"),
            _capsule_pointer(cython_blas, "dgemv"),
            None if threads is None else ctypes.cast(threads.openblas_set_num_threads_local, ctypes.c_void_p)) != 0:
        raise NncasError(f"the dense KKT solver {path} refused SciPy's LAPACK routines.")
    return library


def _capsule_pointer(module, name: str) -> int:
    """The C function a Cython module exports as ``name`` (its ``__pyx_capi__`` capsule)."""
    capsule = module.__pyx_capi__[name]
    get_name = ctypes.PYFUNCTYPE(ctypes.c_char_p, ctypes.py_object)(("PyCapsule_GetName", ctypes.pythonapi))
    get_pointer = ctypes.PYFUNCTYPE(ctypes.c_void_p, ctypes.py_object, ctypes.c_char_p)(
        ("PyCapsule_GetPointer", ctypes.pythonapi))
    return get_pointer(capsule, get_name(capsule))


def scipy_openblas() -> ctypes.CDLL | None:
    """The OpenBLAS inside SciPy's wheel (which its cython_lapack calls), when it has
    ``openblas_set_num_threads_local``; None otherwise (a SciPy not from a wheel)."""
    import scipy

    folder = Path(scipy.__file__).resolve().parent.parent / "scipy.libs"
    for path in sorted(folder.glob("libscipy_openblas*.so*")):
        if "64_" in path.name:
            continue  # the 64-bit-integer variant; cython_lapack passes 32-bit integers
        library = ctypes.CDLL(str(path))
        if hasattr(library, "openblas_set_num_threads_local"):
            return library
    return None


def dense_library() -> Path | None:
    """The dense solver's path once it loads (:func:`load`), or None when it is missing or
    does not load (:func:`dense_options` says why)."""
    try:
        load()
    except NncasError:
        return None
    return LIBRARY


def dense_options() -> dict:
    """IPOPT options that make the dense solver factorize the KKT matrix.

    MA27's scaling (MC19) is not in the library, and its workspace factors are 1: the library
    asks for exactly the doubles it uses. IPOPT's ``ma27_pivtol`` is the threshold of the
    solver's elimination test (docs/kkt.md).
    """
    try:
        load()
    except NncasError as error:
        raise NncasError(f"{error} Or pass kkt_solver='ipopt'.") from None
    return {"linear_solver": "ma27", "hsllib": str(LIBRARY), "linear_system_scaling": "none",
            "ma27_la_init_factor": 1.0, "ma27_liw_init_factor": 1.0}


@dataclass(frozen=True)
class KktShape:
    """The size of IPOPT's KKT matrix, bounded from the NLP's sparsity: ``rows`` counts every
    variable, every constraint row and a slack for each row that may be an inequality;
    ``nonzeros`` the lower triangle's entries. When the variables whose Hessian rows hold only
    their diagonal (a lifted layer's inputs) touch most constraint rows each, the dense solver
    eliminates them and the slacks first (``eliminated``), which couples the ``coupled``
    constraint rows into one dense block; what is left, the ``rest``, is factorized densely.
    ``fill`` is the share of the rest's lower triangle that is nonzero after the elimination
    (``rest_nonzeros`` plus the coupled block); ``blocks`` the rest's sizes in the matrix's
    independent diagonal blocks, when known."""

    rows: int
    nonzeros: int
    blocks: tuple[int, ...] = ()
    eliminated: int = 0
    coupled: int = 0
    rest_nonzeros: int | None = None

    @property
    def rest(self) -> int:
        return self.rows - self.eliminated

    @property
    def fill(self) -> float:
        if not self.rest:
            return 0.0
        nonzeros = self.nonzeros if self.rest_nonzeros is None else self.rest_nonzeros
        triangle = self.rest * (self.rest + 1) / 2
        return min(1.0, (nonzeros + self.coupled * (self.coupled + 1) / 2) / triangle)

    @property
    def dense_sized(self) -> bool:
        """Small and full enough for the dense solver (before looking for independent blocks)."""
        return 0 < self.rest <= DENSE_ROWS_MAX and self.fill >= DENSE_FILL_MIN

    @property
    def dense(self) -> bool:
        blocks_cost = sum(float(b) ** 3 for b in self.blocks) or float(self.rest) ** 3
        return self.dense_sized and float(self.rest) ** 3 <= BLOCK_COST_RATIO * blocks_cost


def kkt_shape(hessian: ca.Sparsity, jacobian: ca.Sparsity, bound_rows: bool = False) -> KktShape:
    """The KKT shape for a Hessian sparsity (whole or one triangle) and a Jacobian sparsity.

    ``bound_rows``: rows with a single entry become variable bounds (CasADi's
    ``detect_simple_bounds``), so they do not count.
    """
    n = hessian.size1()
    rows, cols = _triplet(hessian)
    lower = np.sort(np.maximum(rows, cols) * n + np.minimum(rows, cols))
    # unique by sorting: numpy 2.4's hash-based np.unique took 0.24 s on 307k entries, this 0.01
    lower = lower[np.r_[True, lower[1:] != lower[:-1]]] if lower.size else lower
    lower_rows, lower_cols = lower // n, lower % n
    diagonal = np.count_nonzero(lower_rows == lower_cols)
    jac_rows, jac_cols = _triplet(jacobian)
    per_row = np.bincount(jac_rows, minlength=jacobian.size1())
    keep = per_row != 1 if bound_rows else np.ones(per_row.size, bool)
    kept = per_row[keep]
    m = kept.size
    coupled_entry = keep[jac_rows]
    shape = KktShape(rows=n + 2 * m, nonzeros=int(lower.size + (n - diagonal) + kept.sum() + 3 * m))
    eliminated = _eliminated_variables(n, lower_rows, lower_cols)
    shape = _with_elimination(shape, eliminated, lower_rows, lower_cols, jac_cols[coupled_entry])
    if not shape.dense_sized:
        return shape
    # independent blocks: connected components of variables and rows (a slack joins its row)
    row_index = np.cumsum(keep) - 1 + n
    graph = scipy.sparse.coo_matrix((np.ones(lower.size + int(coupled_entry.sum())),
                                     (np.r_[lower_rows, row_index[jac_rows[coupled_entry]]],
                                      np.r_[lower_cols, jac_cols[coupled_entry]])), shape=(n + m, n + m))
    _, labels = scipy.sparse.csgraph.connected_components(graph, directed=False)
    if shape.eliminated:  # the rest: variables with Hessian coupling, and the rows (their slacks eliminated)
        counted = np.r_[~eliminated, np.ones(m, bool)]
        sizes = np.bincount(labels[counted], minlength=labels.max() + 1)
    else:  # every variable, every row and its slack
        sizes = np.bincount(labels) + np.bincount(labels[n:], minlength=labels.max() + 1)
    return replace(shape, blocks=tuple(int(size) for size in sizes if size))


def _eliminated_variables(n: int, lower_rows: np.ndarray, lower_cols: np.ndarray) -> np.ndarray:
    """The variables whose Hessian rows hold nothing but the diagonal."""
    off = lower_rows != lower_cols
    coupled = np.zeros(n, bool)
    coupled[lower_rows[off]] = coupled[lower_cols[off]] = True
    return ~coupled


#: the elimination is taken when its dense SYRK costs at most this many times a sparse
#: elimination of the same rows (sum of their degrees squared): when the eliminated rows each
#: touch most coupled rows (a lifted layer: 1.2), not when each touches a few (the full space's
#: neurons: about 160, where MUMPS was 4x faster per iteration)
CLIQUE_COST_RATIO = 2.0


def _with_elimination(shape: KktShape, eliminated: np.ndarray, lower_rows, lower_cols, jac_cols) -> KktShape:
    """``shape`` with the dense solver's elimination of the variables with a diagonal Hessian
    row and of the slacks (whose rows then couple every constraint row), when the coupled rows
    form one dense block anyway, with the rest's nonzeros; else ``shape``."""
    n = eliminated.size
    m = (shape.rows - n) // 2
    variables = int(eliminated.sum())
    if not variables:
        return shape
    degrees = np.bincount(jac_cols, minlength=n)[eliminated].astype(float)
    e, coupled = variables + m, m
    if float(e) * coupled ** 2 > CLIQUE_COST_RATIO * (float(np.sum(degrees ** 2)) + m):
        return shape
    off_rest = np.count_nonzero((lower_rows != lower_cols) & ~eliminated[lower_rows] & ~eliminated[lower_cols])
    rest_nonzeros = off_rest + (n - variables) + np.count_nonzero(~eliminated[jac_cols]) + m
    return replace(shape, eliminated=e, coupled=coupled, rest_nonzeros=int(rest_nonzeros))


def _triplet(sparsity: ca.Sparsity) -> tuple[np.ndarray, np.ndarray]:
    """Row and column indices of the nonzeros (CCS to triplets in numpy: faster than get_triplet)."""
    rows = np.asarray(sparsity.row(), dtype=np.int64)
    cols = np.repeat(np.arange(sparsity.size2(), dtype=np.int64), np.diff(np.asarray(sparsity.colind())))
    return rows, cols


def nlp_shape(functions: dict, options: dict | None) -> KktShape:
    """The KKT shape of an NLP from its derivative functions (``nlp_hess_l``, ``nlp_jac_g``)
    and its nlpsol options (``detect_simple_bounds``)."""
    return kkt_shape(functions["nlp_hess_l"].sparsity_out(0), functions["nlp_jac_g"].sparsity_out(1),
                     bound_rows=bool((options or {}).get("detect_simple_bounds", False)))


def bounds_as_bounds(shape_with_bounds: KktShape) -> bool:
    """Whether single-entry rows (an Opti's ``opti.bounded``) should reach IPOPT as variable
    bounds, given the KKT shape they leave as bounds: yes when it is dense, no when it is sparse
    (rows then make it sparser still).

    Measured (docs/kkt.md): problem 7's gray box takes 35 iterations instead of 43 with bounds;
    the full space took 32 iterations and 2.85 s instead of 26 and 1.67 s at MNIST-128, and
    182 s instead of 65 s on the MNIST CNN, MUMPS being slower per iteration with bounds.
    """
    return shape_with_bounds.dense


def choice(nlp: dict, plugin: str = "ipopt", options: dict | None = None, kkt_solver: str = "auto") -> str:
    """``"dense"`` or ``"ipopt"``: the linear solver :func:`nncas.nlpsol` gives ``nlp`` (an nlp
    dict) with these arguments."""
    from ..derivatives import derivative_functions
    from ..solve import _checked_nlp

    x, p, f, g = _checked_nlp(nlp)
    return choose(kkt_solver, plugin, options, nlp_shape(derivative_functions(x, p, f, g), options))


def choose(kkt_solver: str, plugin: str, options: dict | None, shape: KktShape) -> str:
    """``"dense"`` or ``"ipopt"``: what a solve with these arguments uses."""
    if not isinstance(kkt_solver, str) or kkt_solver not in CHOICES:
        raise InputError(f"kkt_solver={kkt_solver!r}; use one of {', '.join(map(repr, CHOICES))}.")
    named = _user_solver_options(options or {})
    if kkt_solver == "dense":
        if plugin != "ipopt":
            raise InputError(f"kkt_solver='dense' is for plugin 'ipopt', not {plugin!r}.")
        if named:
            raise InputError(f"kkt_solver='dense' and the options' {', '.join(named)} both choose a linear "
                             "solver; drop one of them.")
        dense_options()  # refuses when the library is not built
        _check_servable(options or {}, kkt_solver)
        return "dense"
    if kkt_solver == "ipopt" or plugin != "ipopt" or named or not shape.dense:
        return "ipopt"
    try:
        load()
    except NncasError as error:
        # stacklevel 1: one location, so Python's default filter shows it once per process
        warnings.warn(f"nncas: {error} Until then IPOPT uses its default linear solver (MUMPS), "
                      "several times slower on this dense KKT matrix.", DenseSolverMissing)
        return "ipopt"
    _check_servable(options or {}, kkt_solver)
    return "dense"


#: IPOPT's linear_system_scaling values the dense solver serves ("mc19" is HSL's MC19, not in it)
SCALINGS = ("none", "slack-based")


def _check_servable(options: dict, kkt_solver: str) -> None:
    """Refuses IPOPT options the dense solver cannot honour (IPOPT would end in Invalid_Option)."""
    scaling = _ipopt_options(options).get("linear_system_scaling", "none")
    if scaling not in SCALINGS:
        raise InputError(f"ipopt.linear_system_scaling={scaling!r} with kkt_solver={kkt_solver!r}, which gives "
                         f"this problem nncas's dense KKT solver: it serves {' or '.join(map(repr, SCALINGS))} "
                         "(MC19 is HSL's); use one of those, or kkt_solver='ipopt' with ipopt.hsllib naming an "
                         "HSL library.")


def with_kkt_solver(options: dict | None, solver: str) -> dict:
    """``options`` with the dense solver's IPOPT options added when ``solver`` is "dense"; the
    user's own values of the others (``linear_system_scaling``, ``ma27_*``) stay."""
    options = dict(options or {})
    if solver != "dense":
        return options
    extra = dense_options()
    if isinstance(options.get("ipopt"), dict):
        options["ipopt"] = {**extra, **options["ipopt"]}
    else:
        options = {**{f"ipopt.{key}": value for key, value in extra.items()}, **options}
    return options


def solver_name(plugin: str, options: dict | None, solver: str) -> str:
    """What factorizes IPOPT's KKT matrix for :func:`choose`'s ``solver`` and these options:
    "dense LDLT (nncas)", the options' ``linear_solver``, or IPOPT's default "mumps"; empty
    for other plugins."""
    if plugin != "ipopt":
        return ""
    if solver == "dense":
        return "dense LDLT (nncas)"
    return str(_ipopt_options(options or {}).get("linear_solver", "mumps"))


def _ipopt_options(options: dict) -> dict:
    """The IPOPT options in nlpsol ``options``, given nested (``{"ipopt": {...}}``) or flat
    (``"ipopt.name"``)."""
    nested = options.get("ipopt", {})
    if not isinstance(nested, dict):
        raise InputTypeError("options['ipopt'] must be a dict of IPOPT options.")
    flat = {key[len("ipopt."):]: value for key, value in options.items() if key.startswith("ipopt.")}
    return {**nested, **flat}


def _user_solver_options(options: dict) -> list[str]:
    given = _ipopt_options(options)
    return [name for name in _USER_SOLVER_OPTIONS if name in given]
