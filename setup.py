"""Builds the dense KKT solver (nncas/kkt/dense_ldlt.c) and the gray-box keeper
(nncas/oracles/keeper.c) with the package.

Both are plain C libraries, not Python modules. libnncas_dense_ldlt.so is what IPOPT loads
through its MA27 interface; it links neither Python nor a BLAS (nncas.kkt binds SciPy's LAPACK
at run time). libnncas_keeper.so is a CasADi external that ties a gray box's Python callback
to the expression graphs calling it (nncas.oracles.keeper); it gets CPython's functions as
pointers at run time. Optional: without a C compiler nncas installs without them, and says so
when IPOPT's default linear solver takes the dense solver's place, or when a gray box can only
live as long as its embedding.
"""
import os

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext


class PlainLibrary(build_ext):
    """Names the library without Python's extension suffix."""

    def get_ext_filename(self, fullname):
        *package, name = fullname.split(".")
        return os.path.join(*package, name + ".so")

    def get_export_symbols(self, ext):
        return []  # no PyInit_ function: it is never imported


setup(
    ext_modules=[Extension("nncas.kkt.libnncas_dense_ldlt", sources=["nncas/kkt/dense_ldlt.c"],
                           extra_compile_args=["-O3"], libraries=["m"], optional=True),
                 Extension("nncas.oracles.libnncas_keeper", sources=["nncas/oracles/keeper.c"],
                           extra_compile_args=["-O2"], optional=True)],
    cmdclass={"build_ext": PlainLibrary},
)
