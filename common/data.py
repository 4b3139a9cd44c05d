"""Data-set independent pieces: splits, fingerprints and a loader over in-memory tensors."""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import torch

Batch = tuple[torch.Tensor, torch.Tensor]
BatchTransform = Callable[[torch.Tensor, torch.Tensor], Batch]


class DataError(ValueError):
    """Missing, incomplete or malformed input data. The message names the path."""


def shown_path(path: Path | str) -> str:
    """``path`` as an absolute, normalised path for messages (``../x`` run from /tmp shows as
    ``/x``); symbolic links are kept as the user named them."""
    return os.path.abspath(path)


def check_val_size(n: int, val_size: int, where: str) -> None:
    """Raise a DataError unless ``val_size`` validation images can be held out of the ``n``
    training images that ``where`` (e.g. "the MNIST training set in /data/MNIST/Train") holds
    with at least one left to train on."""
    if n <= val_size:
        raise DataError(f"{where} holds {n} image(s), but {val_size} of them are held out for validation: "
                        f"at least {val_size + 1} are needed")


@dataclass
class Splits:
    """Inputs and targets of each split, already on the training device."""

    train: Batch
    val: Batch
    test: Batch
    info: dict = field(default_factory=dict)


def train_val_indices(n: int, val_size: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A random split of ``range(n)`` into ``n - val_size`` training and ``val_size`` validation
    indices, the same for the same ``seed``. Each part is sorted."""
    return split_ordered(torch.randperm(n, generator=torch.Generator().manual_seed(seed)), val_size)


def split_ordered(order: torch.Tensor, val_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The first ``val_size`` entries of the index permutation ``order`` become the validation
    indices, the rest the training indices; each part sorted."""
    if not 0 < val_size < len(order):
        raise ValueError(f"val_size must be between 1 and {len(order) - 1}, got {val_size}")
    return order[val_size:].sort().values, order[:val_size].sort().values


def tensor_fingerprint(*tensors: torch.Tensor) -> str:
    """A short hash of the shapes and contents of CPU tensors."""
    digest = hashlib.sha256()
    for t in tensors:
        digest.update(str(tuple(t.shape)).encode())
        digest.update(t.contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


class TensorLoader:
    """Mini-batches sliced from tensors that are already on the target device.

    Unlike a ``DataLoader`` over a ``Dataset`` there is no per-sample Python work: each batch is
    one indexing operation. ``shuffle`` draws a new permutation every epoch from a generator
    seeded with ``seed``; ``transform(inputs, targets)`` (e.g. augmentation) is applied to each
    training batch on the device.
    """

    def __init__(
        self,
        inputs: torch.Tensor,
        targets: torch.Tensor,
        batch_size: int,
        *,
        shuffle: bool = False,
        seed: int = 0,
        transform: BatchTransform | None = None,
    ) -> None:
        if len(inputs) != len(targets):
            raise ValueError(f"inputs ({len(inputs)}) and targets ({len(targets)}) differ in length")
        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        self.inputs, self.targets = inputs, targets
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.transform = transform
        self.generator = torch.Generator().manual_seed(seed)

    def __len__(self) -> int:
        return -(-len(self.inputs) // self.batch_size)

    def __iter__(self) -> Iterator[Batch]:
        n = len(self.inputs)
        order = torch.randperm(n, generator=self.generator).to(self.inputs.device) if self.shuffle else None
        for start in range(0, n, self.batch_size):
            if order is None:
                inputs = self.inputs[start:start + self.batch_size]
                targets = self.targets[start:start + self.batch_size]
            else:
                idx = order[start:start + self.batch_size]
                inputs, targets = self.inputs[idx], self.targets[idx]
            if self.transform is not None:
                inputs, targets = self.transform(inputs, targets)
            yield inputs, targets
