"""common.warwick: folder and zip (with macOS junk) give the same tensors; each bad input has a
clear error naming the file; splits and normalisation follow the train split only."""
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from common import warwick
from common.data import DataError

NUMBERS = {"Train": ["01", "02", "03", "04", "05"], "Test": ["01", "02", "03"]}


def _real(warwick_dir: Path) -> Path:
    source = warwick.find_warwick(warwick_dir)
    if source.kind != "folder":
        pytest.skip("these tests copy files from the folder layout")
    return source.path


@pytest.fixture
def small_tree(warwick_dir, tmp_path) -> Path:
    """A WARWICK/ folder with a few real image/label pairs per split."""
    real = _real(warwick_dir)
    root = tmp_path / "data" / "WARWICK"
    for split, numbers in NUMBERS.items():
        (root / split).mkdir(parents=True)
        for n in numbers:
            for kind in ("image", "label"):
                shutil.copy(real / split / f"{kind}_{n}.png", root / split / f"{kind}_{n}.png")
    return root


def _zip(root: Path, path: Path, prefix: str = "WARWICK/", junk: bool = True) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as zf:
        for file in sorted(root.rglob("*.png")):
            rel = file.relative_to(root).as_posix()
            zf.write(file, prefix + rel)
            if junk:  # what macOS's "Compress" adds: AppleDouble files and .DS_Store
                zf.writestr(f"__MACOSX/{prefix}{Path(rel).parent}/._{file.name}", b"\x00\x05\x16\x07junk")
        if junk:
            zf.writestr(f"{prefix}.DS_Store", b"Bud1junk")
            zf.writestr(f"{prefix}Train/.DS_Store", b"Bud1junk")
            zf.writestr(f"{prefix}Train/._image_01.png", b"not a png")
    return path


def test_folder_loads_two_channels_and_binary_masks(small_tree):
    data = warwick.load_warwick(small_tree.parent)
    images, masks, names = data["train"]
    assert images.shape == (5, 2, 128, 128) and images.dtype == torch.uint8
    assert masks.shape == (5, 128, 128) and masks.dtype == torch.int64
    assert set(masks.unique().tolist()) == {0, 1}
    assert names[0] == "Train/image_01.png" and len(data["test"][2]) == 3
    rgb = np.asarray(Image.open(small_tree / "Train" / "image_02.png"))
    assert np.array_equal(images[1].numpy(), rgb[:, :, :2].transpose(2, 0, 1))  # red, green kept


@pytest.mark.parametrize("prefix", ["WARWICK/", ""])
def test_zip_with_junk_gives_the_same_tensors_as_the_folder(small_tree, tmp_path, prefix):
    folder = warwick.load_warwick(small_tree.parent)
    zip_path = _zip(small_tree, tmp_path / "zipped" / "WARWICK.zip", prefix)
    for where in (zip_path.parent, zip_path):  # the data folder holding the zip, or the zip itself
        assert warwick.find_warwick(where).kind == "zip"
        zipped = warwick.load_warwick(where)
        for split in ("train", "test"):
            assert torch.equal(folder[split][0], zipped[split][0])
            assert torch.equal(folder[split][1], zipped[split][1])
            assert folder[split][2] == zipped[split][2]


def test_real_data_sizes_and_splits(warwick_dir):
    splits = warwick.load_splits(warwick_dir, val_size=15, seed=0, device=torch.device("cpu"))
    assert splits.info["sizes"] == {"train": 70, "val": 15, "test": 60}
    assert splits.train[0].shape == (70, 2, 128, 128) and splits.test[1].shape == (60, 128, 128)
    # normalised with the statistics of the train split: zero mean, unit std per channel there
    x = splits.train[0]
    assert torch.allclose(x.mean(dim=(0, 2, 3)), torch.zeros(2), atol=1e-4)
    assert torch.allclose(x.std(dim=(0, 2, 3)), torch.ones(2), atol=1e-3)
    again = warwick.load_splits(warwick_dir, val_size=15, seed=0, device=torch.device("cpu"))
    other = warwick.load_splits(warwick_dir, val_size=15, seed=1, device=torch.device("cpu"))
    assert splits.info["names"]["val"] == again.info["names"]["val"] != other.info["names"]["val"]
    assert not set(splits.info["names"]["val"]) & set(splits.info["names"]["train"])
    quick = warwick.load_splits(warwick_dir, val_size=15, seed=0, device=torch.device("cpu"), quick=True)
    assert quick.info["sizes"] == warwick.QUICK_SUBSET


