"""What the validation sweeps share: ex2_5_best.py's configuration (restated here: tests/test_tuning.py
checks that the two agree) with some things changed, trained for the seeds on each validation design,
scored on validation only, and a record of it (tuning/*.json).

Every run also computes a test score (``common.train`` does); a sweep neither prints, writes nor
reads it.
"""
from __future__ import annotations

import argparse
import json
import subprocess
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
from torch import Tensor

from common import cli, evaluation, metrics, train, warwick
from common.data import Splits

from . import prediction, selection

# ex2_5_best.py's configuration
UNET = {"class": "SegNet", "channels": (8, 16, 32, 64), "up_kernel": 2, "init": "default", "batch_norm": True,
        "skip": "concat", "block_depth": 2, "residual": True}
LR = 1e-2  # Adam, one-cycle peak
BATCH_SIZE = 10
EPOCHS = 100


def parser(doc: str | None) -> argparse.ArgumentParser:
    """ex2_5_best.py's command line, with 2 seeds."""
    return cli.make_parser(doc, epochs=EPOCHS, batch_size=BATCH_SIZE, lr=LR, num_seeds=2)


def config(ctx: cli.Context, epochs: int, lr: float | None = None, augment=selection.DIHEDRAL, **network) -> dict:
    """ex2_5_best.py's configuration for ``epochs`` (1 with --quick), with the learning rate ``lr`` (default:
    the command line's), the augmentation ``augment`` and ``network`` changed in the U-Net."""
    return {"model": {**UNET, **network}, "loss": {"class": "CrossEntropyLoss"},
            "optimizer": {"class": "Adam", "lr": lr or ctx.args.lr}, "schedule": {"class": "OneCycleLR"},
            "augment": augment, "epochs": cli.QUICK_EPOCHS if ctx.quick else epochs,
            "batch_size": ctx.args.batch_size, "score": "dice"}


def holdouts(ctx: cli.Context, designs=warwick.HOLDOUTS) -> Iterator[tuple[str, Splits]]:
    for holdout in designs:
        yield holdout, warwick.load_splits(ctx.data_dir, ctx.device, seed=ctx.seed, quick=ctx.quick, holdout=holdout)


def dice(masks: list[Tensor], targets: Tensor) -> list[float]:
    """Per seed, the mean Dice of its gland ``masks``."""
    return [float(metrics.dice_coefficient(m, targets.cpu() == 1).mean()) for m in masks]


def train_candidates(ctx: cli.Context, candidates: dict[str, dict], designs=warwick.HOLDOUTS) -> dict:
    """Train each candidate (name -> configuration) on each hold-out;
    per candidate and per candidate + TTA: its weights, epochs and final validation Dice per hold-out and seed."""
    rows, all_splits = {}, {}
    for holdout, splits in holdouts(ctx, designs):
        all_splits[holdout] = splits
        for name, candidate in candidates.items():
            runs = train.run(name, candidate, splits, ctx)
            plain = [r["history"]["epochs"][-1]["val_score"] for r in runs.records]
            tta = dice([evaluation.gland_masks(lg) for lg in evaluation.tta_logits(runs, splits.val[0])], splits.val[1])
            for label, values in ((name, plain), (name + selection.TTA, tta)):
                row = rows.setdefault(label, {"weights": runs.num_weights, "epochs": candidate["epochs"],
                                             "final_val_dice": {}})
                row["final_val_dice"][holdout] = values
                print(f"{holdout:8s} {label:24s} final val Dice {' '.join(f'{v:.4f}' for v in values)}", flush=True)
    return record(ctx, rows, all_splits)


def predictions(ctx: cli.Context, candidates: dict[str, dict],
                scores: Callable[[train.Runs, Tensor, Tensor], dict[str, list[float]]]) -> dict:
    """Score the chosen network's predictions made in several ways: ``scores(runs, val_inputs, val_targets)``
    returns, per candidate, its validation Dice per seed."""
    channels, epochs = selection.SIZE[selection.SIZE_CHOICE.removesuffix(selection.TTA)]
    rows, all_splits = {}, {}
    for holdout, splits in holdouts(ctx):
        all_splits[holdout] = splits
        runs = train.run("chosen", config(ctx, epochs, channels=channels), splits, ctx)
        for name, values in scores(runs, *splits.val).items():
            rows.setdefault(name, {**candidates[name], "final_val_dice": {}})["final_val_dice"][holdout] = values
            print(f"{holdout:8s} {name:24s} final val Dice {' '.join(f'{v:.4f}' for v in values)}", flush=True)
    return {"predictor": {"size": selection.SIZE_CHOICE, "tta": True}, **record(ctx, rows, all_splits)}


def tta_masks(runs: train.Runs, inputs: Tensor, batchnorm=(None, 0.0), threshold: float = 0.5,
              fill_holes: bool = False) -> list[Tensor]:
    """Per seed, the gland masks of the TTA prediction with batch-norm statistics ``batchnorm`` (scope,
    weight of ``prediction.adapt_batchnorm``), a ``threshold`` and hole filling."""
    out = []
    for k in range(len(runs.records)):
        model = prediction.adapt_batchnorm(runs.model(k).to(inputs.device).eval(), *batchnorm, inputs=inputs)
        logits = evaluation.dihedral_tta_logits(model, inputs).cpu()
        out.append(prediction.foreground_masks(logits, threshold, fill_holes))
    return out


def record(ctx: cli.Context, rows: dict, splits_by_holdout: dict[str, Splits]) -> dict:
    """A sweep's record: where and what it ran, the stain range of each hold-out, and per candidate its
    final validation Dice per hold-out and seed."""
    red = {}
    for split in warwick.load_warwick(ctx.data_dir).values():
        red.update(zip(split[2], warwick.red_share(split[0])))
    ranges = {}
    for holdout, splits in splits_by_holdout.items():
        shares = {part: [red[n] for n in names] for part, names in splits.info["names"].items()}
        ranges[holdout] = {"train_max": max(shares["train"]), "val_min": min(shares["val"]), "val_max": max(shares["val"]),
                           "test_above_train_max": sum(v > max(shares["train"]) for v in shares["test"]),
                           "test_images": len(shares["test"])}
    return {"device": str(ctx.device), "seeds": ctx.seeds, "code": _git_commit(), "holdouts": list(splits_by_holdout),
            "val_size": warwick.VAL_SIZE, "red_share": ranges, "candidates": rows}


def write(ctx: cli.Context, record: dict, name: str) -> Path:
    """``record`` into tuning/<name>.json, or with --quick or --out-dir DIR into DIR."""
    folder = ctx.out_dir if ctx.args.out_dir or ctx.quick else selection.TUNING_DIR
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.json"
    path.write_text(json.dumps(record, indent=1, default=lambda x: x.item() if isinstance(x, np.generic) else str(x)))
    print(f"wrote {path}")
    return path


def _git_commit() -> dict:
    """The commit the sweep ran, and whether tracked files differed from it."""
    def git(*args: str) -> str | None:
        try:
            return subprocess.run(["git", *args], cwd=selection.TUNING_DIR, capture_output=True, text=True,
                                  check=True).stdout
        except (OSError, subprocess.CalledProcessError):
            return None

    commit, status = git("rev-parse", "HEAD"), git("status", "--porcelain", "--untracked-files=no")
    return {"commit": commit.strip() if commit else None,
            "uncommitted_changes": bool(status.strip()) if status is not None else None}
