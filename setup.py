"""Builds the dense KKT solver (nncas/kkt/dense_ldlt.c) with the package.

It is a plain C library that IPOPT loads through its MA27 interface, not a Python module: it
is named libnncas_dense_ldlt.so and links neither Python nor a BLAS (nncas.kkt binds SciPy's
LAPACK at run time). Optional: without a C compiler nncas installs without it, and nncas says
so when IPOPT's default linear solver takes its place.
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
                           extra_compile_args=["-O3"], libraries=["m"], optional=True)],
    cmdclass={"build_ext": PlainLibrary},
)
