"""Shared test set-up: seeded torch, a CPU-only default, GPU tests skipped without CUDA."""
import os
import shutil
import tempfile

import pytest
import torch

# generated artefacts (l4casadi libraries, MNIST copies) go to a per-run cache unless the caller
# chose one; the run removes the cache it made when it ends
_OWN_CACHE = None
if "NNCAS_CACHE" not in os.environ:
    _OWN_CACHE = os.environ["NNCAS_CACHE"] = tempfile.mkdtemp(prefix="nncas-test-cache-")


def pytest_sessionfinish(session, exitstatus):
    if _OWN_CACHE is not None:
        shutil.rmtree(_OWN_CACHE, ignore_errors=True)


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
