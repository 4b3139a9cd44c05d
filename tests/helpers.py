"""Small synthetic problems and stand-ins shared by the tests (imported as ``helpers``; pytest puts
tests/ on the path)."""
from __future__ import annotations

import io
import types
from pathlib import Path

import torch
from torch import nn

from common import models
from common.data import Splits
from common.train import Runs


def toy_splits(n: int = 240, seed: int = 0) -> Splits:
    """A linearly separable two-class problem on 4x4 'images': class 1 where the pixels sum above 0."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 1, 4, 4, generator=g)
    y = (x.flatten(1).sum(1) > 0).long()
    parts = {"train": (x[:160], y[:160]), "val": (x[160:200], y[160:200]), "test": (x[200:], y[200:])}
    return Splits(**parts, info={"fingerprint": f"toy-{n}-{seed}"})


# The toy network of a configuration: 16 -> 8 -> 2, ReLU
TOY_MODEL = {"class": "MLP", "in_features": 16, "hidden": (8,), "num_classes": 2}
TOY_WEIGHTS = 16 * 8 + 8 + 8 * 2 + 2  # 154


def toy_model() -> nn.Module:
    return models.MLP(in_features=16, hidden=(8,), num_classes=2)


def toy_config(**overrides) -> dict:
    """A configuration (``common.train``) of the toy network: plain SGD, 3 epochs of batches of 16."""
    config = {"model": TOY_MODEL, "loss": {"class": "CrossEntropyLoss"}, "optimizer": {"class": "SGD", "lr": 0.1},
              "schedule": None, "augment": None, "epochs": 3, "batch_size": 16, "score": "accuracy"}
    return {**config, **overrides}


def fake_ctx(seeds=(0,), *, use_cache: bool = True) -> types.SimpleNamespace:
    """What ``common.train.run`` reads of a ``common.cli.Context`` (the run cache is $DLIA_CACHE_DIR's)."""
    return types.SimpleNamespace(seeds=list(seeds), seed=seeds[0], device=torch.device("cpu"), use_cache=use_cache,
                                 show_progress=False)


def toy_runs(records: list[dict], folders=None, *, name: str = "toy", label: str | None = None, **config) -> Runs:
    """A ``Runs`` of the toy configuration (changed by ``config``) holding ``records`` by hand."""
    return Runs(name, label or name, toy_config(**config), records, folders or [None] * len(records))


def epoch(k: int, *, train_loss: float = 0.5, val_loss: float = 0.5, val_score: float = 0.9,
          train_eval_score: float = 0.9, share: float = 0.5, lr: float = 0.1) -> dict:
    """One epoch record as ``common.train.fit`` writes it (the fields ``fit_verdict`` reads)."""
    return {"epoch": k, "train_loss": train_loss, "val_loss": val_loss, "val_score": val_score,
            "train_eval_score": train_eval_score, "val_majority_share": share, "lr": lr}


def history(epochs: list[dict], *, initial_lr: float = 0.1, first_loss: float | None = None) -> dict:
    """A ``fit`` history; ``first_loss`` is the first iteration's loss (default: the first epoch's)."""
    first = epochs[0]["train_loss"] if first_loss is None else first_loss
    return {"iter_loss": [first] + [e["train_loss"] for e in epochs], "initial_lr": initial_lr, "epochs": epochs}


def stored_runs(tmp_path: Path, *, models=None, test_logits=None, records=None, model: dict | None = None,
                score="dice") -> Runs:
    """A ``Runs`` whose cache folders hold the given weights and test logits, one folder per seed;
    ``model`` is the configuration's model entry (``{"class": ..., **options}``) the weights belong to."""
    n = len(records or models or test_logits)
    folders = []
    for k in range(n):
        folder = tmp_path / f"seed{k}"
        folder.mkdir(parents=True)
        if models is not None:
            buffer = io.BytesIO()
            torch.save(models[k].state_dict(), buffer)
            (folder / "weights.pt").write_bytes(buffer.getvalue())
        if test_logits is not None:
            torch.save(test_logits[k], folder / "test_logits.pt")
        folders.append(folder)
    records = records or [{"seed": k, "hyperparameters": {"num_weights": 1},
                           "history": {"epochs": [{"val_score": 0.5}]}, "test": {score: 0.5},
                           "train_time_per_epoch_s": {"mean": 1.0}} for k in range(n)]
    return toy_runs(records, folders, model=model or TOY_MODEL, score=score)
