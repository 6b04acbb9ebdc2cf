"""Gray-box oracle through l4casadi: the torch model compiled to a CasADi external.

l4casadi evaluates in **float32** (its C++ layer casts every input and output), so values
and derivatives agree with float64 torch to about 1e-6 relative, and IPOPT tolerances
below that are not meaningful with this backend. The model receives a (K, n_in) batch of rows.

The generated C++ and TorchScript traces live in a cache directory keyed by a hash of the
weights, shapes, device and versions (``nncas.cache.cache_root() / "l4casadi"``), under a
sanitized unique name, so repeated runs reuse the compiled library and two models never
overwrite each other's files.
"""
from __future__ import annotations

import copy
import fcntl
import platform

import casadi as ca
import torch

from ..cache import cache_root, fingerprint


def _library_suffix() -> str:
    return {"Darwin": ".dylib", "Windows": ".dll"}.get(platform.system(), ".so")


class L4CasADiOracle:
    """y = NN(u) as an l4casadi external, with l4casadi's Jacobian and jac-of-adjoint Hessian.

    With ``batch`` K > 1 the model is compiled for a (K, n_in) input, so the K columns of U are
    one external call. l4casadi differentiates the whole batch, so its Jacobian and Hessian are
    dense (K n_out x K n_in, K n_in x K n_in; zero off the diagonal blocks for a network that
    treats rows independently); :func:`nncas.solver` uses only the diagonal blocks.
    """

    dtype = torch.float32

    def __init__(self, module: torch.nn.Module, n_in: int, n_out: int, device: torch.device,
                 batch: int = 1):
        import l4casadi

        self.n_in, self.n_out, self.device, self.batch = n_in, n_out, device, batch
        key = fingerprint(module, n_in, batch, str(device), torch.__version__, l4casadi.__name__, "v2")[:16]
        self.name = f"nncas_l4c_{key}"
        self.build_dir = cache_root() / "l4casadi" / key
        self.build_dir.mkdir(parents=True, exist_ok=True)
        library = self.build_dir / f"lib{self.name}{_library_suffix()}"
        with open(self.build_dir / ".lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not library.exists():
                self._build(module, l4casadi)
        self.external = external = ca.external(self.name, str(library))
        U, LAM = ca.MX.sym("u", n_in, batch), ca.MX.sym("lam", n_out, batch)
        Y = external(U.T).T
        self.function = ca.Function(f"{self.name}_f", [U], [Y], ["u"], ["y"])
        self.jacobian = ca.Function(f"{self.name}_jac", [U], [ca.jacobian(Y, U)], ["u"], ["jac"])
        # Call l4casadi's jac_adj1 (jacfwd of the vector-Jacobian product) once; letting CasADi
        # differentiate the adjoint instead calls it once per 64 input directions.
        jac_adj1 = external.reverse(1).jacobian()
        hess_rows = jac_adj1(U.T, ca.MX(batch, n_out), LAM.T, ca.MX(batch, n_in))[0]
        # rows/columns come in the order of vec(U^T) (sample fastest); reorder to vec(U)
        order = [k + batch * i for k in range(batch) for i in range(n_in)]
        hess = hess_rows[order, order]
        self.hessian = ca.Function(f"{self.name}_hess", [U, LAM], [hess], ["u", "lam"], ["hess"])

    def _build(self, module, l4casadi):
        model = copy.deepcopy(module).to(dtype=self.dtype)
        builder = l4casadi.L4CasADi(model, device=str(self.device), name=self.name,
                                    build_dir=str(self.build_dir))
        builder.build(ca.MX.sym("u", self.batch, self.n_in))
