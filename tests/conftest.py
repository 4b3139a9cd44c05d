"""Shared fixtures. Real data is looked for in $DLIA_DATA_DIR, data/ and ../shared/data; when it is
missing the data tests are skipped, except under CI=true where that is a failure."""
import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import torch  # noqa: E402

from common.data import DataError  # noqa: E402
from common.mnist import find_mnist  # noqa: E402
from common.warwick import find_warwick  # noqa: E402

# One thread, as every script runs (common.cli.setup): the numbers do not depend on the cores, and a busy
# machine does not slow the suite down by oversubscription.
torch.set_num_threads(1)

DATA_CANDIDATES = [Path(p) for p in (os.environ.get("DLIA_DATA_DIR"), REPO / "data", REPO.parent / "shared" / "data") if p]


@pytest.fixture(autouse=True, scope="session")
def isolated_cache(tmp_path_factory):
    """Tests never read or write the developer's .cache/ (decoded PNGs, cached runs)."""
    old = os.environ.get("DLIA_CACHE_DIR")
    os.environ["DLIA_CACHE_DIR"] = str(tmp_path_factory.mktemp("cache"))
    yield
    if old is None:
        os.environ.pop("DLIA_CACHE_DIR", None)
    else:
        os.environ["DLIA_CACHE_DIR"] = old


@pytest.fixture
def run_cache(tmp_path, monkeypatch) -> Path:
    """A run cache of this test's own ($DLIA_CACHE_DIR, which common.train reads at every run)."""
    folder = tmp_path / "cache"
    monkeypatch.setenv("DLIA_CACHE_DIR", str(folder))
    return folder


def _missing(what: str):
    message = f"{what} not found in any of {[str(p) for p in DATA_CANDIDATES]}"
    if os.environ.get("CI") == "true":
        pytest.fail(message + " (CI=true: missing data is a failure)")
    pytest.skip(message)


@pytest.fixture(scope="session")
def mnist_dir() -> Path:
    for candidate in DATA_CANDIDATES:
        try:
            find_mnist(candidate)
            return candidate
        except DataError:
            continue
    _missing("MNIST")


@pytest.fixture(scope="session")
def warwick_dir() -> Path:
    for candidate in DATA_CANDIDATES:
        try:
            find_warwick(candidate)
            return candidate
        except DataError:
            continue
    _missing("WARWICK")
