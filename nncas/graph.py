r"""Networks beyond chains: residual sums, scalings and concatenations of chains, from torch.fx.

A :class:`GraphNetwork` is a list of nodes in evaluation order. A ``chain`` node applies a list
of nncas layers to one input (every module nncas translates, convolutions included); a ``sum``
node forms :math:`\sum_i c_i v_i + c_0` of its inputs (residual connections, ``-``, scaling by a
constant); a ``cat`` node stacks its inputs (``torch.cat`` along the feature or channel axis, which
in torch's C order is stacking the vectors). The same nodes evaluate in numpy and CasADi and
propagate interval bounds, so every formulation applies: the reduced space evaluates the graph as
one expression, the full space adds each chain's variables and constraints and passes sums and
concatenations on as expressions.
"""
from __future__ import annotations

import math
import operator
from dataclasses import dataclass, field

import casadi as ca
import numpy as np
import scipy.sparse
import torch
import torch.nn.functional as F

from . import layers as L
from .errors import InputError, UnsupportedLayerError
from .network import BaseNetwork, Network


@dataclass
class Node:
    """``kind`` is "input", "chain", "sum" or "cat"; ``inputs`` names earlier nodes."""

    name: str
    kind: str
    inputs: list[str] = field(default_factory=list)
    chain: Network | None = None  # a chain node's layers, as a Network on its input size
    coefficients: list[float] = field(default_factory=list)  # a sum node's c_i
    constant: float = 0.0  # a sum node's c_0
    shape: tuple = ()

    def total(self, values):
        r"""A sum node's :math:`c_0 + \sum_i c_i v_i` (numpy arrays or CasADi expressions)."""
        out = self.constant
        for c, v in zip(self.coefficients, values):
            out = out + c * v
        return out

    def total_interval(self, boxes):
        r"""Bounds of :meth:`total` for :math:`v_i \in [l_i, h_i]`: :math:`c_0 + \sum_i \min/\max(c_i l_i, c_i h_i)`."""
        lo, hi = np.full(boxes[0][0].shape, self.constant), np.full(boxes[0][0].shape, self.constant)
        for c, (l, h) in zip(self.coefficients, boxes):
            lo = lo + np.minimum(c * l, c * h)
            hi = hi + np.maximum(c * l, c * h)
        return lo, hi


def stack_interval(boxes):
    """Bounds of a concatenation: the inputs' bounds stacked."""
    return np.concatenate([b[0] for b in boxes]), np.concatenate([b[1] for b in boxes])


@dataclass
class GraphNetwork(BaseNetwork):
    """Nodes in evaluation order; the last one is the output."""

    nodes: list[Node]
    n_in: int
    name: str = "graph"

    @property
    def n_out(self) -> int:
        return math.prod(self.nodes[-1].shape)

    @property
    def layers(self) -> list:
        """Every chain's layers, in evaluation order."""
        return [layer for node in self.nodes if node.kind == "chain" for layer in node.chain.layers]

    @property
    def n_params(self) -> int:
        return sum(node.chain.n_params for node in self.nodes if node.kind == "chain")

    def values(self, x, chain, total, stack) -> dict:
        """Every node's value (by name) for input ``x``: ``chain(network, value)``,
        ``total(values, node)`` and ``stack(values)`` say how each kind of node computes."""
        values = {}
        for node in self.nodes:
            args = [values[name] for name in node.inputs]
            if node.kind == "input":
                values[node.name] = x
            elif node.kind == "chain":
                values[node.name] = chain(node.chain, args[0])
            elif node.kind == "sum":
                values[node.name] = total(args, node)
            else:
                values[node.name] = stack(args)
        return values

    def walk(self, value, chain, total, stack):
        return self.values(value, chain, total, stack)[self.nodes[-1].name]

    def numpy(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=float)
        out = self.walk(x.reshape(x.shape[0], -1), lambda net, v: net.numpy(v), lambda vs, node: node.total(vs),
                        lambda vs: np.concatenate(vs, axis=0))
        return out.reshape(-1) if x.ndim == 1 else out

    def casadi(self, x):
        return self.walk(x, lambda net, v: net.casadi(v), lambda vs, node: node.total(vs), lambda vs: ca.vertcat(*vs))

    def interval(self, lo, hi) -> dict:
        """Bounds of every node's output (a dict, by node name) for inputs in ``[lo, hi]``."""

        def chain(net, box):
            return net.interval(*box)[-1] if net.layers else box

        return self.values((np.asarray(lo, float), np.asarray(hi, float)), chain,
                           lambda boxes, node: node.total_interval(boxes), stack_interval)

    def __str__(self):
        lines = [f"{super().__str__()}, graph of {len(self.nodes)} nodes"]
        for node in self.nodes:
            what = (", ".join(type(l).__name__ for l in node.chain.layers) if node.kind == "chain" else node.kind)
            lines.append(f"  {node.name:<16} {what:<40} <- {', '.join(node.inputs)}")
        return "\n".join(lines)


