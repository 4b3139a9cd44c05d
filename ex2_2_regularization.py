"""Exercise 2.2: techniques for better performance on unseen data, on the WARWICK segmentation.

Evaluate three techniques from the course that improve performance on unseen data (split the
training data into training and validation for tuning). Complement the numbers with your own
opinion of each technique, and comment on over- and under-fitting.

The baseline is the Exercise 2.1 network, which already uses two of the techniques, batch norm and
augmentation by flips and 90-degree rotations. Each technique is measured by changing that one thing:
augmentation removed; batch norm removed; weight decay added. Everything else is the same (the Ex 2.1
training: Adam, cosine schedule, cross-entropy; initial weights where the architecture allows;
batches), except that the network without batch norm gets what such a network needs to train at all: He
initialisation by true fan-in and a learning rate of its own, chosen on validation (tuning/convergence.py,
stage 4; --lr does not change it). Judged on the 15 validation images; the test Dice is computed once per
variant.

Run:  python ex2_2_regularization.py --device cuda     (or --device cpu; --quick: a smoke test)
"""
from pathlib import Path

import numpy as np

from common import cli, evaluation, plots, results, text, train, warwick

# Exercise 2.1's network and training: the baseline each variant changes one thing of.
SEGNET = {"class": "SegNet", "channels": (8, 16, 32, 64), "up_kernel": 4, "init": "kaiming", "batch_norm": True,
          "skip": None, "block_depth": 1, "residual": False}  # common/models.py SegNet
DIHEDRAL = {"class": "SegmentationAugment", "dihedral": True}  # random flips + 90-degree rotations
LOSS = {"class": "CrossEntropyLoss"}  # per pixel: the softmax over the two channels, cross-entropy against the mask
LR = 0.01  # Adam, annealed to 0 over the epochs along a cosine; chosen with EPOCHS on validation
BATCH_SIZE = 10
EPOCHS = 80  # with LR: the shortest schedule within 0.008 of the best (tuning/convergence.py, stage 3)
SEEDS = 5  # enough for the paired comparisons to resolve differences of the size that matters
WEIGHT_DECAY = 1e-3  # Adam's L2 penalty: the best of 1e-4, 1e-3, 1e-2 on validation (tuning/convergence.py, stage 5)
# Without batch norm, at LR the network predicts one class. It gets Ex 2.4's initialisation for networks without
# batch norm (He by true fan-in: "kaiming" counts a transposed convolution's fan-in as in_channels*k*k, and the
# decoder would lose signal at each up-sampling) and the learning rate chosen for it on validation
NO_BN_INIT = "he"
NO_BN_LR = 0.003  # tuning/convergence.py, stage 4 (family segnet_nobn): the best of 3e-4, 1e-3, 3e-3, 1e-2

EXERCISE = "ex2_2_regularization"  # its results file and figures


def main(argv=None) -> list[train.Runs]:
    parser = cli.make_parser(__doc__, epochs=EPOCHS, batch_size=BATCH_SIZE, lr=LR, num_seeds=SEEDS)
    ctx = cli.setup(parser, argv, __file__)
    args = ctx.args
    if args.figures_only:  # make figures: from the results file alone, no data, no training
        return draw(*results.read(ctx.out_dir, EXERCISE), ctx.figures_dir)
    splits = warwick.load_splits(ctx.data_dir, ctx.device, seed=ctx.seed, quick=ctx.quick)
    config = {"model": SEGNET, "loss": LOSS, "optimizer": {"class": "Adam", "lr": args.lr},
              "schedule": {"class": "CosineAnnealingLR"}, "augment": DIHEDRAL, "epochs": args.epochs,
              "batch_size": args.batch_size, "score": "dice"}

    configs = [
        train.run("baseline", config, splits, ctx, "baseline (Ex 2.1)"),
        train.run("no_augmentation", {**config, "augment": None}, splits, ctx, "no augmentation"),
        train.run("no_batch_norm", {**config, "model": {**SEGNET, "batch_norm": False, "init": NO_BN_INIT},
                                    "optimizer": {**config["optimizer"], "lr": NO_BN_LR}}, splits, ctx, "no batch norm"),
        train.run("weight_decay", {**config, "optimizer": {**config["optimizer"], "weight_decay": WEIGHT_DECAY}},
                  splits, ctx, f"+ weight decay {WEIGHT_DECAY:g}"),
    ]
    baseline = configs[0]
    findings = {"versus_baseline": {c.name: {"test": evaluation.compare_runs(baseline, c, splits.test[1]),
                                             "validation": evaluation.compare_runs(baseline, c, on="validation")}
                                    for c in configs[1:]}}
    final_train = {c.name: text.score("dice", np.mean([r["history"]["epochs"][-1]["train_eval_score"] for r in c.records]))
                   for c in configs}
    labels = {c.name: c.label for c in configs}  # the table's rows, which the sentence states too
    # each change's effect on the baseline, for the answer's sentence: "makes it worse", "makes no measurable difference"
    numbers = {**{f"effect_{name}": (text.claim("makes no measurable difference", labels[name])
                                     if v["test"]["outcome"] == "unresolved" else f"makes it {text.outcome(v['test'], labels[name])}")
                  for name, v in findings["versus_baseline"].items()},
               # how well each fits its own training images: does a change act on fitting or on generalising?
               **{f"train_{name}": dice for name, dice in final_train.items()}}
    table = [text.row(c.label, findings["versus_baseline"][c.name]["test"]) for c in configs[1:]]
    draw(results.write(ctx, EXERCISE, configs, splits, findings, numbers=numbers, table=table), {}, ctx.figures_dir)
    return configs


def draw(record: dict, arrays: dict, figures: Path) -> None:
    plots.variant_grid(record["configs"], figures / "ex2_2_regularization")


if __name__ == "__main__":
    cli.run(main)
