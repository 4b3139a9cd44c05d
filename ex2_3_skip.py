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
import numpy as np

import ex2_1_segnet
from common import cli, evaluation, experiment, plots, results, warwick

SKIP = "concat"  # U-Net: concatenation; "sum" adds instead


def main(argv=None) -> list[experiment.Runs]:
    parser = cli.make_parser(__doc__, epochs=ex2_1_segnet.EPOCHS, batch_size=ex2_1_segnet.BATCH_SIZE,
                             lr=ex2_1_segnet.LR, num_seeds=ex2_1_segnet.SEEDS)
    ctx = cli.setup(parser, argv, __file__)
    splits = warwick.load_splits(ctx.data_dir, ctx.device, seed=ctx.seed, quick=ctx.quick)

    plain, skip = experiment.run_all([
        ex2_1_segnet.config(ctx.args, "segnet", "no skips (Ex 2.1)"),
        ex2_1_segnet.config(ctx.args, f"segnet_skip_{SKIP}", "skips (U-Net)", skip=SKIP),
    ], splits, ctx)

    targets = splits.test[1]
    scores = [evaluation.per_image(runs, targets, boundary=True) for runs in (plain, skip)]  # {metric: (seeds, images)}
    gain = scores[1]["boundary_f1_2px"].mean(0) - scores[0]["boundary_f1_2px"].mean(0)
    order = np.argsort(gain)
    shown = {"largest gain": int(order[-1]), "median gain": int(order[(len(order) - 1) // 2]),
             "largest loss": int(order[0])}
    names = splits.info["names"]["test"]
    findings = {"metrics": {r.name: evaluation.summarize_per_image(s) for r, s in zip((plain, skip), scores)},
                "skip_vs_plain": evaluation.compare_configs(*scores),
                "shown_cases": {what: {"index": i, "name": names[i]} for what, i in shown.items()}}
    results.write(ctx, "ex2_3_skip", [plain, skip], splits, findings)
    plots.curves([plain, skip], ctx.figures_dir / "ex2_3_skip_curves")
    plots.boundary_crops(splits, [plain, skip], scores, shown, ctx.figures_dir / "ex2_3_skip_boundaries")
    return [plain, skip]


if __name__ == "__main__":
    cli.run(main)
