r"""Frequency surrogates: ``python -m power.surrogate --data D --width W --out M.h5``.

The paper's Table 1 networks (SCOPF rows): tanh MLPs from 117 inputs to 37 outputs,

    NN(x) = s_y \odot (W_L tanh(... tanh(W_1 (x - m_x) / s_x + b_1) ...) + b_L) + m_y,

with L - 1 hidden layers of width h: (h, hidden layers, parameters) = (100, 1, 15,537),
(500, 3, 578,537), (1000, 5, 4,159,037), (2000, 18, 68,344,037), (4000, 38, 592,768,037).
The input and output scalings (m, s: training-set means and standard deviations, s = 1 for
constant columns) are ``nncas.AffineScaling`` layers, so the stored network maps MW/MVAr
straight to Hz and embeds as it is.

Training minimises the mean squared error of the scaled outputs with full-batch Adam on a
seeded 80/20 split of the samples (the paper trains on all 110 of its samples; we keep 20%
aside to report a validation error). The paper stops once the training loss has stayed below
0.01 for 1,000 consecutive epochs; in Hz^2 that holds from the start (the authors' outputs
vary by 0.0035 Hz^2, so predicting their mean meets it), so the rule here reads the scaled
loss, the fraction of the outputs' variance left unexplained (``patience``).

Recipes (``recipe(width)``): widths up to 1000 train 3000 epochs at rate 1e-3 (their loss stays
below 0.01 long before the end); the deep ones (18 and 38 hidden layers) at rate 1e-3 never
start learning (scaled loss 0.998 after 300 epochs at width 2000), so they train at 1e-4 until
the paper's rule holds, at most 3000 epochs; the widest in float32 (in float64 its weights,
gradients and Adam state alone are 19 GB; the float32 run here peaked at 19.1 GB with Adam's
temporaries). Measured at width 2000, 100 epochs: rate 1e-4 reaches a scaled loss 0.003 and
validation 0.008 (from a standardized initialisation as in ``vision.train``: training 5e-6,
validation 0.31).  A checkpoint
(``<out>.ckpt.pt``, written atomically) is saved every ``--checkpoint-every`` epochs and resumed
from; the finished model goes to HDF5 with its metadata (layout in :func:`save_surrogate`).

Data (``--data``): an HDF5 file from ``python -m power.sample``, or a folder holding the
authors' ``10_10_gen_load_input_v2.pt`` (110 x 117) and ``10_10_freq_output_v2.pt``
(110 x 37, Hz).
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from nncas import AffineScaling
from nncas.apps.checks import learning_rate, whole_number
from nncas.apps.progress import Progress
from nncas.apps.cli import BAD_INPUT, ArgumentParser, fail, interrupted, run_main
from nncas.apps.storage import check_output_path, read_weights, save_weights, torch_save_atomic
from nncas.devices import resolve_device
from power.sample import read_samples

FORMAT = "nncas-frequency-surrogate/1"
HIDDEN_LAYERS = {100: 1, 500: 3, 1000: 5, 2000: 18, 4000: 38}  # paper Table 1, SCOPF rows
AUTHORS_FILES = ("10_10_gen_load_input_v2.pt", "10_10_freq_output_v2.pt")
AUTHORS_GENERATORS, AUTHORS_LOADS = 45, 27  # Hawaii 37: 45 Pg, 45 Qg, 27 Pd inputs
DEFAULTS = {"epochs": 3000, "lr": 1e-3, "seed": 0, "validation": 0.2, "patience": None, "dtype": "float64"}
#: the deep networks' settings (module docstring)
RECIPES = {2000: {"lr": 1e-4, "patience": 1000}, 4000: {"lr": 1e-4, "patience": 1000, "dtype": "float32"}}
#: training precisions; the stored network is float64 whatever it trained in
DTYPES = {"float64": torch.float64, "float32": torch.float32}
#: the paper's bound on the training loss, here on the scaled loss (module docstring)
TARGET_LOSS = 0.01
#: kinds of surrogate inputs, the prefixes of power.sample's column names
INPUT_KINDS = ("pg", "qg", "pd")


def recipe(width: int) -> dict:
    """The training settings used for ``width`` unless overridden (module docstring)."""
    return {**DEFAULTS, **RECIPES.get(check_width(width), {})}


def check_width(width: int) -> int:
    if width not in HIDDEN_LAYERS:
        raise ValueError(f"width {width} is not a paper width; choose one of {list(HIDDEN_LAYERS)}.")
    return width


def build_surrogate(n_in: int, n_out: int, width: int, hidden_layers: int | None = None,
                    scaling=None, ignored=None) -> nn.Sequential:
    """AffineScaling, Linear(n_in, h), [Tanh, Linear(h, h)] x (L - 2), Tanh, Linear(h, n_out),
    AffineScaling (float64).  ``scaling`` = (m_x, s_x, m_y, s_y); identity when None.  Input
    columns where the boolean mask ``ignored`` is set get scale and offset 0: the network does
    not depend on them (same shape and parameter count)."""
    hidden = HIDDEN_LAYERS[check_width(width)] if hidden_layers is None else hidden_layers
    m_x, s_x, m_y, s_y = scaling or (np.zeros(n_in), np.ones(n_in), np.zeros(n_out), np.ones(n_out))
    scale_x, offset_x = 1 / s_x, -m_x / s_x
    if ignored is not None:
        scale_x, offset_x = np.where(ignored, 0.0, scale_x), np.where(ignored, 0.0, offset_x)
    layers: list[nn.Module] = [AffineScaling(scale_x, offset_x), nn.Linear(n_in, width)]
    for _ in range(hidden - 1):
        layers += [nn.Tanh(), nn.Linear(width, width)]
    layers += [nn.Tanh(), nn.Linear(width, n_out), AffineScaling(s_y, m_y)]
    return nn.Sequential(*layers).double()


def n_parameters(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


def load_data(path: str | Path) -> dict:
    """``inputs`` (N x n_in), ``outputs`` (N x n_out, Hz), ``source`` and ``digest`` (SHA-256 of
    the arrays) from a sample file or the authors' folder; malformed data is refused naming the
    file and the field."""
    path = Path(path)
    if path.is_dir():
        files = [path / name for name in AUTHORS_FILES]
        missing = [str(f) for f in files if not f.is_file()]
        if missing:
            raise ValueError(f"{path} is a folder but lacks {', '.join(missing)}; give the folder with "
                             "the authors' .pt files or an HDF5 file from `python -m power.sample`.")
        arrays = []
        for f in files:
            try:
                tensor = torch.load(f, weights_only=True)
            except Exception as err:  # torch raises many kinds for a file that is no tensor file
                raise ValueError(f"{f}: not a readable torch tensor file ({type(err).__name__}).") from err
            if not isinstance(tensor, torch.Tensor):
                raise ValueError(f"{f}: holds a {type(tensor).__name__}, not a tensor of samples.")
            arrays.append(tensor.to(torch.float64).numpy())
        x, y = arrays
        source = "authors"
        names = _authors_input_names(x.shape[1]) if x.ndim == 2 else None
    else:
        samples = read_samples(path)
        x, y, source = samples["inputs"], samples["outputs"], "power.sample"
        if "input_names" not in samples["attrs"]:
            raise ValueError(f"{path}: the attribute input_names is missing; make the file with "
                             "`python -m power.sample`.")
        names = json.loads(samples["attrs"]["input_names"])
    for field, a in (("inputs", x), ("outputs", y)):
        if not np.issubdtype(np.asarray(a).dtype, np.number):
            raise ValueError(f"{path}: {field} hold {np.asarray(a).dtype}, not numbers.")
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if x.ndim != 2 or y.ndim != 2 or len(x) != len(y) or len(x) < 5:
        raise ValueError(f"{path}: need matching 2-D inputs and outputs with at least 5 rows, "
                         f"got {x.shape} and {y.shape}.")
    if names is not None and len(names) != x.shape[1]:
        raise ValueError(f"{path}: input_names lists {len(names)} names for {x.shape[1]} input columns.")
    for field, a in (("inputs", x), ("outputs", y)):
        bad = np.flatnonzero(~np.isfinite(a).all(axis=1))
        if bad.size:
            raise ValueError(f"{path}: the {field} of {bad.size} sample(s), the first sample {bad[0]}, hold NaN or "
                             "Inf; remove those samples.")
    digest = hashlib.sha256(np.ascontiguousarray(x).tobytes() + np.ascontiguousarray(y).tobytes())
    return {"inputs": x, "outputs": y, "source": source, "path": path.name, "digest": digest.hexdigest(),
            "input_names": names}


def _authors_input_names(n_inputs: int) -> list[str] | None:
    """Column names of the authors' Hawaii 37 inputs: Pg of 45 generators, Qg of the same 45,
    Pd of 27 loads, each sorted by bus (the paper's layout); None for another width."""
    if n_inputs != 2 * AUTHORS_GENERATORS + AUTHORS_LOADS:
        return None
    return ([f"pg_mw[{k}]" for k in range(AUTHORS_GENERATORS)] + [f"qg_mvar[{k}]" for k in range(AUTHORS_GENERATORS)]
            + [f"pd_mw[{k}]" for k in range(AUTHORS_LOADS)])


def ignored_columns(data: dict, kinds) -> np.ndarray:
    """Boolean mask of the input columns of the given kinds (``"pg"``, ``"qg"``, ``"pd"``),
    found by the column names that ``power.sample`` records."""
    unknown = sorted(set(kinds) - set(INPUT_KINDS))
    if unknown:
        raise ValueError(f"cannot ignore inputs {unknown}; choose among {list(INPUT_KINDS)}.")
    names = data.get("input_names")
    if names is None:
        if kinds:
            raise ValueError(f"{data['path']} names no input columns; ignoring inputs needs a sample "
                             "file from `python -m power.sample` or the authors' 117-input files.")
        return np.zeros(data["inputs"].shape[1], dtype=bool)
    return np.array([name.split("_", 1)[0] in kinds for name in names])


def _split(n: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    order = np.random.default_rng(seed).permutation(n)
    n_val = min(n - 1, max(1, int(round(fraction * n))))  # at least one sample on each side
    return np.sort(order[n_val:]), np.sort(order[:n_val])


def _scaling(x: np.ndarray, y: np.ndarray):
    def std(a):
        s = a.std(axis=0)
        return np.where(s > 1e-9 * np.maximum(1.0, np.abs(a).max(axis=0)), s, 1.0)
    return x.mean(axis=0), std(x), y.mean(axis=0), std(y)


def _rmse(net: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    if len(x) == 0:
        return float("nan")
    with torch.no_grad():
        return float(torch.sqrt(torch.mean((net(x) - y) ** 2)))


def check_settings(epochs, lr, validation, checkpoint_every=1, threads=None, patience=None,
                   dtype="float64") -> None:
    """Refuse settings that would train nothing or report NaN, before any work."""
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {', '.join(DTYPES)} (the training precision), got {dtype!r}.")
    whole_number("epochs", epochs)
    if patience is not None:
        whole_number("patience", patience)
    whole_number("checkpoint_every", checkpoint_every)
    if threads is not None:
        whole_number("threads", threads)
    learning_rate("lr", lr)
    if not (isinstance(validation, (int, float)) and 0 < validation < 1):
        raise ValueError(f"validation must be a fraction in (0, 1) (the samples kept aside to check the fit), "
                         f"got {validation!r}.")


def train_surrogate(data: dict, width: int, epochs: int = 3000, lr: float = 1e-3, seed: int = 0,
                    validation: float = 0.2, checkpoint: str | Path | None = None,
                    checkpoint_every: int = 200, log=print, device: str = "cpu",
                    ignore: tuple[str, ...] = (), patience: int | None = None,
                    dtype: str = "float64") -> tuple[nn.Sequential, dict]:
    """Train the width-``width`` surrogate on ``data`` (:func:`load_data`) on ``device``; returns
    ``(net, meta)`` with the network on the CPU. Full-batch Adam, so a run resumed from
    ``checkpoint`` equals an uninterrupted one (on the same device). Inputs of the kinds in
    ``ignore`` (e.g. ``("qg",)``) are zeroed by the input scaling, so the network cannot use them:
    an optimizer then cannot buy frequency on the surrogate by moving them. With ``patience``,
    training stops once the scaled loss has been below :data:`TARGET_LOSS` for that many
    consecutive epochs (the paper's rule), after at most ``epochs``; ``meta["epochs_below_target"]``
    counts the consecutive epochs below it at the end, ``meta["epochs_run"]`` the epochs run.
    ``dtype`` ("float64" or "float32") is the training precision; the network returned is float64."""
    check_settings(epochs, lr, validation, checkpoint_every, patience=patience, dtype=dtype)
    x_all, y_all = data["inputs"], data["outputs"]
    ignored = ignored_columns(data, ignore)
    train, val = _split(len(x_all), validation, seed)
    scaling = _scaling(x_all[train], y_all[train])
    config = {"width": check_width(width), "hidden_layers": HIDDEN_LAYERS[width], "lr": lr, "seed": seed,
              "validation": validation, "data_digest": data["digest"], "epochs": epochs}
    if ignore:  # only then, so that checkpoints made before the option still resume
        config["ignored_inputs"] = ",".join(sorted(set(ignore)))
    if patience is not None:  # likewise
        config["patience"] = patience
    if dtype != "float64":  # likewise
        config["dtype"] = dtype
    torch.manual_seed(seed)
    net = build_surrogate(x_all.shape[1], y_all.shape[1], width, scaling=scaling, ignored=ignored)
    net.to(device, DTYPES[dtype])
    optimizer = _adam(list(net.parameters()), lr)
    start, below = 0, 0
    checkpoint = Path(checkpoint) if checkpoint else None
    if checkpoint is not None and checkpoint.is_file():
        state = torch.load(checkpoint, weights_only=True, map_location=device)
        if state["config"] != config:
            raise ValueError(f"checkpoint {checkpoint} was made with {state['config']}, not {config}; "
                             "delete it or train with the same settings.")
        net.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        start, below = state["epoch"], state.get("below", 0)
        del state  # the optimizer copied its state: at 593M parameters another 4.7 GB
        log(f"resuming width {width} from {checkpoint} after epoch {start}")
    x, y = (torch.from_numpy(a).to(device, DTYPES[dtype]) for a in (x_all, y_all))
    m_y, s_y = (torch.from_numpy(a).to(device, DTYPES[dtype]) for a in scaling[2:])
    inner = net[1:-1]  # the MLP between the scalings: trained on scaled data
    xs, ys = net[0](x), (y - m_y) / s_y
    tic = time.perf_counter()
    done = start
    progress = Progress(epochs, start, log, every=60.0, unit="epochs")  # patience may stop it sooner
    while done < epochs and (patience is None or below < patience):
        loss = torch.mean((inner(xs[train]) - ys[train]) ** 2)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        done += 1
        value = loss.item()  # the loss before this step
        below = below + 1 if value < TARGET_LOSS else 0
        finished = done == epochs or (patience is not None and below >= patience)
        progress.step(note=f"scaled loss {value:.3e}, {below} epochs below {TARGET_LOSS}")
        if done % max(1, epochs // 10) == 0 or finished:
            log(f"  epoch {done}/{epochs}: scaled loss {value:.3e} ({below} epochs below {TARGET_LOSS}), "
                f"train RMSE {_rmse(net, x[train], y[train]):.4f} Hz, validation RMSE "
                f"{_rmse(net, x[val], y[val]):.4f} Hz, {time.perf_counter() - tic:.1f} s")
        if checkpoint is not None and (done % checkpoint_every == 0 or finished):
            torch_save_atomic(checkpoint, {"config": config, "epoch": done, "below": below,
                                          "model": net.state_dict(), "optimizer": optimizer.state_dict()})
    del optimizer, x, y, xs, ys  # before the float64 copy: at 593M parameters Adam's state is 4.7 GB
    net.eval().to("cpu", torch.float64)
    x, y = torch.from_numpy(x_all), torch.from_numpy(y_all)
    train_rmse, validation_rmse = _rmse(net, x[train], y[train]), _rmse(net, x[val], y[val])
    meta = {**config, "epochs_run": done, "epochs_below_target": below, "train_rmse_hz": train_rmse,
            "validation_rmse_hz": validation_rmse, "n_train": len(train), "n_validation": len(val),
            "data_source": data["source"], "data_file": data["path"],
            "n_inputs": x_all.shape[1], "n_outputs": y_all.shape[1], "n_ignored_inputs": int(ignored.sum())}
    return net, meta


def _adam(parameters: list, lr: float) -> torch.optim.Adam:
    """Adam with its update fused into one kernel where this torch has one for the device (CPU
    from torch 2.4): at width 4000 on 2 cores a step takes 0.35 s instead of 3.8 s."""
    try:
        return torch.optim.Adam(parameters, lr=lr, fused=True)
    except RuntimeError:  # no fused kernel for this device, dtype or torch version
        return torch.optim.Adam(parameters, lr=lr)


def save_surrogate(path: str | Path, net: nn.Module, meta: dict) -> None:
    """HDF5: ``/state/<name>`` per ``state_dict`` entry (scalings included); attributes
    ``format``, ``n_parameters``, ``torch_version`` and ``meta`` (str/int/float values).
    Written to a temporary file that replaces ``path`` (:mod:`nncas.apps.storage`)."""
    save_weights(path, net, meta, FORMAT)


def load_surrogate(path: str | Path) -> tuple[nn.Sequential, dict]:
    """Rebuild the surrogate stored at ``path`` (float64, eval mode); returns ``(net, meta)``."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no surrogate at {path}; train one with "
                                f"`python -m power.surrogate --data D --width W --out {path}`.")
    state, meta = read_weights(path, FORMAT, "surrogate")
    net = build_surrogate(int(meta["n_inputs"]), int(meta["n_outputs"]), int(meta["width"]),
                          int(meta["hidden_layers"]))
    net.load_state_dict(state)
    net.eval()
    return net, meta


def _recipe_default(key: str) -> str:
    """``(default: ...)`` for a setting that :func:`recipe` chooses per width."""
    others = {width: values[key] for width, values in RECIPES.items() if key in values}
    general = "0" if DEFAULTS[key] is None else DEFAULTS[key]
    return f"(default: {general}" + "".join(f"; {value} for width {width}" for width, value in others.items()) + ")"


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(prog="python -m power.surrogate", description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, help="sample HDF5 file or the folder with the authors' .pt files")
    parser.add_argument("--width", type=int, default=100, help=f"one of {list(HIDDEN_LAYERS)}")
    parser.add_argument("--out", required=True, help="HDF5 file to write")
    parser.add_argument("--epochs", type=int, help=f"full-batch Adam steps, at most {_recipe_default('epochs')}")
    parser.add_argument("--lr", type=float, help=f"Adam learning rate {_recipe_default('lr')}")
    parser.add_argument("--patience", type=int,
                        help=f"stop once the scaled loss stayed below {TARGET_LOSS} this many consecutive epochs; "
                             f"0: train all --epochs {_recipe_default('patience')}")
    parser.add_argument("--dtype", choices=DTYPES,
                        help=f"training precision; the file holds float64 weights {_recipe_default('dtype')}")
    parser.add_argument("--seed", type=int, default=DEFAULTS["seed"],
                        help="seed of the initial weights and of the train/validation split")
    parser.add_argument("--validation", type=float, default=DEFAULTS["validation"],
                        help="fraction of samples kept for validation")
    parser.add_argument("--checkpoint-every", type=int, default=200, help="epochs between checkpoints")
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's choice)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (training only; the file is the same)")
    parser.add_argument("--ignore", nargs="+", choices=INPUT_KINDS, default=[], metavar="KIND",
                        help="input kinds the network must not use, e.g. qg (scaled to 0; same "
                             "shape and parameter count)")
    args = parser.parse_args(argv)
    out = Path(args.out)
    checkpoint = out.with_name(out.name + ".ckpt.pt")
    try:
        settings = recipe(args.width)
        epochs = settings["epochs"] if args.epochs is None else args.epochs
        lr = settings["lr"] if args.lr is None else args.lr
        patience = settings["patience"] if args.patience is None else (args.patience or None)
        dtype = args.dtype or settings["dtype"]
        check_settings(epochs, lr, args.validation, args.checkpoint_every, args.threads, patience, dtype)
        resolve_device(args.device)
        check_output_path(out, "--out", inputs=(args.data,))
        if args.threads:
            torch.set_num_threads(args.threads)
        data = load_data(args.data)
        print(f"training width {args.width} ({HIDDEN_LAYERS[args.width]} hidden layers) on "
              f"{len(data['inputs'])} samples from {data['path']} -> {out}")
        net, meta = train_surrogate(data, args.width, epochs, lr, args.seed, args.validation,
                                    checkpoint, args.checkpoint_every, device=args.device,
                                    ignore=tuple(args.ignore), patience=patience, dtype=dtype)
        save_surrogate(out, net, meta)
        checkpoint.unlink(missing_ok=True)
    except BAD_INPUT as err:
        return fail(parser, err, args.debug)
    except KeyboardInterrupt:
        return interrupted(f"run the same command again to resume from {checkpoint}.")
    print(json.dumps({k: meta[k] for k in ("width", "epochs_run", "epochs_below_target", "train_rmse_hz",
                                           "validation_rmse_hz")}))
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
