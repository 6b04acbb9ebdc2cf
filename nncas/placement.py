r"""Where the entries of a gray box's per-sample derivative blocks land in the NLP's matrices.

A gray box on K samples produces blocks :math:`B_k` (rows :math:`a`, columns :math:`b`). Entry
:math:`B_k[a, b]` belongs at row ``rows[k, a]`` and column ``cols[k, b]`` of a sparse NLP
matrix (the constraint Jacobian, or the upper triangle of the Lagrangian Hessian, where only
entries with row <= column are kept). A :class:`Placement` records that map once, so each
iteration is one gather (or a scatter-add when several entries share a position) from the
flattened block tensor ``(K, a, b)`` straight into the matrix's nonzeros, with no selection
matrix products.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass

import casadi as ca
import numpy as np
import torch


@dataclass
class Placement:
    """``nonzeros[target] += blocks.reshape(-1)[source]`` in the order of ``sparsity``."""

    sparsity: ca.Sparsity
    source: np.ndarray
    target: np.ndarray

    @classmethod
    def of(cls, rows: np.ndarray, cols: np.ndarray, shape: tuple[int, int],
           upper: bool = False) -> "Placement":
        """Placement of blocks whose entry ``[k, a, b]`` goes to ``(rows[k, a], cols[k, b])``."""
        K, na = rows.shape
        nb = cols.shape[1]
        r = np.broadcast_to(rows[:, :, None], (K, na, nb)).reshape(-1)
        c = np.broadcast_to(cols[:, None, :], (K, na, nb)).reshape(-1)
        source = np.arange(r.size)
        if upper:
            keep = r <= c
            r, c, source = r[keep], c[keep], source[keep]
        key = c.astype(np.int64) * shape[0] + r  # column-major position
        unique, target = np.unique(key, return_inverse=True)
        col_of, row_of = np.divmod(unique, shape[0])
        colind = np.searchsorted(col_of, np.arange(shape[1] + 1))
        sparsity = ca.Sparsity(shape[0], shape[1], colind.tolist(), row_of.tolist())
        return cls(sparsity, source, target.reshape(-1))

    def digest(self) -> str:
        """Equal digests place blocks identically (same matrix pattern, same map)."""
        sha = hashlib.sha256()
        for part in (self.sparsity.size(), self.sparsity.colind(), self.sparsity.row(),
                     self.source, self.target):
            sha.update(np.asarray(part, dtype=np.int64).tobytes())
        return sha.hexdigest()

    def on(self, device: torch.device) -> "PlacedGather":
        return PlacedGather(self, device)


class PlacedGather:
    """A :class:`Placement` with its index tensors on ``device``."""

    def __init__(self, placement: Placement, device: torch.device):
        self.nnz = placement.sparsity.nnz()
        self._permutation = None
        if placement.target.size == self.nnz:  # one entry per position: a single gather
            permutation = np.empty_like(placement.source)
            permutation[placement.target] = placement.source
            self._permutation = torch.as_tensor(permutation, device=device)
        else:
            self._source = torch.as_tensor(placement.source, device=device)
            self._target = torch.as_tensor(placement.target, device=device)

    def __call__(self, blocks: torch.Tensor) -> torch.Tensor:
        """The matrix's nonzeros (length nnz) from the block tensor."""
        flat = blocks.reshape(-1)
        if self._permutation is not None:
            return flat[self._permutation]
        out = torch.zeros(self.nnz, dtype=blocks.dtype, device=blocks.device)
        return out.index_add_(0, self._target, flat[self._source])
