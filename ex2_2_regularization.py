"""Exercise 2.2: techniques for better performance on unseen data, on the WARWICK segmentation.

Evaluate three techniques from the course that improve performance on unseen data (split the
training data into training and validation for tuning). Complement the numbers with your own
opinion of each technique, and comment on over- and under-fitting.

The baseline is the Exercise 2.1 network, which already uses two of the techniques, batch norm and
augmentation by flips and 90-degree rotations. Each technique is measured by changing that one thing:
augmentation removed; batch norm removed; weight decay added. Everything else is the same (the Ex 2.1
training: Adam, cosine schedule, cross-entropy; initial weights where the architecture allows;
batches). Judged on the 15 validation images; the test Dice is computed once per variant.

Run:  python ex2_2_regularization.py --device cuda     (or --device cpu; --quick: a smoke test)
"""
import ex2_1_segnet
from common import cli, evaluation, experiment, plots, results, warwick

WEIGHT_DECAY = 1e-3  # Adam's L2 penalty


def main(argv=None) -> list[experiment.Runs]:
    parser = cli.make_parser(__doc__, epochs=ex2_1_segnet.EPOCHS, batch_size=ex2_1_segnet.BATCH_SIZE,
                             lr=ex2_1_segnet.LR, num_seeds=ex2_1_segnet.SEEDS)
    ctx = cli.setup(parser, argv, __file__)
    args, config = ctx.args, ex2_1_segnet.config
    splits = warwick.load_splits(ctx.data_dir, ctx.device, seed=ctx.seed, quick=ctx.quick)

    configs = experiment.run_all([
        config(args, "baseline", "baseline (Ex 2.1)"),
        config(args, "no_augmentation", "no augmentation", augmentation=None),
        config(args, "no_batch_norm", "no batch norm", batch_norm=False),
        config(args, "weight_decay", f"+ weight decay {WEIGHT_DECAY:g}", weight_decay=WEIGHT_DECAY),
    ], splits, ctx)

    baseline = configs[0]
    findings = {"versus_baseline": {c.name: {"test": evaluation.compare_runs(baseline, c, splits.test[1]),
                                             "validation": evaluation.compare_runs(baseline, c, on="validation")}
                                    for c in configs[1:]}}
    results.write(ctx, "ex2_2_regularization", configs, splits, findings)
    plots.variant_grid(configs, ctx.figures_dir / "ex2_2_regularization")
    return configs


if __name__ == "__main__":
    cli.run(main)
