"""Exercise 2.3 (optional): skip connections, and accuracy at the gland boundaries.

Implement skip connections that bring higher-resolution information into the up-sampling path.
Does this improve performance? In particular, check (and show) whether skip connections lead to
better accuracy at the boundaries of the glands.

The Exercise 2.1 network (its runs reused) against the same network with U-Net skip connections: at
each resolution the encoder's features are concatenated to the up-sampled decoder features. The
same training otherwise. Boundary accuracy per test image (common/metrics.py): boundary F1 within 1
and 2 pixels and the 95th-percentile Hausdorff distance (HD95) between predicted and true boundary.

Run:  python ex2_3_skip.py --device cuda     (or --device cpu; --quick: a smoke test)
"""
from pathlib import Path

import numpy as np

from common import cli, evaluation, plots, results, text, train, warwick

# Exercise 2.1's network and training; its runs are the network without skips.
SEGNET = {"class": "SegNet", "channels": (8, 16, 32, 64), "up_kernel": 4, "init": "kaiming", "batch_norm": True,
          "skip": None, "block_depth": 1, "residual": False}  # common/models.py SegNet
DIHEDRAL = {"class": "SegmentationAugment", "dihedral": True}  # random flips + 90-degree rotations
LOSS = {"class": "CrossEntropyLoss"}  # per pixel: the softmax over the two channels, cross-entropy against the mask
LR = 0.01  # Adam, annealed to 0 over the epochs along a cosine; chosen with EPOCHS on validation
BATCH_SIZE = 10
EPOCHS = 80  # with LR: the shortest schedule within 0.008 of the best (tuning/convergence.py, stage 3)
SEEDS = 5  # enough for the paired comparisons to resolve differences of the size that matters
SKIP = "concat"  # U-Net: concatenation; "sum" adds instead

EXERCISE = "ex2_3_skip"  # its results file and figures


def main(argv=None) -> list[train.Runs]:
    parser = cli.make_parser(__doc__, epochs=EPOCHS, batch_size=BATCH_SIZE, lr=LR, num_seeds=SEEDS)
    ctx = cli.setup(parser, argv, __file__)
    args = ctx.args
    if args.figures_only:  # make figures: from the results file alone, no data, no training
        return draw(*results.read(ctx.out_dir, EXERCISE, ("case_image", "case_truth", "case_pred_0", "case_pred_1")), ctx.figures_dir)
    splits = warwick.load_splits(ctx.data_dir, ctx.device, seed=ctx.seed, quick=ctx.quick)
    config = {"model": SEGNET, "loss": LOSS, "optimizer": {"class": "Adam", "lr": args.lr},
              "schedule": {"class": "CosineAnnealingLR"}, "augment": DIHEDRAL, "epochs": args.epochs,
              "batch_size": args.batch_size, "score": "dice"}

    plain = train.run("segnet", config, splits, ctx, "no skips (Ex 2.1)")
    skip = train.run(f"segnet_skip_{SKIP}", {**config, "model": {**SEGNET, "skip": SKIP}}, splits, ctx, "skips (U-Net)")

    targets = splits.test[1]
    scores = [evaluation.per_image(runs, targets, boundary=True) for runs in (plain, skip)]  # {metric: (seeds, images)}
    gain = scores[1]["boundary_f1_2px"].mean(0) - scores[0]["boundary_f1_2px"].mean(0)
    order = np.argsort(gain)
    shown = {"best for skips": int(order[-1]), "worst for skips": int(order[0])}  # by the change in F1
    names = splits.info["names"]["test"]
    findings = {"metrics": {r.name: evaluation.summarize_per_image(s) for r, s in zip((plain, skip), scores)},
                "skip_vs_plain": evaluation.compare_configs(*scores),
                "shown_cases": {what: {"index": i, "name": names[i],  # per network: the first seed's, as drawn
                                       **{m: [float(s[m][0, i]) for s in scores] for m in ("boundary_f1_2px", "hd95")},
                                       # and the mean over the seeds, which chose the image
                                       "boundary_f1_2px_mean": [float(s["boundary_f1_2px"][:, i].mean()) for s in scores]}
                                for what, i in shown.items()}}
    shown_metrics = {"dice": "Dice", "boundary_f1_2px": "boundary F1 (2 px)", "hd95": "HD95 (px; lower is better)"}
    table = [text.row(label, findings["skip_vs_plain"][m]) for m, label in shown_metrics.items()]
    # (subject, predicate) pairs: the report words them as one sentence (text.grouped)
    numbers = {"skip_vs_plain": [(f"the {label.split(' (px')[0]}", text.outcome(findings["skip_vs_plain"][m], label))
                                 for m, label in shown_metrics.items()]}
    arrays = evaluation.case_arrays(splits, list(shown.values()),
                                    [evaluation.gland_masks(r.test_logits()[0]) for r in (plain, skip)])
    draw(results.write(ctx, EXERCISE, [plain, skip], splits, findings, arrays, numbers, table), arrays, ctx.figures_dir)
    return [plain, skip]


def draw(record: dict, arrays: dict, figures: Path) -> None:
    plots.curves(record["configs"], figures / "ex2_3_skip_curves")
    plots.boundary_crops(record["findings"]["shown_cases"], arrays, [c["label"] for c in record["configs"]],
                         figures / "ex2_3_skip_boundaries")


if __name__ == "__main__":
    cli.run(main)