#: torch functions and methods that are elementwise activations, as nncas layers
_ACTIVATIONS = {
    torch.tanh: L.Tanh, torch.sigmoid: L.Sigmoid, torch.relu: L.ReLU, F.relu: L.ReLU, F.silu: L.SiLU,
    F.softplus: L.Softplus, F.gelu: L.GELU, F.elu: L.ELU, F.leaky_relu: L.LeakyReLU,
    torch.nn.functional.tanh: L.Tanh, torch.nn.functional.sigmoid: L.Sigmoid,
    "tanh": L.Tanh, "sigmoid": L.Sigmoid, "relu": L.ReLU,
}


def from_fx(module: torch.nn.Module, shape: tuple, translate, name: str) -> GraphNetwork:
    """Trace ``module`` with torch.fx into a :class:`GraphNetwork` for inputs of ``shape``;
    ``translate(submodule, shape) -> (layers, shape)`` translates the modules it calls."""
    try:
        traced = torch.fx.symbolic_trace(module)
    except Exception as err:  # tracing fails in many ways on data-dependent Python code
        raise UnsupportedLayerError(
            f"nncas cannot trace {type(module).__name__} with torch.fx ({type(err).__name__}: {err}); "
            "embed it with formulation='graybox', which runs any differentiable torch model.") from err
    nodes, shapes, batch = [], {}, set()

    def refuse(node, why, remedy=GRAYBOX_REMEDY):
        raise UnsupportedLayerError(
            f"{type(module).__name__}: node {node.name} ({node.op} {getattr(node.target, '__name__', node.target)}) "
            f"{why}; {remedy}.")

    def chain(node, source, layers, out_shape):
        size = math.prod(shapes[source])
        nodes.append(Node(node.name, "chain", [source], Network(layers, size, name=node.name), shape=out_shape))
        shapes[node.name] = out_shape

    for node in traced.graph.nodes:
        if _in_place(node, traced) and len(node.args[0].users) > 1:
            refuse(node, f"changes its input {node.args[0].name} in place while other operations also read it, "
                         "which a traced graph cannot reproduce; use the out-of-place form (inplace=False, x = x + ...)")
        if node.op == "placeholder":
            if nodes:
                refuse(node, "is a second input; nncas embeds networks of one input")
            nodes.append(Node(node.name, "input", shape=shape))
            shapes[node.name] = shape
        elif node.op == "call_module":
            source = _single_input(node, refuse)
            layers, out_shape = translate(traced.get_submodule(node.target), shapes[source])
            chain(node, source, layers, out_shape)
        elif _batch_size(node, batch):
            batch.add(node.name)
        elif node.op == "call_method" and node.target in ("view", "reshape"):
            _reshape_node(node, shapes, batch, chain, refuse)
        elif node.op == "call_function" and node.target is operator.getitem:
            _index_node(node, shapes, chain, refuse)
        elif node.op in ("call_function", "call_method"):
            _function_node(node, shapes, nodes, chain, refuse)
        elif node.op == "output":
            result = node.args[0]
            if not isinstance(result, torch.fx.Node):
                kind = next((t.__name__ for t in (dict, list, tuple) if isinstance(result, t)), type(result).__name__)
                refuse(node, f"returns a {kind}, not one tensor", CONTAINER_REMEDY)
            if result.name != nodes[-1].name:  # the output is an earlier node: pass it on
                chain(node, result.name, [], shapes[result.name])
        else:
            refuse(node, "uses module attributes directly (get_attr); wrap them in modules")
    return GraphNetwork(nodes, math.prod(shape), name=name)


