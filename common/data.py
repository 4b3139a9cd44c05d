"""What every data set shares: the error for bad input, train/validation/test splits on the device,
a loader that slices mini-batches from tensors, and the small on-disk cache behind decoded data and
finished runs (entries written whole or not at all)."""
from __future__ import annotations

import hashlib
import json
import math
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import torch

REPO_ROOT = Path(__file__).resolve().parent.parent
Batch = tuple[torch.Tensor, torch.Tensor]
BatchTransform = Callable[[torch.Tensor, torch.Tensor], Batch]  # (inputs, targets) -> (inputs, targets)


class DataError(ValueError):
    """Missing, incomplete or malformed input data. The message names the path."""


def shown_path(path: Path | str) -> str:
    """``path`` absolute and normalised, for messages (symbolic links kept as the user named them)."""
    return os.path.abspath(path)


@dataclass
class Splits:
    """Inputs and targets of each split, already on the training device; ``info`` describes them
    (sizes, normalisation, split seed, file names, fingerprint)."""

    train: Batch
    val: Batch
    test: Batch
    info: dict = field(default_factory=dict)


def check_val_size(n: int, val_size: int, where: str) -> None:
    """A DataError unless ``val_size`` of the ``n`` training images in ``where`` can be held out
    with at least one left to train on."""
    if n <= val_size:
        raise DataError(f"{where} holds {n} images, but {val_size} of them are held out for validation: "
                        f"at least {val_size + 1} are needed")


def train_val_indices(n: int, val_size: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A seeded random split of ``range(n)`` into sorted training and validation indices."""
    return split_ordered(torch.randperm(n, generator=torch.Generator().manual_seed(seed)), val_size)


def split_ordered(order: torch.Tensor, val_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The first ``val_size`` indices of the permutation ``order`` validate, the rest train; each sorted."""
    if not 0 < val_size < len(order):
        raise ValueError(f"val_size must be between 1 and {len(order) - 1}, got {val_size}")
    return order[val_size:].sort().values, order[:val_size].sort().values


class TensorLoader:
    """Mini-batches sliced from tensors already on the device: one indexing operation per batch
    instead of a ``DataLoader``'s per-sample Python work. ``shuffle`` draws a new permutation every
    epoch from a generator seeded with ``seed``; ``transform`` (augmentation) is applied per batch."""

    def __init__(self, inputs: torch.Tensor, targets: torch.Tensor, batch_size: int, *, shuffle: bool = False,
                 seed: int = 0, transform: BatchTransform | None = None) -> None:
        if len(inputs) != len(targets):
            raise ValueError(f"inputs ({len(inputs)}) and targets ({len(targets)}) differ in length")
        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        self.inputs, self.targets, self.batch_size = inputs, targets, batch_size
        self.shuffle, self.transform = shuffle, transform
        self.generator = torch.Generator().manual_seed(seed)

    def __len__(self) -> int:
        return math.ceil(len(self.inputs) / self.batch_size)

    def __iter__(self) -> Iterator[Batch]:
        n = len(self.inputs)
        order = torch.randperm(n, generator=self.generator).to(self.inputs.device) if self.shuffle else None
        for start in range(0, n, self.batch_size):
            idx = slice(start, start + self.batch_size) if order is None else order[start:start + self.batch_size]
            inputs, targets = self.inputs[idx], self.targets[idx]
            if self.transform is not None:
                inputs, targets = self.transform(inputs, targets)
            yield inputs, targets


# --- fingerprints and the on-disk cache ------------------------------------------------------

def cache_dir() -> Path:
    """``$DLIA_CACHE_DIR`` if set, otherwise ``.cache/`` in the repository."""
    return Path(os.environ.get("DLIA_CACHE_DIR", REPO_ROOT / ".cache"))


def stable_hash(obj: Any, length: int = 16) -> str:
    """A hex digest of a JSON-serialisable object that does not depend on dict order."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:length]


def tensor_fingerprint(*tensors: torch.Tensor) -> str:
    """A short hash of the shapes and contents of CPU tensors."""
    digest = hashlib.sha256()
    for t in tensors:
        digest.update(str(tuple(t.shape)).encode())
        digest.update(t.contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the whole new one: an
    interrupted program leaves no half-written entry behind."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=1, default=str) + "\n").encode())
