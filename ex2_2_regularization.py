"""Exercise 2.2: techniques for better performance on unseen data, on the WARWICK segmentation.

Evaluate on the same segmentation task three different techniques from the course for improving
performance on unseen data (split the training data into training + validation for tuning).
Complement the raw numbers with your own opinion of each technique, including comments on
over- and under-fitting.

The baseline is the Exercise 2.1 configuration, which already uses two of the techniques (chosen
there on validation Dice): batch normalisation and augmentation by random flips / 90-degree
rotations. Each technique is therefore measured by switching exactly one thing relative to that
baseline (the very Ex 2.1 run, loaded from the run cache), everything else identical (initial
weights where the architecture allows, batches, epochs, optimizer, learning rate schedule):

* augmentation:  removed (no flips / rotations), and, separately, extended by a small random
                 affine + elastic warp of image and mask alike (common/seg_augment.py);
* batch norm:    removed (convolutions with biases, no BatchNorm2d);
* dropout:       added: channel dropout (Dropout2d) after the bottleneck, p = DROPOUT;
* weight decay:  added: an L2 penalty WEIGHT_DECAY * |w|^2 / 2 through Adam's weight_decay.

The 15 training images held out as the validation set are the only basis for judging the
techniques (final-epoch validation Dice, the train-validation gap and the curves); the test Dice
of each configuration is computed once, at the end, and reported next to it.

Run:   python ex2_2_regularization.py --device cuda     (or --device cpu; --quick for a smoke test)
Writes report/results/ex2_2_regularization.json and report/figures/ex2_2_*.{pdf,png}.
"""
import numpy as np

import ex2_1_segnet
from common import cli, experiment, latex, plotting, results, seg_analysis, seg_plots
from common.seg_augment import SegmentationAugment

DEFORM = SegmentationAugment(dihedral=True, rotate_deg=10, scale=0.1, shear_deg=5, translate=0.03, elastic_px=3)
DROPOUT = 0.2
WEIGHT_DECAY = 1e-3


def main(argv: list[str] | None = None) -> list[dict]:
    parser = cli.make_parser(__doc__, epochs=ex2_1_segnet.EPOCHS, batch_size=ex2_1_segnet.BATCH_SIZE,
                             lr=ex2_1_segnet.LR, num_seeds=ex2_1_segnet.NUM_SEEDS)
    ctx = cli.setup(parser, argv, __file__)
    args = ctx.args
    splits = ex2_1_segnet.load_splits(ctx)

    spec = ex2_1_segnet.segnet_spec
    specs = {
        "baseline (Ex 2.1)": spec(args, "baseline"),
        "no augmentation": spec(args, "no_augmentation", train_transform=None),
        "+ affine/elastic": spec(args, "deform", train_transform=DEFORM),
        "no batch norm": spec(args, "no_batch_norm", batch_norm=False),
        f"+ dropout {DROPOUT}": spec(args, "dropout", dropout=DROPOUT),
        f"+ weight decay {WEIGHT_DECAY:g}": spec(args, "weight_decay", weight_decay=WEIGHT_DECAY),
    }
    configs = []
    for label, run_spec in specs.items():
        config = experiment.run_seeds(run_spec, splits, ctx.seeds, ctx.device, **ctx.run_kwargs())
        config["label"] = label
        configs.append(config)

    baseline = configs[0]
    findings = {"techniques": {c["label"]: _compare(c, baseline) for c in configs},
                "chosen_on": "final-epoch validation Dice (mean over seeds); test Dice reported once per configuration"}
    for config in configs:
        print(results.summary_line(config))
        print("   " + findings["techniques"][config["label"]]["summary"])
    test_targets = splits.test[1]
    dice = np.stack([seg_analysis.per_image_dice(c, test_targets) for c in configs])  # (configs, seeds, images)
    findings["per_image_test_dice"] = {"names": splits.info["names"]["test"],
                                       "per_config_mean_over_seeds": {c["label"]: d.mean(0).round(5).tolist()
                                                                     for c, d in zip(configs, dice)}}
    results.write_results(ctx, "ex2_2_regularization", configs, splits.info, findings)

    title = f"Ex 2.2: {{}} vs the Ex 2.1 baseline (Adam lr={args.lr}, batch {args.batch_size}, {args.epochs} epochs)"
    for config in configs[1:]:
        plotting.plot_training_curves([baseline, config], ctx.figures_dir, f"ex2_2_{config['name']}_curves",
                                      title=title.format(config["label"]), score_label="Dice")
    for what, key in (("validation", "final_val_dice"), ("test", "test_dice")):
        plotting.plot_bars({c["label"]: c["summary"][key] for c in configs}, ctx.figures_dir, f"ex2_2_{what}_dice",
                           ylabel=f"{what} Dice", title=f"Ex 2.2: {what} Dice, mean and range over "
                           f"{len(ctx.seeds)} seeds", ylim=(max(0.0, float(dice.min()) - 0.05), 1.0),
                           annotate="{:.3f}")
    seg_plots.plot_dice_distribution(dice, ctx.figures_dir, "ex2_2_dice_per_image", labels=[c["label"] for c in configs],
                                     title="Ex 2.2: per-image test Dice of each configuration")
    return configs


def _compare(config: dict, baseline: dict) -> dict:
    """Validation-based comparison with the baseline, and the test Dice reported alongside."""
    def final(c, key):
        return float(np.mean([r["history"]["epochs"][-1][key] for r in c["runs"]]))

    val, base_val = final(config, "val_score"), final(baseline, "val_score")
    gap = final(config, "train_eval_score") - val
    base_gap = final(baseline, "train_eval_score") - base_val
    clear = latex.beyond_spread(val - base_val, config["summary"]["final_val_dice"]["std"],
                                baseline["summary"]["final_val_dice"]["std"])  # the report's comparison rule
    effect = ("baseline" if config is baseline else
              "no clear difference on validation (within the seed spread)" if not clear else
              "better than the baseline on validation" if val > base_val else
              "worse than the baseline on validation")
    verdicts = config["summary"]["verdicts"]
    test = config["summary"]["test_dice"]
    return {
        "final_val_dice": val, "val_dice_change": val - base_val, "train_val_gap": gap,
        "train_val_gap_change": gap - base_gap, "effect": effect, "fit_verdicts": verdicts,
        "test_dice": test["mean"], "test_dice_std": test["std"],
        "summary": (f"{config['label']}: validation Dice {val:.4f} ({val - base_val:+.4f} vs baseline), "
                    f"train-validation gap {gap:+.4f} ({gap - base_gap:+.4f}); {effect}; curves: "
                    f"{', '.join(sorted(set(verdicts)))}; test Dice {test['mean']:.4f} ± {test['std']:.4f}"),
    }


if __name__ == "__main__":
    cli.run(main)
