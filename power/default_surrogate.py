"""A frequency surrogate for a case when the user brings none, trained once and cached.

``ensure_surrogate("example")`` (or a case folder) returns the width-100 surrogate of
``<cache>/power/<case>_surrogate_w100.h5``, making it on first use: from the authors' samples
when the folder holds them (Hawaii 37), else from samples simulated here (``power.sample``,
cached beside it and resumable), trained with progress and a resumable checkpoint. It is what
``python -m power.tscopf CASE`` uses without ``--model``.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

from nncas.cache import cache_root
from power.dynamic_data import load_case
from power.sample import SampleConfig, run
from power.surrogate import AUTHORS_FILES, load_data, load_surrogate, save_surrogate, train_surrogate

WIDTH = 100
#: the embedded example: few samples, 10 s after the trip, around the case file's dispatch
EXAMPLE = {"samples": 40, "epochs": 400, "config": {"t_end_s": 10.0, "nominal": "case"}}
FOLDER = {"samples": 110, "epochs": 3000, "config": {}}


def case_key(case: str) -> str:
    """``example``, or the case folder's name with a digest of its four files."""
    if case == "example":
        return "example"
    folder = Path(case).resolve()
    digest = hashlib.sha256()
    for ext in ("raw", "rop", "inl", "con"):
        for path in sorted(folder.glob(f"*.{ext}")):
            digest.update(path.read_bytes())
    return f"{folder.name}_{digest.hexdigest()[:12]}"


def ensure_surrogate(case: str, log=print):
    """``(net, meta, path)`` of the cached default surrogate of ``case``, made if absent."""
    load_case(case)  # a bad case fails here, before any sampling or training
    folder = cache_root() / "power"
    key = case_key(case)
    path = folder / f"{key}_surrogate_w{WIDTH}.h5"
    if path.is_file():
        net, meta = load_surrogate(path)
        return net, meta, path
    folder.mkdir(parents=True, exist_ok=True)
    recipe = EXAMPLE if case == "example" else FOLDER
    authors = case != "example" and all((Path(case) / name).is_file() for name in AUTHORS_FILES)
    if authors:
        log(f"no --model: training the default surrogate of {case} on the authors' samples -> {path}")
        data = load_data(case)
    else:
        samples = folder / f"{key}_samples.h5"
        log(f"no --model: simulating {recipe['samples']} samples of {case} -> {samples}, then training "
            f"the default surrogate -> {path}")
        config = SampleConfig(case if case == "example" else str(Path(case).resolve()), **recipe["config"])
        run(config, samples, recipe["samples"], log=log)
        data = load_data(samples)
    checkpoint = path.with_name(path.name + ".ckpt.pt")
    net, meta = train_surrogate(data, WIDTH, epochs=recipe["epochs"], checkpoint=checkpoint, log=log)
    save_surrogate(path, net, meta)
    checkpoint.unlink(missing_ok=True)
    return net, meta, path