GRAYBOX_REMEDY = "embed the model with formulation='graybox', which runs any differentiable torch model"
#: for models whose input or output is a container: no formulation embeds those as they are
CONTAINER_REMEDY = ("nncas gives a model one tensor and takes one tensor back, in every formulation; wrap the "
                    "model in a module whose forward takes and returns a tensor")


def _in_place(node, traced) -> bool:
    """A module with ``inplace=True``, a function called with ``inplace=True`` or a tensor method
    such as ``add_``: it overwrites its first argument."""
    if not node.args or not isinstance(node.args[0], torch.fx.Node):
        return False
    if node.op == "call_module":
        return bool(getattr(traced.get_submodule(node.target), "inplace", False))
    if node.op == "call_function":
        return bool(node.kwargs.get("inplace", False))
    return node.op == "call_method" and node.target.endswith("_") and not node.target.startswith("_")


def _batch_size(node, batch: set) -> bool:
    """``x.size(0)``, ``x.shape``, ``x.shape[0]``: the batch size (or its way there), which only
    ``view``/``reshape`` may use."""
    if node.op == "call_method" and node.target == "size":
        return len(node.args) > 1 and node.args[1] == 0
    if node.op == "call_function" and node.target is getattr:
        return node.args[1] == "shape"
    if node.op == "call_function" and node.target is operator.getitem:
        return isinstance(node.args[0], torch.fx.Node) and node.args[0].name in batch and node.args[1] == 0
    return False


