"""The best segmentation model: the ingredients of Exercises 2.2-2.4 combined (not an exercise of its own).

A U-Net (skip connections, Ex 2.3) whose every conv + ReLU is a residual block of two (Ex 2.4), with
batch norm and flips/rotations (Ex 2.2), trained with Adam on a one-cycle schedule, and predicting
with test-time augmentation: the mean class probability over the 8 flips and rotations of an image.
Every choice was made on validation images by the sweeps in tuning/ (tuning/README.md: what each
compared, by which rule, what it chose), though test results prompted some of those rounds. The final model is that configuration trained on all 85
training images. Shown: its test Dice, and the best and the worst test image.

Run:  python ex2_5_best.py --device cuda     (or --device cpu; --quick: a smoke test)
"""
import json
from pathlib import Path

import numpy as np

from common import cli, evaluation, metrics, plots, results, text, train, warwick

UNET = {"class": "SegNet", "channels": (8, 16, 32, 64), "up_kernel": 2, "init": "default", "batch_norm": True,
        "skip": "concat", "block_depth": 2, "residual": True}  # common/models.py SegNet
DIHEDRAL = {"class": "SegmentationAugment", "dihedral": True}  # random flips + 90-degree rotations
LOSS = {"class": "CrossEntropyLoss"}
LR = 1e-2  # Adam; one-cycle: warm up to this peak, then anneal to ~0
BATCH_SIZE = 10
EPOCHS = 100
SEEDS = 3
VALIDATION_RECORD = Path(__file__).resolve().parent / "tuning" / "seg_size_sweep.json"  # where it was chosen
VALIDATED_AS = "c8 e100 + TTA"  # its name there

EXERCISE = "ex2_5_best"  # its results file and figures


def main(argv=None) -> dict:
    parser = cli.make_parser(__doc__, epochs=EPOCHS, batch_size=BATCH_SIZE, lr=LR, num_seeds=SEEDS)
    ctx = cli.setup(parser, argv, __file__)
    args = ctx.args
    if args.figures_only:  # make figures: from the results file alone, no data, no training
        return draw(*results.read(ctx.out_dir, EXERCISE, ("case_image", "case_truth", "case_pred")), ctx.figures_dir)
    splits = warwick.load_splits(ctx.data_dir, ctx.device, seed=ctx.seed, quick=ctx.quick,
                                 holdout=warwick.NO_HOLDOUT)
    config = {"model": UNET, "loss": LOSS, "optimizer": {"class": "Adam", "lr": args.lr},
              "schedule": {"class": "OneCycleLR"}, "augment": DIHEDRAL, "epochs": args.epochs,
              "batch_size": args.batch_size, "score": "dice"}

    refit = train.run("best_refit", config, splits, ctx, "best model, single pass")

    inputs, targets = splits.test
    # test-time augmentation: predict with the mean probability over the 8 flips/rotations of an image
    logits = evaluation.tta_logits(refit, inputs)
    final = evaluation.with_test_prediction(refit, logits, targets, "best", "best model, with TTA", "TTA")
    masks = [evaluation.gland_masks(lg) for lg in logits]
    dice = evaluation.per_image(refit, targets, masks=masks)["dice"]  # (seeds, images)
    best, worst = int(dice.mean(0).argmax()), int(dice.mean(0).argmin())
    names, norm = splits.info["names"]["test"], splits.info["normalisation"]
    validated = json.loads(VALIDATION_RECORD.read_text())["candidates"][VALIDATED_AS]["final_val_dice"]
    findings = {
        "test_dice": metrics.mean_interval(dice.mean(1)),
        "tta_vs_single_pass": metrics.compare(
            [r["test"]["dice"] for r in refit.records], dice.mean(1),
            evaluation.per_image(refit, targets)["dice"], dice, score="dice"),
        "validation_dice_when_chosen": {holdout: float(np.mean(v)) for holdout, v in validated.items()},
        **{what: evaluation.describe_case(i, dice, inputs, targets, masks[0], names, norm)
           for what, i in (("best_case", best), ("worst_case", worst))},
        "red_share": evaluation.red_share_summary(splits, worst),  # where the worst image lies against the training images
        "per_image_test_dice": dice.round(5).tolist()}
    arrays = evaluation.case_arrays(splits, [worst, best], [masks[0]])  # worst on top, as in Ex 2.1
    test_dice, red, worst_case = findings["test_dice"], findings["red_share"], findings["worst_case"]
    as_red, redder = red["case"]["training_as_red"], red["test"]["above_training_max"]
    numbers = {"test_dice": text.score("dice", test_dice["mean"]),
               "test_dice_ci": f"{text.score('dice', test_dice['ci_low'])} to {text.score('dice', test_dice['ci_high'])}",
               **text.cells("tta", findings["tta_vs_single_pass"]),
               "worst_name": worst_case["name"].split("/")[-1], "worst_dice": text.score("dice", worst_case["dice_mean"]),
               "worst_red_share": f"{red['case']['red_share']:.2f}",
               "worst_vs_training": ("redder than every training image" if as_red == 0 else
                                     f"as red as {as_red} of the {red['case']['training_images']} training images"),
               "staining": "every test image lies within the training images' range of staining",
               "redder": f"{redder} of {len(names)}", "redder_dice": "–", "other_dice": text.score("dice", dice.mean())}
    if redder:  # does staining beyond the training images' explain more than the one worst image?
        beyond = np.isin(np.arange(len(names)), red["test"]["beyond_training"])
        image_dice = dice.mean(0)  # each image's Dice, mean over the seeds
        numbers["redder_dice"], numbers["other_dice"] = text.score("dice", image_dice[beyond].mean()), "–"
        numbers["staining"] = (f"{redder} of the {len(names)} test images {'lies' if redder == 1 else 'lie'} beyond the "
                               "reddest training image")
        if redder < len(names):
            lower = image_dice[beyond].mean() < image_dice[~beyond].mean()
            numbers["other_dice"] = text.score("dice", image_dice[~beyond].mean())
            numbers["staining"] += (f", and {'it scores' if redder == 1 else 'they score'} "
                                    f"{'lower' if lower else 'no lower'} than the others")
    draw(results.write(ctx, EXERCISE, [refit, final], splits, findings, arrays, numbers), arrays, ctx.figures_dir)
    return final


def draw(record: dict, arrays: dict, figures: Path) -> None:
    findings = record["findings"]
    plots.curves(record["configs"][:1], figures / "ex2_5_best_curves")
    cases = {what: {"name": findings[f"{what}_case"]["name"], "dice": findings[f"{what}_case"]["dice_per_seed"][0],
                    "mean": findings[f"{what}_case"]["dice_mean"]} for what in ("worst", "best")}  # seed 0 shown
    plots.segmentation_cases(cases, arrays, figures / "ex2_5_best_cases")


if __name__ == "__main__":
    cli.run(main)
