"""MNIST from either layout the data comes in, as uint8 tensors.

* the course's PNG folders ``Train/<digit>/*.png`` and ``Test/<digit>/*.png`` (class = folder),
  decoded once and cached on disk (the cache is keyed by every file's name, size and mtime);
* the original IDX files ``raw/train-images-idx3-ubyte`` etc. (torchvision's layout), also ``.gz``.

Both give ``images`` of shape (N, 28, 28), dtype uint8, and ``labels`` of shape (N,), int64.
The IDX layout keeps the file order, which mixes the classes. The PNG tree has no order of its own
(read folder by folder it is sorted by class, and a prefix such as the train-eval subset of
``common.train`` or a ``--quick`` subset would hold one or two digits); it is shuffled once
with a fixed seed, ``PNG_ORDER_SEED``, so that, like the IDX files, the order mixes the classes.
"""
from __future__ import annotations

import gzip
import io
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from .data import (DataError, Splits, atomic_write_bytes, cache_dir, check_val_size, shown_path, stable_hash,
                   tensor_fingerprint, train_val_indices)

SPLITS = {"train": ("Train", "train"), "test": ("Test", "t10k")}
CLASSES = tuple(str(d) for d in range(10))
IMAGE_SIZE = (28, 28)
VAL_SIZE = 5000  # of the 60,000 training images, held out for validation
QUICK_SUBSET = {"train": 2000, "val": 500, "test": 1000}  # --quick: sizes of each split
IDX_MAGIC = {1: 0x00000801, 3: 0x00000803}  # unsigned byte data with 1 or 3 dimensions
PNG_ORDER_SEED = 0  # the PNG tree's fixed shuffle: the same images in the same order on every machine


@dataclass(frozen=True)
class Source:
    kind: str  # "png" or "idx"
    root: Path


def find_mnist(data_dir: Path) -> Source:
    """Locate MNIST under ``data_dir`` (or ``data_dir/MNIST``) in either layout.

    A PNG tree that has some of the 20 digit folders but not all (Train/7 deleted, no Test/) is
    an error naming the missing folders, unless IDX files are found."""
    data_dir = Path(data_dir)
    candidates = [data_dir / "MNIST", data_dir]
    for root in candidates:
        if not _missing_png_folders(root):
            return Source("png", root)
        for raw in (root / "raw", root):
            if _idx_path(raw, "train-images-idx3-ubyte") is not None:
                return Source("idx", raw)
    for root in candidates:
        missing = _missing_png_folders(root)
        if len(missing) < len(SPLITS) * len(CLASSES):  # some digit folders are there: an incomplete tree
            raise DataError(f"incomplete MNIST PNG tree in {shown_path(root)}: missing "
                            f"{_describe_missing(root, missing)} (every digit needs a folder Train/<digit> "
                            "and Test/<digit>)")
    looked = ", ".join(shown_path(c) for c in candidates)
    raise DataError(
        "MNIST not found: no Train/0..9 and Test/0..9 PNG folders and no raw/*-ubyte IDX files "
        f"under {looked}. Put the data there, or pass --data-dir / set DLIA_DATA_DIR."
    )


def _missing_png_folders(root: Path) -> list[str]:
    """The digit folders of the PNG layout missing under ``root``, relative to it (``Train/7``);
    [] for a complete tree."""
    return [f"{folder}/{c}" for folder, _ in SPLITS.values() for c in CLASSES if not (root / folder / c).is_dir()]


def _describe_missing(root: Path, missing: list[str]) -> str:
    """``missing`` (from :func:`_missing_png_folders`) for a message: a split folder that is not
    there at all is named once (``Test/``) instead of by its ten digit folders."""
    named = []
    for folder, _ in SPLITS.values():
        if not (root / folder).is_dir():
            named.append(f"{folder}/")
        else:
            named += [m for m in missing if m.startswith(f"{folder}/")]
    return ", ".join(named)


def load_mnist(data_dir: Path) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """``{"train": (images, labels), "test": (images, labels)}`` as uint8 / int64 tensors."""
    source = find_mnist(data_dir)
    read = _read_png_split if source.kind == "png" else _read_idx_split
    return {split: read(source.root, split) for split in SPLITS}


