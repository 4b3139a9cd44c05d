"""The WARWICK gland segmentation set (Warwick-QU / GlaS 2015, as preprocessed for the course).

Read from either form the data comes in:

* a folder ``WARWICK/`` holding ``Train/`` and ``Test/`` with ``image_NN.png`` + ``label_NN.png``
  (looked for as ``<data_dir>/WARWICK``, or ``<data_dir>`` itself);
* the course's ``WARWICK.zip`` (``<data_dir>/WARWICK.zip`` or a path to the zip), with or without a
  top-level ``WARWICK/`` folder; macOS junk (``__MACOSX/``, ``._*``, ``.DS_Store``) is ignored.

Images are 128x128 RGB PNGs whose blue channel is always zero (two stain-unmixed channels in red
and green), so the network input is the red and green channels: (N, 2, 128, 128). Labels are
single-channel PNGs with 0 (background) and 255 (gland), turned into class maps of 0/1, int64.
Every image is decoded once per process (145 small PNGs take well under a second).
"""
from __future__ import annotations

import contextlib
import io
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from .data import (DataError, Splits, check_val_size, shown_path, split_ordered, stable_hash, tensor_fingerprint,
                   train_val_indices)

SPLITS = {"train": "Train", "test": "Test"}
IMAGE_SIZE = (128, 128)
CHANNELS = (0, 1)  # red and green: the two unmixed stains (blue is constant zero)
LABEL_VALUES = ({0, 255}, {0, 1})  # allowed label encodings; gland = the non-zero value
HOLDOUTS = ("random", "reddest")  # how load_splits picks the validation images, see there
NO_HOLDOUT = "none"  # load_splits: train on all training images (a refit once the configuration is chosen)
VAL_SIZE = 15  # of the 85 training images, held out for validation
QUICK_SUBSET = {"train": 8, "val": 4, "test": 6}  # --quick: sizes of each split
_NAME = re.compile(r"^(image|label)_(\d+)\.png$", re.IGNORECASE)


@dataclass(frozen=True)
class Source:
    kind: str  # "folder" or "zip"
    path: Path  # the folder holding Train/ and Test/, or the zip file
    prefix: str = ""  # inside a zip: the folder (e.g. "WARWICK/") holding Train/ and Test/

    def __str__(self) -> str:
        return f"{self.path}" + (f" ({self.prefix or 'top level'})" if self.kind == "zip" else "")


def _is_junk(name: str) -> bool:
    return any(p in ("__MACOSX", ".DS_Store") or p.startswith("._") for p in name.split("/"))


def find_warwick(data_dir: Path) -> Source:
    """Locate WARWICK under ``data_dir`` as a folder or a zip (``data_dir`` may be the zip)."""
    data_dir = Path(data_dir)
    if data_dir.is_file() and data_dir.suffix.lower() == ".zip":
        return _zip_source(data_dir)
    for root in (data_dir / "WARWICK", data_dir):
        if all(any((root / folder).glob("image_*.png")) for folder in SPLITS.values()):
            return Source("folder", root)
    for zip_path in (data_dir / "WARWICK.zip", data_dir / "warwick.zip"):
        if zip_path.is_file():
            return _zip_source(zip_path)
    raise DataError(
        f"WARWICK not found: no WARWICK/Train and WARWICK/Test folders with image_NN.png files and no "
        f"WARWICK.zip under {shown_path(data_dir)}. Put the data there, or pass --data-dir / set DLIA_DATA_DIR."
    )


def _zip_source(path: Path) -> Source:
    try:
        with zipfile.ZipFile(path) as zf:
            names = [n for n in zf.namelist() if not _is_junk(n) and not n.endswith("/")]
    except zipfile.BadZipFile as exc:
        raise DataError(f"{shown_path(path)}: not a readable zip file ({exc})") from exc
    prefixes = set()
    for name in names:
        parts = name.split("/")
        if len(parts) >= 2 and parts[-2] in SPLITS.values() and _NAME.match(parts[-1]):
            prefixes.add("/".join(parts[:-2]) + ("/" if len(parts) > 2 else ""))
    if len(prefixes) != 1:
        found = "none" if not prefixes else ", ".join(sorted(p or "<top level>" for p in prefixes))
        raise DataError(f"{shown_path(path)}: expected exactly one folder holding Train/ and Test/ with image_NN.png "
                        f"and label_NN.png files; found {found}")
    return Source("zip", path, prefixes.pop())


def _shown_folder(source: Source, folder: str) -> str:
    """A split folder of ``source`` for messages: an absolute path, inside a zip ``zip:prefix/Train``."""
    if source.kind == "folder":
        return shown_path(source.path / folder)
    return f"{shown_path(source.path)}:{source.prefix}{folder}"