def _reshape_node(node, shapes, batch, chain, refuse) -> None:
    """``x.view(batch, -1)``, ``x.reshape(-1, c, h, w)`` and the like: the batch axis stays, the
    rest takes any shape of the same size. x's column is C-ordered, so nothing is computed."""
    source, sizes = node.args[0], list(node.args[1:])
    if len(sizes) == 1 and isinstance(sizes[0], (tuple, list)):
        sizes = list(sizes[0])
    n = math.prod(shapes[source.name])
    leading = sizes[0] if sizes else None
    keeps_batch = (isinstance(leading, torch.fx.Node) and leading.name in batch) or leading == -1
    rest = sizes[1:]
    if not keeps_batch or not rest or any(not isinstance(d, int) for d in rest) or rest.count(-1) > 1:
        refuse(node, f"reshapes to {sizes}; nncas embeds reshapes that keep the batch axis first "
                     "(x.view(x.size(0), -1), x.reshape(-1, c, h, w))")
    known = math.prod(d for d in rest if d != -1)
    out_shape = tuple(n // known if d == -1 else d for d in rest)
    if math.prod(out_shape) != n:
        refuse(node, f"reshapes {n} entries per sample to {sizes}")
    chain(node, source.name, [], out_shape)


def _index_node(node, shapes, chain, refuse) -> None:
    """``x[:, 2:5]``, ``x[..., ::2]``, ``x[:, 0]``: basic indexing that keeps the batch axis, as
    a 0/1 selection matrix (an :class:`~nncas.layers.Affine` without trained weights)."""
    source, index = node.args
    if isinstance(index, str):
        refuse(node, f"reads the entry {index!r} of a dict", CONTAINER_REMEDY)
    index = index if isinstance(index, tuple) else (index,)
    basic = all(isinstance(i, (int, slice)) or i is Ellipsis for i in index)
    computed = any(isinstance(v, torch.fx.Node)
                   for i in index if isinstance(i, slice) for v in (i.start, i.stop, i.step))
    if not basic or computed:
        refuse(node, "indexes with lists, tensors or computed bounds; nncas embeds constant slices and integers")
    if index and index[0] is Ellipsis:
        per_sample = index
    elif index and index[0] == slice(None):
        per_sample = index[1:]
    else:
        refuse(node, "indexes the batch axis; keep it whole (x[:, ...])")
    size = math.prod(shapes[source.name])
    positions = np.arange(size).reshape(shapes[source.name])[per_sample]
    picked = np.reshape(positions, -1)
    selection = scipy.sparse.csr_matrix((np.ones(picked.size), (np.arange(picked.size), picked)),
                                        shape=(picked.size, size))
    chain(node, source.name, [L.Affine(selection, np.zeros(picked.size), parameters=0)],
          tuple(np.shape(positions)) or (1,))


def _single_input(node, refuse) -> str:
    if len(node.args) != 1 or node.kwargs or not isinstance(node.args[0], torch.fx.Node):
        refuse(node, "takes other than one tensor")
    return node.args[0].name


def _function_node(node, shapes, nodes, chain, refuse) -> None:
    target, args = node.target, node.args
    activation = _ACTIVATIONS.get(target)
    if activation is not None:
        source = args[0].name if args and isinstance(args[0], torch.fx.Node) else refuse(node, "has no tensor input")
        extra = {k: v for k, v in node.kwargs.items() if k != "inplace"}
        if len(args) > 1 or (extra and target not in (F.leaky_relu, F.softplus, F.elu, F.gelu)):
            refuse(node, "has options nncas does not read")
        layer = activation(**extra)
        chain(node, source, [layer], shapes[source])
    elif target in (F.softmax, F.log_softmax, torch.softmax, torch.log_softmax, "softmax", "log_softmax"):
        dim = node.kwargs.get("dim", args[1] if len(args) > 1 else None)
        source = args[0].name
        if dim not in (-1, 1) or len(shapes[source]) != 1:
            refuse(node, "normalizes over other than the features of a vector")
        log = target in (F.log_softmax, torch.log_softmax, "log_softmax")
        chain(node, source, [L.LogSoftmax() if log else L.Softmax()], shapes[source])
    elif target in (operator.add, operator.sub, torch.add, torch.sub, operator.mul, operator.truediv,
                    operator.neg, torch.mul):
        _sum_node(node, shapes, nodes, refuse)
    elif target in (torch.cat, torch.concat):
        tensors = args[0]
        dim = node.kwargs.get("dim", args[1] if len(args) > 1 else 0)
        if dim not in (1, -len(shapes[tensors[0].name])) or any(not isinstance(t, torch.fx.Node) for t in tensors):
            refuse(node, "concatenates along other than the feature or channel axis")
        parts = [shapes[t.name] for t in tensors]
        if any(p[1:] != parts[0][1:] for p in parts):
            refuse(node, f"concatenates tensors of shapes {parts}")
        nodes.append(Node(node.name, "cat", [t.name for t in tensors], shape=(sum(p[0] for p in parts), *parts[0][1:])))
        shapes[node.name] = nodes[-1].shape
    elif target in (torch.flatten, "flatten"):
        start = node.kwargs.get("start_dim", args[1] if len(args) > 1 else (0 if target is torch.flatten else 0))
        if start != 1:
            refuse(node, "flattens other than from axis 1 (the batch stays); use nn.Flatten()")
        chain(node, args[0].name, [], (math.prod(shapes[args[0].name]),))
    else:
        refuse(node, "is an operation nncas does not translate")


def _sum_node(node, shapes, nodes, refuse) -> None:
    """c_1 a + c_2 b + c_0 from +, -, * and / with constants, and unary minus."""
    target, args = node.target, node.args
    terms = [a for a in args if isinstance(a, torch.fx.Node)]
    numbers = [a for a in args if isinstance(a, (int, float))]
    if len(terms) + len(numbers) != len(args) or node.kwargs or not terms:
        refuse(node, "combines tensors with other than constants")
    if target is operator.neg:
        coefficients, constant = [-1.0], 0.0
    elif target in (operator.add, torch.add, operator.sub, torch.sub):
        sign = -1.0 if target in (operator.sub, torch.sub) else 1.0
        if len(terms) == 2:
            coefficients, constant = [1.0, sign], 0.0
        else:
            first_is_tensor = isinstance(args[0], torch.fx.Node)
            coefficients = [1.0 if first_is_tensor else sign]
            constant = sign * numbers[0] if first_is_tensor else numbers[0]
    elif len(terms) == 1 and numbers:
        factor = float(numbers[0])
        if target is operator.truediv:
            if not isinstance(args[1], (int, float)) or factor == 0:
                refuse(node, "divides by a tensor or by zero")
            factor = 1.0 / factor
        coefficients, constant = [factor], 0.0
    else:
        refuse(node, "multiplies two tensors")
    if len(terms) == 2 and shapes[terms[0].name] != shapes[terms[1].name]:
        raise InputError(f"node {node.name} adds tensors of shapes {shapes[terms[0].name]} and "
                         f"{shapes[terms[1].name]}; nncas does not broadcast.")
    nodes.append(Node(node.name, "sum", [t.name for t in terms], coefficients=coefficients,
                      constant=float(constant), shape=shapes[terms[0].name]))
    shapes[node.name] = shapes[terms[0].name]
