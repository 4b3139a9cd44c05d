"""The best segmentation model: the ingredients of Exercises 2.2-2.4 combined (not an exercise of its own).

A U-Net (skip connections, Ex 2.3) whose every conv + ReLU is a residual block of two (Ex 2.4), with
batch norm and flips/rotations (Ex 2.2), trained with Adam on a one-cycle schedule, and predicting
with test-time augmentation: the mean class probability over the 8 flips and rotations of an image.
Every choice was made on validation images by the sweeps in tuning/ (tuning/README.md: what each
compared, by which rule, what it chose). The final model is that configuration trained on all 85
training images. Shown: its test Dice, and the best and the worst test image.

Run:  python ex2_5_best.py --device cuda     (or --device cpu; --quick: a smoke test)
"""
import functools
import json
from pathlib import Path

import numpy as np
import torch
from torch import nn

from common import augment, cli, evaluation, experiment, metrics, models, plots, results, warwick

NETWORK = {"channels": (8, 16, 32, 64), "skip": "concat", "block_depth": 2, "residual": True, "batch_norm": True}
AUGMENT = augment.SegmentationAugment(dihedral=True)  # random flips + 90-degree rotations
LOSS = nn.CrossEntropyLoss()
LR = 1e-2  # Adam; one-cycle: warm up to this peak, then anneal to ~0
BATCH_SIZE = 10
EPOCHS = 100
SEEDS = 3
TTA = True  # predict with the mean probability over the 8 flips/rotations
VALIDATION_RECORD = Path(__file__).resolve().parent / "tuning" / "seg_size_sweep.json"  # where it was chosen
VALIDATED_AS = "c8 e100 + TTA"  # its name there


def config(args, name: str = "best", label: str | None = None, augmentation=AUGMENT, **network) -> experiment.Config:
    """This model's training; the tuning sweeps build their candidates with it (``network``
    overrides NETWORK)."""
    return experiment.Config(
        name, model=functools.partial(models.SegNet, **{**NETWORK, **network}), loss=LOSS,
        optimizer=lambda params: torch.optim.Adam(params, lr=args.lr),
        scheduler=lambda optimizer, steps: torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=args.lr,
                                                                               total_steps=args.epochs * steps),
        scheduler_per_batch=True, epochs=args.epochs, batch_size=args.batch_size, augment=augmentation, score="dice",
        label=label)


def main(argv=None) -> dict:
    parser = cli.make_parser(__doc__, epochs=EPOCHS, batch_size=BATCH_SIZE, lr=LR, num_seeds=SEEDS)
    ctx = cli.setup(parser, argv, __file__)
    splits = warwick.load_splits(ctx.data_dir, ctx.device, seed=ctx.seed, quick=ctx.quick,
                                 holdout=warwick.NO_HOLDOUT)

    [refit] = experiment.run_all([config(ctx.args, "best_refit", "best model, single pass")], splits, ctx)

    inputs, targets = splits.test
    logits = evaluation.tta_logits(refit, inputs) if TTA else refit.test_logits()
    final = evaluation.with_test_prediction(refit, logits, targets, "best", "best model, with TTA" if TTA else
                                            "best model, single pass", "TTA" if TTA else "single pass")
    masks = [evaluation.gland_masks(lg) for lg in logits]
    dice = evaluation.per_image(refit, targets, masks=masks)["dice"]  # (seeds, images)
    best, worst = int(dice.mean(0).argmax()), int(dice.mean(0).argmin())
    names, norm = splits.info["names"]["test"], splits.info["normalisation"]
    validated = json.loads(VALIDATION_RECORD.read_text())["candidates"][VALIDATED_AS]["final_val_dice"]
    findings = {
        "test_dice": metrics.mean_interval(dice.mean(1)),
        "tta_vs_single_pass": metrics.compare(
            [r["test"]["dice"] for r in refit.records], dice.mean(1),
            evaluation.per_image(refit, targets)["dice"].mean(0), dice.mean(0), score="dice"),
        "validation_dice_when_chosen": {holdout: float(np.mean(v)) for holdout, v in validated.items()},
        **{what: evaluation.describe_case(i, dice, inputs, targets, masks[0], names, norm)
           for what, i in (("best_case", best), ("worst_case", worst))},
        "per_image_test_dice": dice.round(5).tolist()}
    results.write(ctx, "ex2_5_best", [refit, final], splits, findings)
    plots.curves([refit], ctx.figures_dir / "ex2_5_best_curves")
    plots.segmentation_cases(splits, masks[0], dice, {"best": best, "worst": worst},
                             ctx.figures_dir / "ex2_5_best_cases")
    return final


if __name__ == "__main__":
    cli.run(main)
