"""common.mnist: both MNIST layouts give identical tensors in a fixed order that mixes the classes; bad
input gives a clear error naming the path."""
import gzip
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from common import mnist
from common.data import DataError

N_TRAIN, N_TEST = 120, 60
FIRST_FEW = 10  # the first images of a split, which should not all show one digit
MOST_CLASSES = len(mnist.CLASSES) // 2  # a prefix of a split that mixes the classes shows at least this many digits


def write_idx(path, array: np.ndarray) -> None:
    header = bytes([0, 0, 8, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    path.write_bytes(header + array.astype(np.uint8).tobytes())


@pytest.fixture(scope="module")
def real(mnist_dir):
    return mnist.load_mnist(mnist_dir)


@pytest.fixture
def both_layouts(real, tmp_path):
    """A small IDX copy and a PNG tree (Train/<digit>/NNNNN.png) of the same images."""
    raw = tmp_path / "idx" / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for split, n, prefix, folder in (("train", N_TRAIN, "train", "Train"), ("test", N_TEST, "t10k", "Test")):
        images, labels = (t[:n].numpy() for t in real[split])
        write_idx(raw / f"{prefix}-images-idx3-ubyte", images)
        write_idx(raw / f"{prefix}-labels-idx1-ubyte", labels)
        for digit in range(10):
            (tmp_path / "png" / "MNIST" / folder / str(digit)).mkdir(parents=True)
        for i, (image, label) in enumerate(zip(images, labels)):
            Image.fromarray(image).save(tmp_path / "png" / "MNIST" / folder / str(label) / f"{i:05d}.png")
    return tmp_path / "idx", tmp_path / "png"


def test_real_idx_files_match_the_data_readme(real):
    train_images, train_labels = real["train"]
    assert train_images.shape == (60000, 28, 28) and train_images.dtype == torch.uint8
    assert train_labels[:5].tolist() == [5, 0, 4, 1, 9]
    assert real["test"][1][:5].tolist() == [7, 2, 1, 0, 4]
    assert torch.bincount(real["test"][1]).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def test_png_tree_and_idx_files_give_the_same_images_in_a_fixed_mixed_order(both_layouts):
    idx_dir, png_dir = both_layouts
    assert mnist.find_mnist(idx_dir).kind == "idx" and mnist.find_mnist(png_dir).kind == "png"
    from_idx, from_png = mnist.load_mnist(idx_dir), mnist.load_mnist(png_dir)
    for split in ("train", "test"):
        images, labels = from_idx[split]
        by_class = torch.argsort(labels, stable=True)  # the PNG folders read class by class, then by file name
        shuffle = torch.randperm(len(labels), generator=torch.Generator().manual_seed(mnist.PNG_ORDER_SEED))
        order = by_class[shuffle]  # a permutation of the IDX order: the same images and labels
        assert torch.equal(from_png[split][0], images[order])
        assert torch.equal(from_png[split][1], labels[order])
        assert from_png[split][0].dtype == torch.uint8 and from_png[split][1].dtype == torch.int64
        assert len(set(from_png[split][1][:FIRST_FEW].tolist())) > 1  # not sorted by class
    again = mnist.load_mnist(png_dir)  # from the decode cache: the same order
    assert all(torch.equal(again[s][1], from_png[s][1]) for s in ("train", "test"))


def test_every_prefix_of_a_png_tree_mixes_the_classes(both_layouts, monkeypatch):
    """The train-eval subset (the first len(val) training images) and the --quick subsets (the
    first images of each split) hold most digits, not one or two."""
    _, png_dir = both_layouts
    monkeypatch.setattr(mnist, "QUICK_SUBSET", {"train": 30, "val": 10, "test": 20})
    splits = mnist.load_splits(png_dir, val_size=20, seed=0, device=torch.device("cpu"), quick=True)
    n_eval = len(splits.val[1])
    prefixes = {"train-eval": splits.train[1][:n_eval], **{k: getattr(splits, k)[1] for k in ("train", "val", "test")}}
    for name, labels in prefixes.items():
        assert len(set(labels.tolist())) >= MOST_CLASSES, f"{name}: {labels.tolist()}"


def test_png_decoding_is_cached_and_invalidated_when_a_file_changes(both_layouts):
    _, png_dir = both_layouts
    first = mnist.load_mnist(png_dir)["test"][0]
    cached = list((mnist.cache_dir() / "mnist").glob("test-*.pt"))
    assert cached, "decoded PNGs should be cached"
    victim = sorted((png_dir / "MNIST" / "Test" / "0").glob("*.png"))[0]
    Image.fromarray(np.full((28, 28), 7, dtype=np.uint8)).save(victim)
    os.utime(victim, ns=(1, 1))  # a different mtime, whatever the file system's resolution
    second = mnist.load_mnist(png_dir)["test"][0]
    assert (second == 7).flatten(1).all(1).sum() == 1 and not torch.equal(first, second)  # the victim, re-read


def test_gzipped_idx_files_are_read(real, tmp_path):
    images = real["test"][0][:10].numpy()
    write_idx(tmp_path / "plain", images)
    (tmp_path / "t10k-images-idx3-ubyte.gz").write_bytes(gzip.compress((tmp_path / "plain").read_bytes()))
    np.testing.assert_array_equal(mnist.read_idx(tmp_path / "t10k-images-idx3-ubyte.gz"), images)


def test_missing_data_names_every_place_it_looked(tmp_path):
    with pytest.raises(DataError) as err:
        mnist.find_mnist(tmp_path / "nowhere")
    message = str(err.value)
    assert "Train/0..9" in message and "ubyte" in message and str(tmp_path / "nowhere" / "MNIST") in message


def test_truncated_idx_file_is_reported(tmp_path):
    path = tmp_path / "x-idx3-ubyte"
    write_idx(path, np.zeros((3, 28, 28), np.uint8))
    path.write_bytes(path.read_bytes()[:-5])
    with pytest.raises(DataError, match="header says shape"):
        mnist.read_idx(path)


def test_bad_magic_number_is_reported(tmp_path):
    path = tmp_path / "x-idx3-ubyte"
    path.write_bytes(b"\x12\x34\x56\x03" + bytes(100))
    with pytest.raises(DataError, match="magic"):
        mnist.read_idx(path)


def test_missing_label_file_is_reported(both_layouts):
    idx_dir, _ = both_layouts
    (idx_dir / "MNIST" / "raw" / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(DataError, match="t10k-labels-idx1-ubyte missing"):
        mnist.load_mnist(idx_dir)


def test_wrong_image_size_names_the_file(both_layouts):
    _, png_dir = both_layouts
    victim = sorted((png_dir / "MNIST" / "Train" / "3").glob("*.png"))[0]
    Image.fromarray(np.zeros((32, 32), np.uint8)).save(victim)
    with pytest.raises(DataError, match=f"{victim.name}.*expected 28x28"):
        mnist.load_mnist(png_dir)


def test_corrupt_png_names_the_file(both_layouts):
    _, png_dir = both_layouts
    victim = sorted((png_dir / "MNIST" / "Test" / "5").glob("*.png"))[0]
    victim.write_bytes(b"not a png")
    with pytest.raises(DataError, match=f"cannot read image .*{victim.name}"):
        mnist.load_mnist(png_dir)


def test_load_splits_normalises_with_train_statistics(mnist_dir):
    splits = mnist.load_splits(mnist_dir, val_size=500, seed=0, device=torch.device("cpu"), quick=True)
    x_train, y_train = splits.train
    assert x_train.shape == (mnist.QUICK_SUBSET["train"], 1, 28, 28) and x_train.dtype == torch.float32
    assert abs(x_train.mean().item()) < 1e-4 and abs(x_train.std().item() - 1) < 1e-3
    assert splits.info["sizes"] == mnist.QUICK_SUBSET
    assert splits.info["normalisation"]["from"] == "train split" and splits.info["split_seed"] == 0
    # the statistics are those of the train split only: the test split is not exactly standardised
    assert abs(splits.test[0].mean().item()) > 1e-4


def test_an_empty_digit_folder_is_an_error_naming_it(both_layouts):
    """All PNGs of Train/7 deleted: training would silently have nine classes."""
    _, png_dir = both_layouts
    for path in (png_dir / "MNIST" / "Train" / "7").glob("*.png"):
        path.unlink()
    with pytest.raises(DataError, match=f"no PNG files in {png_dir / 'MNIST' / 'Train' / '7'}:"):
        mnist.load_mnist(png_dir)


@pytest.mark.parametrize("removed,named", [("Train/7", "Train/7"), ("Test", "Test/")])
def test_a_missing_digit_or_split_folder_is_named(both_layouts, removed, named):
    _, png_dir = both_layouts
    shutil.rmtree(png_dir / "MNIST" / removed)
    with pytest.raises(DataError) as err:
        mnist.find_mnist(png_dir)
    assert f"incomplete MNIST PNG tree in {png_dir / 'MNIST'}: missing {named} (" in str(err.value)


def test_a_training_set_smaller_than_the_validation_split_is_a_data_error(both_layouts):
    idx_dir, png_dir = both_layouts
    for data_dir, where in ((png_dir, png_dir / "MNIST" / "Train"),
                            (idx_dir, idx_dir / "MNIST" / "raw" / "train-images-idx3-ubyte")):
        with pytest.raises(DataError) as err:
            mnist.load_splits(data_dir, val_size=N_TRAIN, seed=0, device=torch.device("cpu"))
        assert f"MNIST training set in {where} holds {N_TRAIN} images" in str(err.value)
        assert f"{N_TRAIN} of them are held out for validation: at least {N_TRAIN + 1} are needed" in str(err.value)


def test_messages_show_absolute_paths(tmp_path, monkeypatch):
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    with pytest.raises(DataError) as err:
        mnist.find_mnist(Path("../nowhere"))
    assert str(tmp_path.resolve() / "nowhere" / "MNIST") in str(err.value) and "../" not in str(err.value)


def test_a_damaged_decode_cache_entry_is_rebuilt(both_layouts):
    _, png_dir = both_layouts
    first = mnist.load_mnist(png_dir)["test"]
    for entry in (mnist.cache_dir() / "mnist").glob("test-*.pt"):
        entry.write_bytes(b"half a file")
    again = mnist.load_mnist(png_dir)["test"]
    assert torch.equal(again[0], first[0]) and torch.equal(again[1], first[1])


def test_the_fingerprint_names_the_data_the_split_and_the_subset(both_layouts):
    idx_dir, _ = both_layouts
    cpu = torch.device("cpu")
    prints = {(seed, quick): mnist.load_splits(idx_dir, cpu, seed=seed, val_size=20, quick=quick).info["fingerprint"]
              for seed in (0, 1) for quick in (False, True)}
    assert len(set(prints.values())) == 4  # a cached run of one split is never served for another
    assert mnist.load_splits(idx_dir, cpu, seed=0, val_size=20).info["fingerprint"] == prints[(0, False)]
