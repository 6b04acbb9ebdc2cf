"""Ctrl-C during a solve: CasADi reports it as a failed solve; nncas raises it again.

CasADi turns a KeyboardInterrupt raised in IPOPT's loop or in a Python callback (a torch gray
box) into a C++ exception that IPOPT reports as not its own, and returns a failed solve with
that status instead of raising. The solvers :func:`nncas.nlpsol` and :func:`nncas.solver` return
check it after every solve, so the interrupt reaches their caller.
"""
from __future__ import annotations

#: IPOPT's ``return_status`` (through CasADi) for a solve stopped by Ctrl-C
INTERRUPTED_STATUS = "NonIpopt_Exception_Thrown"


def raise_if_interrupted(status: str) -> None:
    """Raise KeyboardInterrupt when ``status``, an NLP solver's ``stats()["return_status"]``,
    says that Ctrl-C stopped the solve, so that the interrupt reaches the caller instead of
    passing for a failed solve."""
    if status == INTERRUPTED_STATUS:
        raise KeyboardInterrupt(f"the solve was interrupted (IPOPT status {status})")
