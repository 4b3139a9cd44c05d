"""Exercise 2.3 (optional): skip connections, and accuracy at the gland boundaries.

Implement skip connections in your architecture, bringing higher resolution information into the
upsampling path. Evaluate if this improves performance. In particular, check (and visualize in the
report) if the use of skip connections leads to better accuracy at the boundary of the glands.

The Ex 2.1 network (common/segnets.py SegNet, built by ex2_1_segnet.segnet_spec, so the no-skip
runs are the very Ex 2.1 runs, loaded from the run cache) is compared with the same network plus
skip connections: at each resolution the encoder's feature map joins the up-sampled decoder
features, concatenated as in U-Net (``skip="concat"``; the decoder's 3x3 convolution then sees
twice the channels) or, with ``--skips concat sum``, also added (``skip="sum"``: no extra weights).
Everything else is identical: data, split, epochs, optimizer, learning rate, batches.

Boundary accuracy (common/boundary.py, per test image): boundary F1 at 1 and 2 pixels tolerance
(the share of predicted boundary within the tolerance of the true one, and vice versa) and the
95th-percentile Hausdorff distance HD95 between the boundaries. Each metric's mean over the 60
test images per seed, then the mean and spread over the seeds, and the per-image paired
differences, are in the results file's findings. The figures show, for the same test images
(picked by the code: the largest, the median and the smallest boundary F1 (2 px) gain from the
skips), the predicted boundaries with and without skips over the true one, and a map of boundary
errors of each.

Run:   python ex2_3_skip.py --device cuda     (or --device cpu; --quick for a smoke test)
Writes report/results/ex2_3_skip.json and report/figures/ex2_3_skip_{curves,metrics,per_image,boundaries}.{pdf,png}.
"""
import numpy as np

import ex2_1_segnet
from common import boundary_plots, cli, experiment, plotting, results, seg_analysis, seg_eval

SKIPS = ("concat",)  # skip modes compared with the no-skip network; add "sum" with --skips concat sum
SKIP_LABELS = {"concat": "concat skips (U-Net)", "sum": "sum skips"}
BASELINE_LABEL = "no skips (Ex 2.1)"
CASE_METRIC = "boundary_f1_2px"  # picks the test images shown


def main(argv: list[str] | None = None) -> list[dict]:
    parser = cli.make_parser(__doc__, epochs=ex2_1_segnet.EPOCHS, batch_size=ex2_1_segnet.BATCH_SIZE,
                             lr=ex2_1_segnet.LR, num_seeds=ex2_1_segnet.NUM_SEEDS)
    parser.add_argument("--skips", nargs="+", choices=("concat", "sum"), default=list(SKIPS),
                        help="skip modes to compare with the no-skip network (default: %(default)s)")
    ctx = cli.setup(parser, argv, __file__)
    args = ctx.args
    splits = ex2_1_segnet.load_splits(ctx)

    specs = {BASELINE_LABEL: ex2_1_segnet.segnet_spec(args)}
    specs.update({SKIP_LABELS[mode]: ex2_1_segnet.segnet_spec(args, f"segnet_skip_{mode}", skip=mode)
                  for mode in args.skips})
    configs = []
    for label, spec in specs.items():
        config = experiment.run_seeds(spec, splits, ctx.seeds, ctx.device, **ctx.run_kwargs())
        config["label"] = label
        configs.append(config)
    labels = [c["label"] for c in configs]

    test_inputs, test_targets = splits.test
    metrics = [seg_eval.per_image_metrics(c, test_targets) for c in configs]  # {metric: (seeds, images)}
    base = metrics[0]
    differences = {label: seg_eval.paired_difference(base, m) for label, m in zip(labels[1:], metrics[1:])}
    names = splits.info["names"]["test"]
    findings = {
        "metrics": {label: seg_eval.summarize_metrics(m) for label, m in zip(labels, metrics)},
        "differences_vs_no_skips": differences,
        "summary": [seg_eval.difference_sentence(BASELINE_LABEL, label, d) for label, d in differences.items()],
        "conventions": ("per seed: mean over the test images; reported: mean, sample std, min, max over seeds; "
                        "boundary F1 and HD95 as defined in common/boundary.py (4-connected inner boundary, "
                        "Euclidean pixel distances, the image border is not a boundary)"),
        "weights": {c["label"]: c["num_weights"] for c in configs},
        "per_image": {"names": names, **{label: {k: v.mean(axis=0).round(4).tolist() for k, v in m.items()}
                                          for label, m in zip(labels, metrics)}},
    }
    skip = metrics[1]
    cases = seg_eval.cases_by_difference(base[CASE_METRIC].mean(axis=0), skip[CASE_METRIC].mean(axis=0))
    findings["shown_cases"] = {what: {"index": i, "name": names[i], **{
        label: {k: float(v[:, i].mean()) for k, v in m.items()} for label, m in zip(labels, metrics)}}
        for what, i in cases.items()}
    for config in configs:
        print(results.summary_line(config))
    for line in findings["summary"]:
        print(line)
    results.write_results(ctx, "ex2_3_skip", configs, splits.info, findings)

    title = f"Ex 2.3: with and without skip connections (Adam lr={args.lr}, batch {args.batch_size})"
    plotting.plot_training_curves(configs, ctx.figures_dir, "ex2_3_skip_curves", title=title, score_label="Dice")
    per_seed = {label: {k: v.mean(axis=1) for k, v in m.items()} for label, m in zip(labels, metrics)}
    boundary_plots.plot_metric_comparison(
        per_seed, ctx.figures_dir, "ex2_3_skip_metrics", metric_labels=seg_eval.METRIC_LABELS,
        lower_is_better=seg_eval.LOWER_IS_BETTER,
        title=f"Ex 2.3: test metrics, mean over images per seed (dots), mean ± std over {len(ctx.seeds)} seeds")
    boundary_plots.plot_paired_per_image(
        {k: v.mean(axis=0) for k, v in base.items()}, {k: v.mean(axis=0) for k, v in skip.items()},
        (labels[0], labels[1]), list(base), ctx.figures_dir, "ex2_3_skip_per_image",
        metric_labels=seg_eval.METRIC_LABELS, title="Ex 2.3: per test image, mean over seeds")
    shown = list(cases.values())
    images = seg_analysis.display_images(test_inputs[shown], splits.info["normalisation"])
    preds = [seg_analysis.test_predictions(c, 0).numpy() for c in configs]
    rows = [{"image": images[k], "truth": test_targets[i].cpu().numpy(), "preds": [p[i] for p in preds],
             "label": f"{what} in {seg_eval.METRIC_LABELS[CASE_METRIC]}\n{names[i]}",
             "captions": [f"Dice {m['dice'][0, i]:.3f}, BF1(2px) {m['boundary_f1_2px'][0, i]:.3f}\n"
                          f"HD95 {m['hd95'][0, i]:.1f}" for m in metrics]}
            for k, (what, i) in enumerate(cases.items())]
    boundary_plots.plot_boundary_cases(rows, labels, ctx.figures_dir, "ex2_3_skip_boundaries",
                                       title=f"Ex 2.3: boundaries with and without skips (seed {ctx.seeds[0]})")
    return configs


if __name__ == "__main__":
    cli.run(main)