def _list_files(source: Source, split: str) -> dict[str, tuple[str, str]]:
    """``{"NN": (image name, label name)}`` of one split, checking that every pair is complete."""
    folder = SPLITS[split]
    if source.kind == "folder":
        where = source.path / folder
        names = [p.name for p in where.iterdir() if p.is_file()] if where.is_dir() else []
    else:
        with zipfile.ZipFile(source.path) as zf:
            start = f"{source.prefix}{folder}/"
            names = [n[len(start):] for n in zf.namelist()
                     if n.startswith(start) and "/" not in n[len(start):] and not _is_junk(n)]
    display = _shown_folder(source, folder)
    files: dict[str, dict[str, str]] = {}
    for name in names:
        match = _NAME.match(name)
        if match:
            kind, number = match.group(1).lower(), match.group(2)
            files.setdefault(number, {})[kind] = name
    if not files:
        raise DataError(f"no image_NN.png / label_NN.png files in {display}")
    for number, pair in sorted(files.items()):
        if "label" not in pair:
            raise DataError(f"{display}/{pair['image']}: no matching label_{number}.png")
        if "image" not in pair:
            raise DataError(f"{display}/{pair['label']}: no matching image_{number}.png")
    return {n: (p["image"], p["label"]) for n, p in sorted(files.items(), key=lambda kv: int(kv[0]))}


def load_warwick(data_dir: Path) -> dict[str, tuple[torch.Tensor, torch.Tensor, list[str]]]:
    """``{split: (images uint8 (N, 2, 128, 128), masks int64 (N, 128, 128) of 0/1, names)}``."""
    source = find_warwick(data_dir)
    out = {}
    with zipfile.ZipFile(source.path) if source.kind == "zip" else contextlib.nullcontext() as zf:
        for split, folder in SPLITS.items():
            def read(name: str) -> bytes:
                return (source.path / folder / name).read_bytes() if zf is None else zf.read(
                    f"{source.prefix}{folder}/{name}")

            images, masks, names = [], [], []
            for image_name, label_name in _list_files(source, split).values():
                images.append(_decode_image(read(image_name), f"{_shown_folder(source, folder)}/{image_name}"))
                masks.append(_decode_label(read(label_name), f"{_shown_folder(source, folder)}/{label_name}"))
                names.append(f"{folder}/{image_name}")
            out[split] = (torch.from_numpy(np.stack(images)), torch.from_numpy(np.stack(masks)), names)
    return out


def _open(data: bytes, where: str) -> np.ndarray:
    try:
        with Image.open(io.BytesIO(data)) as img:
            img.load()
            return np.asarray(img.convert("RGB") if img.mode not in ("RGB", "L", "1") else img)
    except UnidentifiedImageError as exc:  # its message names an in-memory buffer, not the file
        raise DataError(f"cannot read {where}: not a PNG image") from exc
    except Exception as exc:
        raise DataError(f"cannot read {where}: {exc}") from exc


def _decode_image(data: bytes, where: str) -> np.ndarray:
    array = _open(data, where)
    if array.ndim != 3 or array.shape[2] != 3:
        raise DataError(f"{where}: expected an RGB image (red and green = the two stains), got shape {array.shape}")
    if array.shape[:2] != IMAGE_SIZE:
        raise DataError(f"{where}: image is {array.shape[1]}x{array.shape[0]}, expected 128x128")
    return np.ascontiguousarray(array[:, :, list(CHANNELS)].transpose(2, 0, 1))  # (2, H, W)


def _decode_label(data: bytes, where: str) -> np.ndarray:
    array = _open(data, where)
    if array.ndim == 3:  # an RGB(A) label: all channels must agree
        if not (array == array[:, :, :1]).all():
            raise DataError(f"{where}: label is a colour image whose channels differ; expected a binary mask")
        array = array[:, :, 0]
    if array.shape != IMAGE_SIZE:
        raise DataError(f"{where}: label is {array.shape[1]}x{array.shape[0]}, expected 128x128 like its image")
    values = set(np.unique(array).tolist())
    if not any(values <= allowed for allowed in LABEL_VALUES):
        shown = sorted(values)[:8]
        raise DataError(f"{where}: label is not binary: values {shown}{' ...' if len(values) > 8 else ''} "
                        "(expected 0 = background and 255 = gland)")
    return (array > 0).astype(np.int64)


