"""What the stain, size, post-processing and batch-norm sweeps (seg_stain_sweep.py, seg_size_sweep.py,
seg_postprocess_sweep.py, seg_batchnorm_sweep.py) share: configurations of ex2_5_best.py trained on
both validation designs of common.warwick.HOLDOUTS (the random 15-image hold-out of every exercise,
and ``reddest``: the 15 most red-stained training images, so that a network is validated on staining
outside the range it trained on). :func:`sweep` scores each candidate on validation as trained and
with test-time augmentation (TTA, ``common.seg_eval.dihedral_tta_logits``); :func:`prediction_sweep`
scores the chosen network's predictions made in several ways; every sweep's record has the same
form (:func:`record`).

Every run computes a test score (see common.experiment); this module neither prints, writes nor
reads it: the record holds validation scores and the stain range of each design only.
"""
import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Callable, Iterator

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
from torch import Tensor  # noqa: E402

import ex2_1_segnet  # noqa: E402
import ex2_5_best  # noqa: E402
from common import cli, experiment, seg_eval, warwick  # noqa: E402
from common.data import Splits  # noqa: E402

TUNING_DIR = Path(__file__).resolve().parent


def make_parser(doc: str | None) -> argparse.ArgumentParser:
    """The sweeps' command line: ex2_5_best.py's defaults, 2 seeds."""
    return cli.make_parser(doc, epochs=ex2_5_best.EPOCHS, batch_size=ex2_5_best.BATCH_SIZE, lr=ex2_5_best.LR,
                           num_seeds=2)


def refuse_epochs(parser: argparse.ArgumentParser, ctx: cli.Context, why: str) -> None:
    """Stop with a usage error that gives ``why`` if --epochs differs from the default (outside
    --quick): these sweeps set each run's epochs themselves."""
    if not ctx.quick and ctx.args.epochs != ex2_5_best.EPOCHS:
        parser.error(f"--epochs: {why}")


def holdouts(ctx: cli.Context) -> Iterator[tuple[str, Splits]]:
    """(name, splits) of each validation design of ``warwick.HOLDOUTS``, as ex2_5_best.py loads them."""
    for holdout in warwick.HOLDOUTS:
        yield holdout, warwick.load_splits(ctx.data_dir, val_size=ex2_1_segnet.VAL_SIZE, seed=ctx.args.seed,
                                           device=ctx.device, quick=ctx.quick, holdout=holdout)


def stain_ranges(ctx: cli.Context, splits_by_holdout: dict[str, Splits]) -> dict:
    """Per hold-out, the stain balance (``warwick.red_share``) it trains and validates on, and how
    many test images lie above its training range (from their unlabelled inputs alone)."""
    raw = warwick.load_warwick(ctx.data_dir)
    red = {name: share for split in raw.values() for name, share in zip(split[2], warwick.red_share(split[0]))}
    out = {}
    for holdout, splits in splits_by_holdout.items():
        shares = {part: [red[n] for n in names] for part, names in splits.info["names"].items()}
        out[holdout] = {"train_max": float(max(shares["train"])), "val_min": float(min(shares["val"])),
                        "val_max": float(max(shares["val"])),
                        "test_above_train_max": int(sum(v > max(shares["train"]) for v in shares["test"])),
                        "test_images": len(shares["test"])}
    return out


def sweep(ctx: cli.Context, candidates: dict[str, tuple[int, dict]]) -> dict:
    """Train ``candidates`` (name -> (epochs, ``ex2_5_best.best_spec`` keyword arguments)) for
    ``ctx.seeds`` on each hold-out; returns the record: per candidate and per candidate + TTA, its
    weights, epochs and final validation Dice per hold-out and seed."""
    rows, all_splits = {}, {}
    for holdout, splits in holdouts(ctx):
        all_splits[holdout] = splits
        val_inputs, val_targets = splits.val
        for name, (epochs, options) in candidates.items():
            args = epochs_args(ctx, epochs)
            spec = ex2_5_best.best_spec(args, name, **options)
            config = experiment.run_seeds(spec, splits, ctx.seeds, ctx.device, **ctx.run_kwargs())
            plain = [r["history"]["epochs"][-1]["val_score"] for r in config["runs"]]
            tta = seg_eval.tta_scores(config, spec.build_model, val_inputs, val_targets)
            for label, values in ((name, plain), (name + ex2_5_best.TTA_SUFFIX, tta)):
                row = rows.setdefault(label, {"weights": config["num_weights"], "epochs": args.epochs,
                                              "final_val_dice": {}})
                row["final_val_dice"][holdout] = values
                print_scores(holdout, label, values)
    return record(ctx, rows, all_splits)


