"""The six MNIST classifiers of the paper's Table 1, and a small CNN ("width" ``"cnn"``).

NN(x) = softmax(W_6 s(W_5 s(... s(W_1 x + b_1) ...) + b_5) + b_6), x in [0, 1]^784, with
W_1: h x 784, W_2..W_5: h x h, W_6: 10 x h and s = tanh (h <= 4096) or sigmoid (h = 8192).
Parameters: 785 h + 4 h (h + 1) + 10 (h + 1); 167,818 for h = 128.

The CNN takes the same 784-vector (it unflattens it to 1 x 28 x 28 itself): two 5x5 tanh
convolutions (8 and 16 channels, padding 2), each followed by 2x2 average pooling, then
Linear(784, 64), tanh, Linear(64, 10), softmax; 54,314 parameters. Smooth and pooling by
averages, so every formulation embeds it exactly.
"""
from torch import nn

N_INPUTS = 784
N_CLASSES = 10
N_HIDDEN_TO_HIDDEN = 4
ACTIVATIONS = {"tanh": nn.Tanh, "sigmoid": nn.Sigmoid}
CNN = "cnn"
# hidden width -> activation (paper Table 1), and the CNN
WIDTHS = {128: "tanh", 512: "tanh", 1024: "tanh", 2048: "tanh", 4096: "tanh", 8192: "sigmoid", CNN: "tanh"}


def check_width(width):
    """Raise ValueError unless ``width`` is one of the Table 1 widths or ``"cnn"``."""
    if width not in WIDTHS:
        raise ValueError(f"width {width} is not offered; choose one of {', '.join(map(str, WIDTHS))} "
                         f"(paper Table 1, and the CNN).")
    return width


def parse_width(text: str):
    """A command-line width: an integer, or ``cnn``."""
    return CNN if text == CNN else int(text)


def build_cnn(activation="tanh"):
    """The CNN of the module docstring, taking (N, 784) rows."""
    act = ACTIVATIONS[activation]
    return nn.Sequential(
        nn.Unflatten(1, (1, 28, 28)),
        nn.Conv2d(1, 8, 5, padding=2), act(), nn.AvgPool2d(2),
        nn.Conv2d(8, 16, 5, padding=2), act(), nn.AvgPool2d(2),
        nn.Flatten(), nn.Linear(16 * 7 * 7, 64), act(), nn.Linear(64, N_CLASSES), nn.Softmax(dim=-1))


def build_classifier(width, activation=None):
    """``nn.Sequential``: Linear(784, h), 4 x [act, Linear(h, h)], act, Linear(h, 10), Softmax;
    the CNN for width ``"cnn"``."""
    activation = activation or WIDTHS[check_width(width)]
    if width == CNN:
        return build_cnn(activation)
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
