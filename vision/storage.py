"""Trained classifiers in HDF5: weights plus metadata, written atomically (temp file + os.replace).

Layout: ``/state/<name>`` one dataset per ``state_dict`` entry (e.g. ``0.weight``: h x 784);
file attributes ``format``, ``width``, ``activation``, ``n_parameters``, ``test_accuracy``,
``data_digest`` (SHA-256 of the MNIST payloads), ``seed``, ``epochs``, ``batch_size``, ``lr``,
``torch_version``.
"""
import os
import tempfile
from pathlib import Path

import h5py
import numpy as np
import torch

from nncas.cache import cache_root
from vision.models import ACTIVATIONS, WIDTHS, build_classifier, check_width, n_parameters

FORMAT = "nncas-mnist-classifier/1"


def default_path(width):
    """``<cache>/vision/mnist_<activation>_<width>.h5``."""
    return cache_root() / "vision" / f"mnist_{WIDTHS[check_width(width)]}_{width}.h5"


def save_classifier(path, net, meta):
    """Write ``net``'s weights and ``meta`` (str/int/float values) to ``path`` atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    os.chmod(tmp, 0o644)
    try:
        with h5py.File(tmp, "w") as f:
            f.attrs["format"] = FORMAT
            f.attrs["n_parameters"] = n_parameters(net)
            f.attrs["torch_version"] = str(torch.__version__)
            for key, value in meta.items():
                f.attrs[key] = value
            for name, tensor in net.state_dict().items():
                f.create_dataset(f"state/{name}", data=tensor.detach().cpu().numpy())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_classifier(path):
    """Rebuild the torch classifier stored at ``path``; returns ``(net, meta)``."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no trained classifier at {path}; train one with "
                                f"`python -m vision.train --width W --out {path}`.")
    try:
        with h5py.File(path, "r") as f:
            meta = {key: (value.item() if isinstance(value, np.generic) else value)
                    for key, value in f.attrs.items()}
            state = {name: torch.from_numpy(f["state"][name][()]) for name in f["state"]}
    except (OSError, KeyError) as err:
        raise ValueError(f"{path} is not a readable classifier file ({err}).") from err
    if meta.get("format") != FORMAT or meta.get("activation") not in ACTIVATIONS:
        raise ValueError(f"{path}: format {meta.get('format')!r}, activation {meta.get('activation')!r}; "
                         f"expected {FORMAT!r} with one of {sorted(ACTIVATIONS)}.")
    net = build_classifier(int(meta["width"]), meta["activation"])
    net.load_state_dict(state)
    net.eval()
    return net, meta
