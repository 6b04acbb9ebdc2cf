"""nncas.solver sets CasADi's BLAS threads only when asked (blas_threads=...), and only while
opti.solve() runs."""
import casadi as ca
import pytest

import nncas
import zoo
from nncas.threads import casadi_blas_threads, casadi_blas_threads_set, set_casadi_blas_threads

pytestmark = pytest.mark.skipif(casadi_blas_threads() is None,
                                reason="this CasADi build has no OpenBLAS of its own")


@pytest.fixture
def restore_blas_threads():
    before = casadi_blas_threads()
    yield
    set_casadi_blas_threads(before)


def _problem(formulation):
    opti = ca.Opti()
    x = opti.variable(zoo.N_IN)
    y, _ = nncas.add_predictor(opti, zoo.network("Tanh"), x, formulation=formulation)
    opti.minimize(ca.sumsqr(x) + ca.sumsqr(y))
    return opti


def test_threads_change_only_while_solving(restore_blas_threads):
    """No side effect by default; an explicit count holds during opti.solve() and is restored."""
    set_casadi_blas_threads(2)
    nncas.solver(_problem("graybox"), "ipopt")
    assert casadi_blas_threads() == 2
    opti = _problem("graybox")
    nncas.solver(opti, "ipopt", {"ipopt.print_level": 0, "print_time": False}, blas_threads=1)
    assert casadi_blas_threads() == 2
    during = []
    opti.callback(lambda i: during.append(casadi_blas_threads()))
    opti.solve()
    assert during and set(during) == {1}
    assert casadi_blas_threads() == 2
    with pytest.raises(ValueError, match="at least 1"):
        nncas.solver(_problem("reduced"), "ipopt", blas_threads=0)


def test_the_context_restores_after_an_error_and_none_leaves_alone(restore_blas_threads):
    set_casadi_blas_threads(3)
    with pytest.raises(RuntimeError, match="inside"):
        with casadi_blas_threads_set(1):
            assert casadi_blas_threads() == 1
            raise RuntimeError("inside")
    assert casadi_blas_threads() == 3
    with casadi_blas_threads_set(None):
        assert casadi_blas_threads() == 3
    with pytest.raises(nncas.InputTypeError, match="whole number"):
        with casadi_blas_threads_set(1.5):
            pass
    assert casadi_blas_threads() == 3
