"""The six MNIST classifiers of the paper's Table 1.

NN(x) = softmax(W_6 s(W_5 s(... s(W_1 x + b_1) ...) + b_5) + b_6), x in [0, 1]^784, with
W_1: h x 784, W_2..W_5: h x h, W_6: 10 x h and s = tanh (h <= 4096) or sigmoid (h = 8192).
Parameters: 785 h + 4 h (h + 1) + 10 (h + 1); 167,818 for h = 128.
"""
from torch import nn

N_INPUTS = 784
N_CLASSES = 10
N_HIDDEN_TO_HIDDEN = 4
ACTIVATIONS = {"tanh": nn.Tanh, "sigmoid": nn.Sigmoid}
# hidden width -> activation (paper Table 1)
WIDTHS = {128: "tanh", 512: "tanh", 1024: "tanh", 2048: "tanh", 4096: "tanh", 8192: "sigmoid"}


def check_width(width):
    """Raise ValueError unless ``width`` is one of the Table 1 widths."""
    if width not in WIDTHS:
        raise ValueError(f"width {width} is not offered; choose one of {', '.join(map(str, WIDTHS))} "
                         f"(paper Table 1).")
    return width


def build_classifier(width, activation=None):
    """``nn.Sequential``: Linear(784, h), 4 x [act, Linear(h, h)], act, Linear(h, 10), Softmax."""
    activation = activation or WIDTHS[check_width(width)]
    act = ACTIVATIONS[activation]
    layers = [nn.Linear(N_INPUTS, width)]
    for _ in range(N_HIDDEN_TO_HIDDEN):
        layers += [act(), nn.Linear(width, width)]
    layers += [act(), nn.Linear(width, N_CLASSES), nn.Softmax(dim=-1)]
    return nn.Sequential(*layers)


def logits(net):
    """The classifier without its Softmax (shares parameters): train with cross-entropy on it."""
    return net[:-1]


def n_parameters(net):
    return sum(p.numel() for p in net.parameters())
