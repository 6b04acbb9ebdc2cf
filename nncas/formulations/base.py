"""What every formulation is and is given: the base class, the context of a build, and the
pieces the full and the reduced space share (the translated network, the input size check)."""
from __future__ import annotations

import warnings
from abc import ABC, abstractmethod
from dataclasses import dataclass

import torch

from ..embedding import Embedding
from ..errors import InputError
from ..network import BaseNetwork
from ..torch_import import from_torch


@dataclass(frozen=True)
class Context:
    """What a build is given besides x: the input box ``(lo, hi)`` (arrays of n_in, or None),
    the user's ``translations`` and ``input_shape`` (checked against x's rows)."""

    box: tuple | None = None
    translations: dict | None = None
    input_shape: tuple | None = None


class Formulation(ABC):
    """How ``y = net(x)`` enters a problem; its options are checked when it is made.

    ``keywords`` maps the flat keywords of the string shorthand (``embed(net, x, "full",
    relaxation=...)``) to the object's options, with their defaults.
    """

    #: "full", "reduced" or "graybox" (the string shorthand, :attr:`nncas.Embedding.kind`)
    kind: str
    #: flat keyword -> (option name, default)
    keywords: dict[str, tuple[str, object]] = {}

    @abstractmethod
    def build(self, net, x, x0, new_symbol, context: Context) -> Embedding:
        """The embedding of ``net`` (a torch module, or a :class:`nncas.network.BaseNetwork` where
        the formulation takes one) at ``x`` (n_in, K), start values from ``x0`` (n_in, K),
        variables from ``new_symbol(rows, cols)``; without the input box's rows."""

    @property
    def tolerance_dtype(self) -> torch.dtype:
        """The floating-point type the embedding evaluates in (the verification's tolerance)."""
        return torch.float64

    def __repr__(self):
        options = ", ".join(f"{name}={getattr(self, name)!r}" for name, _ in self.keywords.values())
        return f"{type(self).__name__}({options})"


def network_of(net, x, context: Context) -> BaseNetwork:
    """``net`` translated (:func:`nncas.from_torch` on x's rows, or ``input_shape``), and
    taking x's rows."""
    if isinstance(net, BaseNetwork):
        network = net
    else:
        try:
            network = from_torch(net, n_in=x.size1(), translations=context.translations,
                                 input_shape=context.input_shape)
        except InputError as err:
            if x.size1() == 1 and x.size2() > 1:
                raise InputError(f"{err} x is a row; CasADi vectors are columns: pass x.T.") from err
            raise
    if x.size1() != network.n_in:
        hint = (" x is a row; CasADi vectors are columns: pass x.T."
                if x.size1() == 1 and x.size2() == network.n_in else "")
        raise InputError(f"the network expects {network.n_in} inputs but x has {x.size1()} rows "
                         f"(shape {x.shape}); one input per column.{hint}")
    return network


def embedding_of(formulation: Formulation, network: BaseNetwork, x, new_symbol) -> Embedding:
    """An empty :class:`Embedding` of ``network`` at ``x`` by ``formulation``."""
    return Embedding(formulation.kind, network.name, network.n_in, network.n_out, network.n_params, inputs=x,
                     network=network, formulation=formulation, new_symbol=new_symbol)


def warn_piecewise_linear(names, kind: str) -> None:
    """Warn that the layers or modules ``names`` give IPOPT no curvature where they are an
    expression (the ``kind`` of formulation)."""
    names = sorted(set(names))
    if names:
        warnings.warn(
            f"{', '.join(names)} in a {kind} formulation: second derivatives vanish almost "
            "everywhere, so IPOPT sees no curvature from these layers and may stall at kinks. "
            "The full-space complementarity formulation treats them exactly.", stacklevel=5)
