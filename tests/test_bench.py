"""The pipeline benchmark reads every MNIST layout the exercises read, and fails with one line."""
import gzip
import importlib.util

import numpy as np
import pytest
import torch

from common.data import REPO_ROOT

N_IMAGES = 64


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_mnist_pipeline",
                                                  REPO_ROOT / "benchmarks" / "bench_mnist_pipeline.py")
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except ImportError as error:  # the redesign moved what it imports
        pytest.skip(f"benchmarks/bench_mnist_pipeline.py does not import after the redesign: {error}")
    return module


def _write_idx(path, array: np.ndarray, packed: bool) -> None:
    data = bytes([0, 0, 8, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape) + array.tobytes()
    path.write_bytes(gzip.compress(data) if packed else data)


def _idx_set(folder, packed: bool) -> np.ndarray:
    """The four IDX files of a tiny MNIST, gzipped or not; returns the training labels."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    labels = (np.arange(N_IMAGES) % 10).astype(np.uint8)
    for prefix in ("train", "t10k"):
        suffix = ".gz" * packed
        _write_idx(folder / f"{prefix}-images-idx3-ubyte{suffix}", rng.integers(0, 256, (N_IMAGES, 28, 28), np.uint8),
                   packed)
        _write_idx(folder / f"{prefix}-labels-idx1-ubyte{suffix}", labels, packed)
    return labels


@pytest.mark.parametrize("layout,packed", [("flat", False), ("MNIST/raw", True), ("raw", True)])
def test_the_textbook_dataset_reads_idx_files_in_any_accepted_layout(bench, tmp_path, layout, packed):
    """torchvision's MNIST wants <root>/MNIST/raw/ with uncompressed files: a flat folder or .gz
    files used to stop the benchmark with "Dataset not found"."""
    labels = _idx_set(tmp_path / "data" / layout if layout != "flat" else tmp_path / "data", packed)
    dataset = bench.textbook_dataset(tmp_path / "data", tmp_path / "tmp")
    assert len(dataset) == N_IMAGES and [dataset[k][1] for k in range(3)] == labels[:3].tolist()


def test_missing_data_and_a_missing_gpu_end_in_one_line(bench, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        bench.cli.run(lambda: bench.main(["--device", "cpu", "--data-dir", str(tmp_path / "nowhere")]))
    assert str(exit_info.value.code).startswith("error: MNIST not found") and str(tmp_path) in exit_info.value.code
    if not torch.cuda.is_available():
        with pytest.raises(SystemExit) as exit_info:
            bench.main(["--device", "cuda"])
        assert exit_info.value.code == 2 and "torch.cuda.is_available() is False" in capsys.readouterr().err
