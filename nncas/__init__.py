"""nncas: trained PyTorch networks inside CasADi nonlinear programs.

    e = nncas.embed(net, x, nncas.FullSpace() | nncas.ReducedSpace() | nncas.GrayBox())  # nlp dict pieces
    e = nncas.embed(net, x, "full" | "reduced" | "graybox", **options)                    # the same, by name
    S = nncas.nlpsol("S", "ipopt", {"x": ca.vertcat(x, e.w), "f": f, "g": ca.vertcat(e.g, h(e.y))})

    y, form = nncas.add_predictor(opti, net, x, formulation)                               # or into an Opti
    nncas.solver(opti, "ipopt", options)
    sol = opti.solve(); print(nncas.problem_stats(opti, sol))
"""
from . import layers
from .building import embed
from .embedding import Embedding
from .errors import (DeviceError, InputError, InputTypeError, NncasError, StaleProblemError, UnsupportedLayerError,
                     VerificationError)
from .formulations import Formulation, FullSpace, FullSpaceRule, GrayBox, ReducedSpace
from .graph import GraphNetwork
from .network import Network
from .opti import add_predictor
from .solve import ProblemStats, nlpsol, problem_stats, solver
from .torch_import import AffineScaling, from_torch, register_translation
from .verification import Verification

__all__ = [
    "embed", "Embedding", "add_predictor", "FullSpace", "ReducedSpace", "GrayBox", "Formulation", "FullSpaceRule",
    "nlpsol", "solver", "problem_stats", "ProblemStats",
    "Network", "GraphNetwork", "from_torch", "register_translation", "AffineScaling", "layers",
    "NncasError", "InputError", "InputTypeError", "UnsupportedLayerError", "DeviceError", "StaleProblemError",
    "VerificationError", "Verification",
]
__version__ = "0.2.0"
