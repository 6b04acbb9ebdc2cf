"""Gray-box oracle through l4casadi: the torch model compiled to a CasADi external.

l4casadi evaluates in **float32** (its C++ layer casts every input and output), so values
and derivatives agree with float64 torch to about 1e-6 relative, and IPOPT tolerances
below that are not meaningful with this backend. The model receives a (K, n_in) batch of rows.

nncas calls l4casadi's compiled value, Jacobian (``jac_``) and Jacobian of the adjoint
(``jac_adj1_``, the Hessian of lambda^T NN) itself, as an evaluator
(:mod:`nncas.oracles.evaluator`) handed to CasADi through the same complete derivative chain as
the torch oracle (:mod:`nncas.oracles.graybox_function`), so
plain ``nlpsol`` works with exact Hessians; l4casadi's own external leaves the other blocks of
its ``jac_adj1`` unset, which CasADi's AD needs.

The generated C++ and TorchScript traces live in a cache directory keyed by a hash of the
weights, shapes, device and versions (``nncas.cache.cache_root() / "l4casadi"``), under a
sanitized unique name, so repeated runs reuse the compiled library and two models never
overwrite each other's files.
"""
from __future__ import annotations

import copy
import fcntl
import platform
import sys
import warnings

import casadi as ca
import numpy as np
import torch

from ..errors import InputError
from ..cache import cache_root, fingerprint


def _library_suffix() -> str:
    return {"Darwin": ".dylib", "Windows": ".dll"}.get(platform.system(), ".so")


class _Buffered:
    """Evaluate a CasADi Function into numpy arrays without building DMs."""

    def __init__(self, function: ca.Function, outputs: int = 1):
        self._buffer, self._call = function.buffer()
        self._results = [np.zeros(function.nnz_out(i)) for i in range(outputs)]
        self._args = [np.zeros(function.nnz_in(i)) for i in range(function.n_in())]
        for i, r in enumerate(self._results):
            self._buffer.set_res(i, memoryview(r))

    def __call__(self, *args: np.ndarray) -> np.ndarray:
        """The first output for ``args`` (an input the function stores no entries of, e.g. a
        nominal output it does not use, is skipped)."""
        for i, a in enumerate(args):
            if self._args[i].size:
                self._args[i][:] = a
                self._buffer.set_arg(i, memoryview(self._args[i]))
        self._call()
        return self._results[0].copy()


class L4CasADiOracle:
    """An evaluator of y = NN(u) through l4casadi's compiled value, Jacobian and Jacobian-of-adjoint (Hessian).

    With ``batch`` K > 1 the model is compiled for a (K, n_in) input, so the K columns of U are
    one external call. l4casadi differentiates the whole batch; nncas keeps the diagonal
    blocks (zero elsewhere for a network that treats rows independently). The last point's
    value, Jacobian and Hessian are cached.
    """

    dtype = torch.float32

    def __init__(self, module: torch.nn.Module, n_in: int, n_out: int, device: torch.device,
                 batch: int = 1):
        try:
            import l4casadi
        except ImportError as err:
            raise InputError("backend='l4casadi' needs the l4casadi package, an optional part of nncas: "
                             "pip install 'nncas[l4casadi]' (it compiles against the installed torch; see the "
                             "README's Install section), or use backend='torch'.") from err

        self.n_in, self.n_out, self.device, self.batch = n_in, n_out, device, batch
        key = fingerprint(module, n_in, batch, str(device), torch.__version__, l4casadi.__name__, "v2")[:16]
        self.library_name = f"nncas_l4c_{key}"
        self.build_dir = cache_root() / "l4casadi" / key
        self.build_dir.mkdir(parents=True, exist_ok=True)
        library = self.build_dir / f"lib{self.library_name}{_library_suffix()}"
        with open(self.build_dir / ".lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not library.exists():
                self._build(module, l4casadi)
        #: l4casadi's compiled function of the (K, n_in) rows
        self.external = external = ca.external(self.library_name, str(library))
        self._value = _Buffered(external)
        self._jacobian = _Buffered(external.jacobian())
        self._jac_adj1 = _Buffered(external.reverse(1).jacobian())
        self._cache: dict[str, tuple[bytes, np.ndarray]] = {}
        self.evaluations = {"forward": 0, "jacobian": 0, "hessian": 0}

    def _build(self, module, l4casadi):
        # long (seconds to a minute) and once per model: say so, as other long work does
        print(f"nncas: compiling the network with l4casadi into {self.build_dir} (once per model)",
              file=sys.stderr, flush=True)
        model = copy.deepcopy(module).to(dtype=self.dtype)
        builder = l4casadi.L4CasADi(model, device=str(self.device), name=self.library_name,
                                    build_dir=str(self.build_dir))
        with warnings.catch_warnings():  # l4casadi traces with TorchScript, which torch deprecates
            warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"torch\.jit")
            warnings.filterwarnings("ignore", message="The TorchScript type system")
            builder.build(ca.MX.sym("u", self.batch, self.n_in))

    # layouts: CasADi passes U (n x K) column-major, i.e. sample after sample; the external
    # takes U^T (K x n), i.e. feature after feature ------------------------------------------
    def _rows(self, flat: np.ndarray, width: int) -> np.ndarray:
        """(width x K) column-major values -> the external's (K x width) column-major values."""
        return flat.reshape(self.batch, width).T.ravel()

    def _cached(self, kind: str, key: bytes, compute):
        if kind not in self._cache or self._cache[kind][0] != key:
            self.evaluations[{"value": "forward"}.get(kind, kind)] += 1
            self._cache[kind] = key, compute()
        return self._cache[kind][1]

    def value(self, u: np.ndarray) -> np.ndarray:
        out = self._cached("value", u.tobytes(), lambda: self._value(self._rows(u, self.n_in)))
        return out.reshape(self.n_out, self.batch).T

    def _diagonal_blocks(self, flat: np.ndarray, rows: int, cols: int) -> np.ndarray:
        """(K, rows, cols) diagonal blocks of a dense (rows K x cols K) matrix whose rows and
        columns run feature-major (index feature * K + sample)."""
        K = self.batch
        full = flat.reshape(cols * K, rows * K).T.reshape(rows, K, cols, K)
        return full[:, np.arange(K), :, np.arange(K)]

    def jacobian(self, u: np.ndarray) -> np.ndarray:
        def compute():
            value = self.value(u).T.reshape(-1)  # Y^T column-major
            return self._jacobian(self._rows(u, self.n_in), value)
        flat = self._cached("jacobian", u.tobytes(), compute)
        return self._diagonal_blocks(flat, self.n_out, self.n_in)

    def hessian(self, u: np.ndarray, lam: np.ndarray) -> np.ndarray:
        def compute():
            value = self.value(u).T.reshape(-1)
            return self._jac_adj1(self._rows(u, self.n_in), value, self._rows(lam, self.n_out), np.zeros(u.size))
        flat = self._cached("hessian", u.tobytes() + lam.tobytes(), compute)
        return self._diagonal_blocks(flat, self.n_in, self.n_in)
