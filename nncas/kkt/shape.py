r"""The size and fill of IPOPT's KKT matrix, bounded from the NLP's sparsity, and the rules
that read it: dense or not (:attr:`KktShape.dense`), bounds as bounds or as rows
(:func:`bounds_as_bounds`)."""
from __future__ import annotations

from dataclasses import dataclass, replace

import casadi as ca
import numpy as np
import scipy.sparse
import scipy.sparse.csgraph

DENSE_ROWS_MAX = 5000
DENSE_FILL_MIN = 0.3
#: the dense solver did equal flops in half MUMPS's time (problem 7); on three independent
#: 785-blocks (dense cost 9x the blocks') it was 3.2x slower per iteration
BLOCK_COST_RATIO = 2.0


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
    and its nlpsol options (``detect_simple_bounds``). Without ``nlp_hess_l`` (IPOPT's
    limited-memory Hessian) the Hessian block is diagonal: IPOPT factorizes the KKT matrix of
    sigma I and corrects for the quasi-Newton update by low-rank solves."""
    jacobian = functions["nlp_jac_g"].sparsity_out(1)
    hessian = (functions["nlp_hess_l"].sparsity_out(0) if "nlp_hess_l" in functions
               else ca.Sparsity.diag(jacobian.size2()))
    return kkt_shape(hessian, jacobian, bound_rows=bool((options or {}).get("detect_simple_bounds", False)))


def bounds_as_bounds(shape_with_bounds: KktShape) -> bool:
    """Whether single-entry rows (an Opti's ``opti.bounded``) should reach IPOPT as variable
    bounds, given the KKT shape they leave as bounds: yes when it is dense, no when it is sparse
    (rows then make it sparser still).

    Measured (docs/kkt.md): problem 7's gray box takes 35 iterations instead of 43 with bounds;
    the full space took 32 iterations and 2.85 s instead of 26 and 1.67 s at MNIST-128, and
    182 s instead of 65 s on the MNIST CNN, MUMPS being slower per iteration with bounds.
    """
    return shape_with_bounds.dense
