"""Networks of framework-neutral layers: the interface every formulation reads, and the chain.

:class:`BaseNetwork` is what a formulation needs of a translated network, whether a chain of
layers (:class:`Network`) or a graph of chains (:class:`nncas.graph.GraphNetwork`): its sizes,
its layers, a forward pass in numpy and CasADi, interval bounds, and :meth:`BaseNetwork.walk`,
which evaluates the chains in order and combines their values the way the network does.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np

from .errors import InputError
from .layers import Affine, Elementwise, Layer, Scale, Softmax


class BaseNetwork(ABC):
    """A translated network ``y = net(x)`` on columns: ``n_in`` inputs, a ``name``, and
    ``layers``, every layer in evaluation order."""

    n_in: int
    name: str
    layers: list[Layer]

    @property
    @abstractmethod
    def n_out(self) -> int:
        """Outputs of the network."""

    @property
    @abstractmethod
    def n_params(self) -> int:
        """Trained weights and biases."""

    @abstractmethod
    def numpy(self, x: np.ndarray) -> np.ndarray:
        """Forward pass in float64 on a vector (n_in,) or a matrix (n_in, batch)."""

    @abstractmethod
    def casadi(self, x):
        """One nested CasADi expression of the whole network (the reduced space)."""

    @abstractmethod
    def interval(self, lo, hi):
        """Interval bounds of the intermediate values for inputs in ``[lo, hi]``."""

    @abstractmethod
    def walk(self, value, chain, total, stack):
        r"""The output for ``value`` at the input, computed chain by chain: ``chain(network, value)``
        for a chain of layers (a :class:`Network`), ``total(values, node)`` for
        :math:`c_0 + \sum_i c_i v_i` (:meth:`nncas.graph.Node.total`) and ``stack(values)`` for
        a concatenation."""

    def is_mlp(self) -> bool:
        """Affine layers and elementwise activations only, with an optional (log-)softmax head."""
        return False

    def __str__(self):
        return f"{self.name}: {self.n_in} -> {self.n_out}, {self.n_params:,} parameters"


@dataclass
class Network(BaseNetwork):
    """Layers applied in order to a column vector of ``n_in`` inputs.

    Sizes of activations are resolved from the layer before them, so every layer of
    ``layers`` has concrete ``n_in`` and ``n_out`` after construction.
    """

    layers: list[Layer]
    n_in: int
    name: str = "net"

    def __post_init__(self):
        size, sized = self.n_in, []
        for index, layer in enumerate(self.layers):
            layer = layer.with_size(size)
            if layer.n_in != size:
                raise InputError(
                    f"{self.name}: layer {index} ({type(layer).__name__}) expects {layer.n_in} "
                    f"inputs but the layer before it gives {size}.")
            sized.append(layer)
            size = layer.n_out
        self.layers = sized
        if self.n_out < 1:
            raise InputError(f"{self.name} has no outputs; a network to embed needs at least one.")

    @property
    def n_out(self) -> int:
        return self.layers[-1].n_out if self.layers else self.n_in

    @property
    def n_params(self) -> int:
        """Number of trained weights and biases in the affine layers."""
        return sum(l.n_params for l in self.layers if isinstance(l, Affine))

    def numpy(self, x: np.ndarray) -> np.ndarray:
        for layer in self.layers:
            x = layer.numpy(x)
        return x

    def casadi(self, x):
        for layer in self.layers:
            x = layer.casadi(x)
        return x

    def interval(self, lo, hi) -> list[tuple[np.ndarray, np.ndarray]]:
        """Interval bounds of every layer's output (a list, by layer) for inputs in ``[lo, hi]``."""
        bounds = []
        for layer in self.layers:
            lo, hi = layer.interval(lo, hi)
            bounds.append((lo, hi))
        return bounds

    def walk(self, value, chain, total, stack):
        """A chain is one chain: ``chain(self, value)``."""
        return chain(self, value)

    def is_mlp(self) -> bool:
        body = self.layers[:-1] if self.layers and isinstance(self.layers[-1], Softmax) else self.layers
        return all(isinstance(l, (Affine, Scale, Elementwise)) for l in body)

    def __str__(self):
        lines = [super().__str__()]
        for i, layer in enumerate(self.layers):
            lines.append(f"  [{i}] {type(layer).__name__:<11} {layer.n_in:>6} -> {layer.n_out:<6}")
        return "\n".join(lines)