def _expect(root: Path, match: str) -> None:
    with pytest.raises(DataError, match=match):
        warwick.load_warwick(root)


def test_missing_data_names_the_folder(tmp_path):
    with pytest.raises(DataError, match=f"WARWICK not found.*{tmp_path.name}"):
        warwick.find_warwick(tmp_path)


def test_a_training_set_smaller_than_the_validation_split_is_a_data_error(small_tree):
    n = len(NUMBERS["Train"])
    with pytest.raises(DataError) as err:
        warwick.load_splits(small_tree.parent, val_size=n, seed=0, device=torch.device("cpu"))
    assert str(err.value) == (f"the WARWICK training set in {small_tree / 'Train'} holds {n} images, but {n} of "
                              f"them are held out for validation: at least {n + 1} are needed")


def test_image_without_label(small_tree):
    (small_tree / "Train" / "label_03.png").unlink()
    _expect(small_tree.parent, r"image_03\.png: no matching label_03\.png")


def test_label_without_image(small_tree):
    (small_tree / "Test" / "image_02.png").unlink()
    _expect(small_tree.parent, r"label_02\.png: no matching image_02\.png")


def test_wrong_size(small_tree):
    path = small_tree / "Train" / "image_04.png"
    Image.open(path).resize((64, 64)).save(path)
    _expect(small_tree.parent, r"image_04\.png: image is 64x64, expected 128x128")


def test_label_size_differs_from_image(small_tree):
    path = small_tree / "Test" / "label_01.png"
    Image.open(path).crop((0, 0, 128, 100)).save(path)
    _expect(small_tree.parent, r"label_01\.png: label is 128x100")


def test_label_not_binary(small_tree):
    path = small_tree / "Train" / "label_05.png"
    array = np.asarray(Image.open(path)).copy()
    array[:10, :10] = 128
    Image.fromarray(array).save(path)
    _expect(small_tree.parent, r"label_05\.png: label is not binary: values \[0, 128, 255\]")


def test_grey_image_is_not_two_stain_input(small_tree):
    path = small_tree / "Train" / "image_01.png"
    Image.open(path).convert("L").save(path)
    _expect(small_tree.parent, r"image_01\.png: expected an RGB image")


def test_unreadable_png(small_tree):
    (small_tree / "Test" / "image_03.png").write_bytes(b"this is not a PNG")
    _expect(small_tree.parent, r"cannot read .*image_03\.png: not a PNG image")


def test_bad_zip(tmp_path):
    (tmp_path / "WARWICK.zip").write_bytes(b"PK junk")
    with pytest.raises(DataError, match="WARWICK.zip: not a readable zip"):
        warwick.find_warwick(tmp_path)


def test_zip_without_the_expected_layout(tmp_path):
    with zipfile.ZipFile(tmp_path / "WARWICK.zip", "w") as zf:
        zf.writestr("__MACOSX/Train/._image_01.png", b"junk")
        zf.writestr("readme.txt", b"hello")
    with pytest.raises(DataError, match="exactly one folder holding Train/ and Test/.*found none"):
        warwick.find_warwick(tmp_path)