def prediction_sweep(script: str, doc: str | None, argv: list[str] | None, candidates: dict[str, dict],
                     scores: Callable[[dict, experiment.RunSpec, Tensor, Tensor, bool], dict[str, list[float]]],
                     record_name: str) -> dict:
    """A sweep script's ``main`` that scores one network many ways: the configuration ex2_5_best.py
    chose (``ex2_5_best.final_choice``) trained for the seeds on each hold-out;
    ``scores(config, spec, val_inputs, val_targets, tta)`` returns per candidate its final validation
    Dice per seed. Writes and returns the record: the predictor, and per candidate its fields in
    ``candidates`` (name -> dict) and its Dice per hold-out and seed."""
    parser = make_parser(doc)
    ctx = cli.setup(parser, argv, script)
    refuse_epochs(parser, ctx, "the network trains for the chosen size candidate's epochs (ex2_5_best.SIZE_CHOICE)")
    stain, size, tta = ex2_5_best.final_choice(ex2_5_best.STAIN_CHOICE, ex2_5_best.SIZE_CHOICE)
    channels, epochs = ex2_5_best.SIZE_CANDIDATES[size]
    args = epochs_args(ctx, epochs)
    rows, all_splits = {}, {}
    for holdout, splits in holdouts(ctx):
        all_splits[holdout] = splits
        spec = ex2_5_best.best_spec(args, channels=channels, **ex2_5_best.STAIN_CANDIDATES[stain])
        config = experiment.run_seeds(spec, splits, ctx.seeds, ctx.device, **ctx.run_kwargs())
        for name, values in scores(config, spec, *splits.val, tta).items():
            row = rows.setdefault(name, {**candidates[name], "final_val_dice": {}})
            row["final_val_dice"][holdout] = values
            print_scores(holdout, name, values)
    predictor = {"stain": stain, "size": size, "channels": list(channels), "epochs": args.epochs, "tta": tta}
    out = {"predictor": predictor, **record(ctx, rows, all_splits)}
    write_record(ctx, out, record_name)
    return out


def epochs_args(ctx: cli.Context, epochs: int) -> argparse.Namespace:
    """The command line's arguments, with ``epochs`` (1 with --quick)."""
    return argparse.Namespace(**{**vars(ctx.args), "epochs": cli.QUICK_EPOCHS if ctx.quick else epochs})


def print_scores(holdout: str, label: str, values: list[float]) -> None:
    print(f"{holdout:8s} {label:24s} final val Dice {' '.join(f'{v:.4f}' for v in values)} "
          f"(mean {np.mean(values):.4f})", flush=True)


def record(ctx: cli.Context, rows: dict, splits_by_holdout: dict[str, Splits]) -> dict:
    """A sweep's record: where and what it ran, each hold-out's stain range, and ``rows`` (per
    candidate, its final validation Dice per hold-out and seed)."""
    return {"device": str(ctx.device), "seeds": ctx.seeds, "code": code_version(), "holdouts": list(warwick.HOLDOUTS),
            "val_size": ex2_1_segnet.VAL_SIZE, "red_share": stain_ranges(ctx, splits_by_holdout), "candidates": rows}


def code_version() -> dict:
    """The git commit the sweep ran, and whether tracked files differed from it (so that a rule's
    pre-registration can be checked against the record); None outside a git checkout."""
    def git(*args: str) -> str | None:
        try:
            return subprocess.run(["git", *args], cwd=TUNING_DIR, capture_output=True, text=True, check=True).stdout
        except (OSError, subprocess.CalledProcessError):
            return None

    commit = git("rev-parse", "HEAD")
    status = git("status", "--porcelain", "--untracked-files=no")
    return {"commit": commit.strip() if commit else None,
            "uncommitted_changes": bool(status.strip()) if status is not None else None}


def write_record(ctx: cli.Context, record: dict, name: str) -> Path:
    """Write ``record`` to tuning/<name>, or with --quick or --out-dir DIR to DIR/<name>."""
    out_dir = ctx.out_dir if ctx.args.out_dir or ctx.quick else TUNING_DIR
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / name
    path.write_text(json.dumps(record, indent=1))
    print(f"wrote {path}")
    return path