def load_splits(data_dir: Path, device: torch.device, *, seed: int, val_size: int = VAL_SIZE, quick: bool = False,
                holdout: str = "random") -> Splits:
    """Normalised (N, 2, 128, 128) float inputs and (N, 128, 128) 0/1 class maps on ``device``.

    ``val_size`` of the 85 training images are held out for validation (a training set of
    ``val_size`` images or fewer is a DataError): drawn with ``seed``
    (``holdout="random"``), or the ``val_size`` images with the highest :func:`red_share`
    (``"reddest"``: a validation set whose staining lies outside the range the network trains on).
    With ``holdout=NO_HOLDOUT`` all 85 train (a refit once the configuration is chosen); the
    validation split is then the random hold-out's images, which are also in training, so its scores
    are training scores (kept only so that a training run has the same form; ``info["validation"]``
    says so). Each channel is normalised with the mean and standard deviation of the train split only.
    ``quick`` truncates each split to the sizes in ``QUICK_SUBSET`` (for smoke tests).
    ``info["names"]`` gives each test image's file name, in the order of the test tensors.
    """
    source = find_warwick(data_dir)
    data = load_warwick(data_dir)
    train_images, train_masks, train_names = data["train"]
    test_images, test_masks, test_names = data["test"]
    check_val_size(len(train_masks), val_size, f"the WARWICK training set in {_shown_folder(source, SPLITS['train'])}")
    if holdout in ("random", NO_HOLDOUT):
        train_idx, val_idx = train_val_indices(len(train_masks), val_size, seed)
        if holdout == NO_HOLDOUT:
            train_idx = torch.arange(len(train_masks))
    elif holdout == "reddest":
        order = torch.from_numpy(np.argsort(-red_share(train_images), kind="stable").copy())
        train_idx, val_idx = split_ordered(order, val_size)
    else:
        raise ValueError(f"unknown holdout {holdout!r}; choose one of {', '.join(HOLDOUTS + (NO_HOLDOUT,))}")
    parts = {
        "train": (train_images[train_idx], train_masks[train_idx]),
        "val": (train_images[val_idx], train_masks[val_idx]),
        "test": (test_images, test_masks),
    }
    names = {"train": [train_names[i] for i in train_idx], "val": [train_names[i] for i in val_idx],
             "test": test_names}
    subset = QUICK_SUBSET if quick else None
    if subset:
        parts = {k: (x[: subset[k]], y[: subset[k]]) for k, (x, y) in parts.items()}
        names = {k: v[: subset[k]] for k, v in names.items()}
    pixels = parts["train"][0].float() / 255.0
    mean = pixels.mean(dim=(0, 2, 3))
    std = pixels.std(dim=(0, 2, 3))

    def to_device(images: torch.Tensor, masks: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = (images.float() / 255.0 - mean[None, :, None, None]) / std[None, :, None, None]
        return x.to(device), masks.to(device)

    tensors = {k: to_device(*v) for k, v in parts.items()}
    info = {
        "dataset": "WARWICK",
        "source": f"{source.kind} {source}",
        "input": "red and green channels (the two unmixed stains), 128x128; labels 0/255 -> classes 0/1",
        "sizes": {k: len(v[1]) for k, v in tensors.items()},
        "split_seed": seed,
        "holdout": holdout,
        "validation_held_out": holdout != NO_HOLDOUT,
        "validation": ("held out from training" if holdout != NO_HOLDOUT else
                       "none: the validation images are also training images (their scores are training scores)"),
        "normalisation": {"mean": [round(v, 6) for v in mean.tolist()], "std": [round(v, 6) for v in std.tolist()],
                          "from": "train split, per channel"},
        "gland_fraction": {k: round(v[1].float().mean().item(), 4) for k, v in parts.items()},
        "names": names,
        "fingerprint": stable_hash([tensor_fingerprint(train_images, train_masks, test_images, test_masks),
                                    val_size, seed, subset] + ([holdout] if holdout != "random" else [])),
    }
    return Splits(train=tensors["train"], val=tensors["val"], test=tensors["test"], info=info)


def unnormalise(inputs: torch.Tensor, normalisation: dict) -> torch.Tensor:
    """Normalised (N, 2, H, W) inputs back to the stains' intensities in [0, 1], on the CPU."""
    mean = torch.tensor(normalisation["mean"])[None, :, None, None]
    std = torch.tensor(normalisation["std"])[None, :, None, None]
    return (inputs.detach().float().cpu() * std + mean).clamp(0, 1)


def red_share(images: torch.Tensor) -> np.ndarray:
    """Per image, the red stain's share of the two stains' mean intensity: mean(R) / (mean(R) +
    mean(G)) of (N, 2, H, W) raw images (any scale). 0.5 means both stains equally intense."""
    means = images.double().mean(dim=(2, 3)).numpy()
    return means[:, 0] / means.sum(axis=1)