def test_bad_file_inside_zip_is_named(small_tree, tmp_path):
    path = small_tree / "Test" / "label_02.png"
    array = np.asarray(Image.open(path)).copy()
    array[0, 0] = 7
    Image.fromarray(array).save(path)
    zip_path = _zip(small_tree, tmp_path / "z" / "WARWICK.zip")
    with pytest.raises(DataError, match=r"WARWICK\.zip:WARWICK/Test/label_02\.png: label is not binary"):
        warwick.load_warwick(zip_path)


def test_red_share_by_hand():
    images = torch.zeros(2, 2, 4, 4, dtype=torch.uint8)
    images[0, 0], images[0, 1] = 30, 90  # red 30, green 90 -> 30 / 120
    images[1, 0, :2], images[1, 1] = 200, 100  # mean red 100, green 100 -> 0.5
    assert np.allclose(warwick.red_share(images), [0.25, 0.5])


def test_reddest_holdout_validates_on_the_most_red_stained_images(warwick_dir):
    splits = warwick.load_splits(warwick_dir, val_size=15, seed=0, device=torch.device("cpu"), holdout="reddest")
    images, _, names = warwick.load_warwick(warwick_dir)["train"]
    share = dict(zip(names, warwick.red_share(images)))
    val = [share[n] for n in splits.info["names"]["val"]]
    train = [share[n] for n in splits.info["names"]["train"]]
    assert len(val) == 15 and len(train) == 70 and min(val) > max(train)
    assert splits.info["holdout"] == "reddest"
    random = warwick.load_splits(warwick_dir, val_size=15, seed=0, device=torch.device("cpu"))
    assert splits.info["fingerprint"] != random.info["fingerprint"]
    with pytest.raises(ValueError, match="unknown holdout 'bluest'"):
        warwick.load_splits(warwick_dir, val_size=15, seed=0, device=torch.device("cpu"), holdout="bluest")


def test_no_holdout_trains_on_every_training_image(warwick_dir):
    cpu = torch.device("cpu")
    refit = warwick.load_splits(warwick_dir, val_size=15, seed=0, device=cpu, holdout=warwick.NO_HOLDOUT)
    random = warwick.load_splits(warwick_dir, val_size=15, seed=0, device=cpu)
    images, masks, names = warwick.load_warwick(warwick_dir)["train"]
    assert refit.info["names"]["train"] == names and torch.equal(refit.train[1], masks)
    # the validation images are the random hold-out's, and in training: their scores are training scores
    assert refit.info["names"]["val"] == random.info["names"]["val"]
    assert set(refit.info["names"]["val"]) <= set(names) and "training scores" in refit.info["validation"]
    assert random.info["validation"] == "held out from training"
    pixels = images.float() / 255.0  # normalised with all 85 images' statistics
    assert refit.info["normalisation"]["mean"] == pytest.approx(pixels.mean(dim=(0, 2, 3)).tolist(), abs=1e-6)
    assert torch.allclose(refit.train[0][:, 0].mean(), torch.tensor(0.0), atol=1e-4)
    assert len({refit.info["fingerprint"], random.info["fingerprint"]}) == 2
    assert torch.equal(refit.test[1], random.test[1])


def test_unnormalise_inverts_the_normalisation(small_tree):
    splits = warwick.load_splits(small_tree.parent, torch.device("cpu"), seed=0, val_size=2)
    images, _, names = warwick.load_warwick(small_tree.parent)["test"]
    raw = warwick.unnormalise(splits.test[0], splits.info["normalisation"])
    assert splits.info["names"]["test"] == names
    assert torch.allclose(raw, images.float() / 255.0, atol=1e-5)  # back to the PNGs' intensities


def test_gland_fraction_and_sizes_describe_each_split(small_tree):
    splits = warwick.load_splits(small_tree.parent, torch.device("cpu"), seed=0, val_size=2)
    assert splits.info["sizes"] == {"train": 3, "val": 2, "test": 3}
    for part in ("train", "val", "test"):
        masks = getattr(splits, part)[1]
        assert splits.info["gland_fraction"][part] == pytest.approx(masks.float().mean().item(), abs=1e-4)
