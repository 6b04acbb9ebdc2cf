"""Shared test set-up: seeded torch, a CPU-only default, GPU tests skipped without CUDA."""
import os
import tempfile

import pytest
import torch

# generated artefacts (l4casadi libraries) go to a per-run cache unless the caller chose one
os.environ.setdefault("NNCAS_CACHE", tempfile.mkdtemp(prefix="nncas-test-cache-"))


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _seeded():
    torch.manual_seed(0)
