"""Installing nncas: pip builds the dense KKT solver into the wheel (and installs without it when
there is no compiler), the library is checked and bound to SciPy's LAPACK before a solve, one
version source, and the default commands that a new user runs first succeed."""
import importlib.metadata
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

import nncas
from nncas import kkt
from nncas.errors import NncasError
from nncas.kkt.build import build
from power import tscopf
from test_kkt import Ma27

ROOT = Path(__file__).resolve().parent.parent
LIBRARY_IN_WHEEL = "nncas/kkt/libnncas_dense_ldlt.so"


def _wheel(tmp_path, **env) -> zipfile.ZipFile:
    """``pip wheel`` of a copy of the project (no build isolation: offline, this venv's setuptools)."""
    source = tmp_path / "source"
    source.mkdir()
    for name in ("setup.py", "setup.cfg", "pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    for package in ("nncas", "power", "vision", "benchmarks"):
        shutil.copytree(ROOT / package, source / package, ignore=shutil.ignore_patterns("*.so", "__pycache__"))
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w",
                           str(tmp_path / "dist"), str(source)], capture_output=True, text=True,
                          env={**__import__("os").environ, **env}, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    return zipfile.ZipFile(next((tmp_path / "dist").glob("nncas-*.whl")))


def test_the_wheel_carries_the_dense_solver_and_one_version(tmp_path):
    names = _wheel(tmp_path).namelist()
    assert LIBRARY_IN_WHEEL in names and "nncas/oracles/libnncas_keeper.so" in names and "nncas/py.typed" in names
    assert any(name.endswith(f"-{nncas.__version__}.dist-info/METADATA") for name in names)


def test_without_a_compiler_the_wheel_builds_without_it(tmp_path):
    names = _wheel(tmp_path, CC=str(tmp_path / "no-such-compiler")).namelist()
    assert "nncas/kkt/__init__.py" in names and LIBRARY_IN_WHEEL not in names


def test_the_installed_version_is_nncas_version():
    assert importlib.metadata.version("nncas") == nncas.__version__


def test_load_refuses_a_missing_or_foreign_library(tmp_path):
    with pytest.raises(NncasError, match="not built"):
        kkt.load(tmp_path / "libnncas_dense_ldlt.so")
    source = tmp_path / "other.c"
    source.write_text("void ma27id_(int *icntl, double *cntl) { (void)icntl; (void)cntl; }\n")
    other = tmp_path / "libother.so"
    subprocess.run(["cc", "-shared", "-fPIC", str(source), "-o", str(other)], check=True)
    with pytest.raises(NncasError, match="lacks ma27ad_, ma27bd_, ma27cd_, nncas_bind_lapack"):
        kkt.load(other)
    (tmp_path / "garbage.so").write_text("not a library")
    with pytest.raises(NncasError, match="does not load"):
        kkt.load(tmp_path / "garbage.so")


def _factorize_2x2(path):
    ma27 = Ma27(path)
    ma27.analyse(2, [0, 1, 1], [0, 0, 1])
    return ma27, ma27.factorize(np.array([2.0, 1.0, -3.0]), 64, 64)


def test_an_unbound_library_refuses_to_factorize_and_a_bound_one_solves(tmp_path):
    path = build(tmp_path / "libnncas_dense_ldlt.so")
    _, info = _factorize_2x2(path)  # loaded by ctypes alone: no LAPACK bound yet
    assert info[0] == -9
    kkt.load(path)
    ma27, info = _factorize_2x2(path)
    assert info[0] == 0 and info[14] == 1  # one negative eigenvalue
    np.testing.assert_allclose(ma27.solve([1.0, 2.0]), np.linalg.solve([[2, 1], [1, -3]], [1.0, 2.0]), rtol=1e-12)


@pytest.mark.parametrize("argv", [[], ["--formulation", "graybox", "--backend", "l4casadi"]],
                         ids=["default", "l4casadi"])
def test_the_tscopf_example_solves_without_flags(argv, capsys):
    assert tscopf.main(["example", *argv]) == 0
    assert "status: Solve_Succeeded" in capsys.readouterr().out


@pytest.mark.parametrize("script", ["quickstart.py", "nlpsol_quickstart.py", "mpc_pendulum.py"])
def test_examples_honour_help(script):
    done = subprocess.run([sys.executable, str(ROOT / "examples" / script), "--help"], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.startswith(f"usage: python examples/{script}")
    assert "objective" not in done.stdout


FALLBACK = """
import warnings, numpy as np, torch, casadi as ca, nncas
torch.manual_seed(0)
net = torch.nn.Sequential(torch.nn.Linear(30, 20), torch.nn.Tanh(), torch.nn.Linear(20, 3)).double()
x = ca.MX.sym("x", 30)
e = nncas.embed(net, x, formulation="graybox", x0=np.zeros(30))
nlp = {"x": ca.vertcat(x, e.w), "f": ca.sumsqr(x - 0.3), "g": ca.vertcat(e.g, e.y[0])}
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("default")
    for _ in range(2):
        S = nncas.nlpsol("S", "ipopt", nlp, {"ipopt.print_level": 0, "print_time": False})
        r = S(x0=np.r_[np.zeros(30), e.w0], lbg=np.r_[e.lbg, 0.5], ubg=np.r_[e.ubg, np.inf])
print(nncas.__file__)
print(S.linear_solver, S.stats()["return_status"], repr(float(r["f"])))
for w in caught:
    print(w.category.__name__, "|", w.message)
"""


def test_without_the_dense_solver_auto_says_so_once_and_solves_with_mumps(tmp_path):
    """nncas as a machine without a compiler installs it (no dense library): kkt_solver="auto"
    warns once per process, names the fix, and IPOPT's default solver reaches the same optimum."""
    def run(package_root):
        done = subprocess.run([sys.executable, "-c", FALLBACK], capture_output=True, text=True, timeout=300,
                              cwd=tmp_path, env={**__import__("os").environ, "PYTHONPATH": str(package_root)})
        assert done.returncode == 0, done.stderr[-2000:]
        return done.stdout.strip().splitlines()[-4:]
    shutil.copytree(ROOT / "nncas", tmp_path / "bare" / "nncas",
                    ignore=shutil.ignore_patterns("libnncas_dense_ldlt.so", "__pycache__"))
    *_, where, solved, warning = run(tmp_path / "bare")
    assert where.startswith(str(tmp_path / "bare"))
    assert solved.startswith("mumps Solve_Succeeded ")
    assert warning.startswith("DenseSolverMissing | nncas: the dense KKT solver is not built")
    assert "install a C compiler" in warning and "MUMPS" in warning
    *_, where, with_dense = run(ROOT)
    assert with_dense.startswith("dense LDLT (nncas) Solve_Succeeded ")
    assert float(solved.split()[-1]) == pytest.approx(float(with_dense.split()[-1]), rel=1e-6)
