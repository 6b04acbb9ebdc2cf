"""nncas: trained PyTorch networks inside CasADi nonlinear programs.

    y, form = nncas.add_predictor(opti, net, x, formulation="full" | "reduced" | "graybox")
    nncas.solver(opti, "ipopt", options)
    sol = opti.solve(); print(nncas.problem_stats(opti, sol))
"""
from . import layers
from .formulation import Formulation
from .network import Network
from .predictor import add_predictor
from .solve import ProblemStats, problem_stats, solver
from .torch_import import AffineScaling, UnsupportedLayerError, from_torch, register_translation

__all__ = [
    "add_predictor", "solver", "problem_stats", "ProblemStats", "Formulation", "Network",
    "from_torch", "register_translation", "UnsupportedLayerError", "AffineScaling", "layers",
]
__version__ = "0.1.0"