def load_splits(data_dir: Path, device: torch.device, *, seed: int, val_size: int = VAL_SIZE,
                quick: bool = False) -> Splits:
    """Normalised float tensors (N, 1, 28, 28) and labels on ``device`` for train / validation / test.

    The validation set is ``val_size`` images drawn (with ``seed``) from the training set (a
    training set of ``val_size`` images or fewer is a DataError); the mean and standard deviation
    used for normalisation come from the train split only. ``quick`` truncates each split to the
    sizes in ``QUICK_SUBSET`` (for smoke tests).
    """
    source = find_mnist(data_dir)
    data = load_mnist(data_dir)
    train_images, train_labels = data["train"]
    test_images, test_labels = data["test"]
    check_val_size(len(train_labels), val_size, f"the MNIST training set in {_shown_split(source, 'train')}")
    train_idx, val_idx = train_val_indices(len(train_labels), val_size, seed)
    parts = {
        "train": (train_images[train_idx], train_labels[train_idx]),
        "val": (train_images[val_idx], train_labels[val_idx]),
        "test": (test_images, test_labels),
    }
    subset = QUICK_SUBSET if quick else None
    if subset:
        parts = {k: (x[: subset[k]], y[: subset[k]]) for k, (x, y) in parts.items()}
    pixels = parts["train"][0].float() / 255.0
    mean, std = pixels.mean().item(), pixels.std().item()

    def to_device(images: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = ((images.float() / 255.0 - mean) / std).unsqueeze(1)  # (N, 1, 28, 28)
        return x.to(device), labels.to(device)

    tensors = {k: to_device(*v) for k, v in parts.items()}
    info = {
        "dataset": "MNIST",
        "source": f"{source.kind} files under {source.root}",
        "sizes": {k: len(v[1]) for k, v in tensors.items()},
        "split_seed": seed,
        "normalisation": {"mean": round(mean, 6), "std": round(std, 6), "from": "train split"},
        "fingerprint": stable_hash([tensor_fingerprint(*data["train"], *data["test"]), val_size, seed, subset]),
    }
    return Splits(train=tensors["train"], val=tensors["val"], test=tensors["test"], info=info)


def _shown_split(source: Source, split: str) -> str:
    """Where a split of ``source`` lies, for messages: its PNG folder or its IDX images file."""
    if source.kind == "png":
        return shown_path(source.root / SPLITS[split][0])
    stem = f"{SPLITS[split][1]}-images-idx3-ubyte"
    return shown_path(_idx_path(source.root, stem) or source.root / stem)


# --- IDX -------------------------------------------------------------------------------------

def _idx_path(folder: Path, stem: str) -> Path | None:
    """The IDX file ``stem`` in ``folder``, or its ``.gz``; None if neither is there."""
    return next((folder / name for name in (stem, stem + ".gz") if (folder / name).is_file()), None)


def read_idx(path: Path) -> np.ndarray:
    """Parse an IDX file of unsigned bytes (``*-ubyte`` or ``*-ubyte.gz``) into an array."""
    raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    if len(raw) < 4:
        raise DataError(f"{shown_path(path)}: not an IDX file (only {len(raw)} bytes)")
    ndim = raw[3]
    magic = int.from_bytes(raw[:4], "big")
    if IDX_MAGIC.get(ndim) != magic:
        raise DataError(f"{shown_path(path)}: bad IDX magic number 0x{magic:08x} "
                        "(expected unsigned bytes, 1 or 3 dims)")
    shape = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    offset = 4 + 4 * ndim
    if len(raw) - offset != int(np.prod(shape)):
        raise DataError(f"{shown_path(path)}: header says shape {shape} but the file holds "
                        f"{len(raw) - offset} bytes of data")
    return np.frombuffer(raw, dtype=np.uint8, offset=offset).reshape(shape)


def _read_idx_split(raw: Path, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    prefix = SPLITS[split][1]
    paths = {}
    for what, dims in (("images", 3), ("labels", 1)):
        stem = f"{prefix}-{what}-idx{dims}-ubyte"
        path = _idx_path(raw, stem)
        if path is None:
            raise DataError(f"MNIST IDX file {stem} missing in {shown_path(raw)}")
        paths[what] = path
    images, labels = read_idx(paths["images"]), read_idx(paths["labels"])
    if images.ndim != 3 or images.shape[1:] != IMAGE_SIZE or len(images) != len(labels):
        raise DataError(f"{shown_path(paths['images'])}: images {images.shape} do not match labels {labels.shape}")
    if labels.max() > 9:
        raise DataError(f"{shown_path(paths['labels'])}: label {labels.max()} outside 0..9")
    return torch.from_numpy(images.copy()), torch.from_numpy(labels.astype(np.int64))


# --- PNG folders -----------------------------------------------------------------------------

def _read_png_split(root: Path, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """The images and labels of ``root/<Train|Test>/<digit>/*.png``, decoded once and cached on disk in
    class order, then shuffled with ``PNG_ORDER_SEED``. A training digit folder without PNG files is a
    DataError naming it (the network would silently learn nine classes); a test folder may lack a digit
    (a small test subset can), but not all of them."""
    folder = root / SPLITS[split][0]
    by_class = {c: sorted((folder / c).glob("*.png")) for c in CLASSES}
    empty = [shown_path(folder / c) for c, paths in by_class.items() if not paths]
    if split == "train" and empty:
        raise DataError(f"no PNG files in {', '.join(empty)}: every training digit folder 0..9 needs its images")
    if len(empty) == len(CLASSES):
        raise DataError(f"no PNG files in {shown_path(folder)}/0..9")
    files = [(int(c), p) for c, paths in by_class.items() for p in paths]
    key = stable_hash([str(folder.resolve())] + [(p.name, c, *_stat(p)) for c, p in files])
    cached = cache_dir() / "mnist" / f"{split}-{key}.pt"
    images = None
    if cached.is_file():
        try:
            images, labels = torch.load(cached)
        except Exception:  # a damaged cache entry is simply rebuilt
            images = None
    if images is None:
        from tqdm import tqdm

        decoded = np.empty((len(files), *IMAGE_SIZE), dtype=np.uint8)
        print(f"decoding {len(files)} PNG files in {shown_path(folder)} (once; cached in {shown_path(cached.parent)})",
              file=sys.stderr, flush=True)
        for i, (_, path) in enumerate(tqdm(files, unit="img", leave=False, disable=not sys.stderr.isatty())):
            decoded[i] = _read_png(path)
        images, labels = torch.from_numpy(decoded), torch.tensor([c for c, _ in files], dtype=torch.int64)
        buffer = io.BytesIO()
        torch.save((images, labels), buffer)
        atomic_write_bytes(cached, buffer.getvalue())
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(PNG_ORDER_SEED))
    return images[order], labels[order]


def _stat(path: Path) -> tuple[int, int]:
    st = path.stat()
    return st.st_size, st.st_mtime_ns


def _read_png(path: Path) -> np.ndarray:
    try:
        with Image.open(path) as img:
            array = np.asarray(img.convert("L"))
    except Exception as exc:
        raise DataError(f"cannot read image {shown_path(path)}: {exc}") from exc
    if array.shape != IMAGE_SIZE:
        raise DataError(f"{shown_path(path)}: image is {array.shape[1]}x{array.shape[0]}, expected 28x28")
    return array
