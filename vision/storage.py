"""Trained classifiers in HDF5: weights plus metadata, written atomically (temp file + os.replace).

Layout: ``/state/<name>`` one dataset per ``state_dict`` entry (e.g. ``0.weight``: h x 784);
file attributes ``format``, ``width``, ``activation``, ``n_parameters``, ``test_accuracy``,
``data_digest`` (SHA-256 of the MNIST payloads), ``seed``, ``epochs``, ``batch_size``, ``lr``,
``torch_version``.
"""
from pathlib import Path

from nncas.apps.storage import read_weights, save_weights
from nncas.cache import cache_root
from vision.models import ACTIVATIONS, CNN, WIDTHS, build_classifier, check_width

FORMAT = "nncas-mnist-classifier/1"


def default_path(width):
    """``<cache>/vision/mnist_<activation>_<width>.h5``."""
    return cache_root() / "vision" / f"mnist_{WIDTHS[check_width(width)]}_{width}.h5"


def save_classifier(path, net, meta):
    """Write ``net``'s weights and ``meta`` (str/int/float values) to ``path`` atomically."""
    save_weights(path, net, meta, FORMAT)


def load_classifier(path):
    """Rebuild the torch classifier stored at ``path``; returns ``(net, meta)``."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no trained classifier at {path}; train one with "
                                f"`python -m vision.train --width W --out {path}`.")
    state, meta = read_weights(path, FORMAT, "classifier")
    if meta.get("activation") not in ACTIVATIONS:
        raise ValueError(f"{path}: activation {meta.get('activation')!r}; expected one of {sorted(ACTIVATIONS)}.")
    width = meta["width"] if meta["width"] == CNN else int(meta["width"])
    net = build_classifier(width, meta["activation"])
    net.load_state_dict(state)
    net.eval()
    return net, meta
