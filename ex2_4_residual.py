"""Exercise 2.4 (optional): residual connections, and whether they let deeper networks train.

Implement residual connections in your architecture. Evaluate if this improves performance. In
particular, check if the inclusion of residual connections allows training of deeper networks by
replacing each Convolution+activation pair in your architecture with a block of two or three
similar pairs, where the residual connection bridges over each such block. Check the speed of
learning with and without the residual connections in place (for otherwise identical
architectures).

Starting from the Ex 2.1 network (ex2_1_segnet.segnet_spec; its runs are the block depth 1
reference, loaded from the run cache), every "conv 3x3 + ReLU" of the encoder, bottleneck and
decoder becomes a block of BLOCK_DEPTHS = 2 or 3 such pairs (common/segnets.py ConvStage;
with the Ex 2.1 network's 7 stages, 3 encoder + bottleneck + 3 decoder, block depth 3 puts 21
convolutions + 3 transposed convolutions + the 1x1 head on the longest path, against 7 + 3 + 1).
Each depth is trained plain and with a residual connection bridging each block,
``relu(F(x) + x)``, where x passes through a 1x1 convolution if the block changes the channel
count. Plain and residual networks of a depth differ only in these shortcuts (about 3,000
weights of 1x1 projections); initialisation, data, split, batches, epochs, optimizer and learning-rate
schedule are the Ex 2.1 ones.

Since batch normalisation (in every stage of the Ex 2.1 network) already keeps deep plain networks
trainable, NO_BN_DEPTHS are also trained without it, plain and residual, where the shortcut is the
only help the depth gets. The Ex 2.1 initialisation ("kaiming") gives the transposed convolutions a
quarter of He's variance, which batch norm makes irrelevant but which, without it, shrinks the
decoder's signal at every up-sampling; so the networks without batch norm are trained once more with
NO_BN_CHECK_INIT ("he": the transposed convolutions by their true fan-in), to see whether the
comparison depends on it.

Speed of learning: training loss against epoch and against training seconds, the first epoch
(and the seconds) at which each run's validation Dice reaches DICE_THRESHOLD, and the final test
Dice, over the seeds; all in the results file's findings.

Run:   python ex2_4_residual.py --device cuda     (or --device cpu; --quick for a smoke test)
Writes report/results/ex2_4_residual.json and report/figures/ex2_4_residual_{depth2,depth3,depth3_nobn,depth3_nobn_he}_{epoch,time}.{pdf,png}
and report/figures/ex2_4_residual_summary.{pdf,png}.
"""
import numpy as np
import torch

import ex2_1_segnet
from common import boundary_plots, cli, experiment, plotting, results, seg_eval
from common.metrics import dice_coefficient

BLOCK_DEPTHS = (2, 3)  # conv+ReLU pairs per block (the Ex 2.1 network has 1)
NO_BN_DEPTHS = (3,)  # also trained without batch normalisation, where depth is harder to train
NO_BN_CHECK_INIT = "he"  # ... and, without batch norm, also with this initialisation (see the docstring)
DICE_THRESHOLD = 0.75  # validation Dice whose first epoch measures the speed of learning; above the
# ~0.64 of the trivial "everything is gland" prediction, below the Ex 2.1 network's final ~0.80
BASELINE_LABEL = "depth 1 (Ex 2.1)"


def label(depth: int, residual: bool, batch_norm: bool = True, init: str | None = None) -> str:
    """``init`` None: the Ex 2.1 network's."""
    return (f"depth {depth}, {'residual' if residual else 'plain'}{'' if batch_norm else ', no BN'}"
            f"{f', {init} init' if init else ''}")


def panel_name(depth: int, batch_norm: bool, init: str | None, residual: bool | None = None) -> str:
    """File-name form of a figure panel ("depth3_nobn_he"), or with ``residual`` of one of its
    networks ("depth3_residual_nobn_he")."""
    kind = "" if residual is None else f"_{'residual' if residual else 'plain'}"
    return f"depth{depth}{kind}{'' if batch_norm else '_nobn'}{f'_{init}' if init else ''}"


def main(argv: list[str] | None = None) -> list[dict]:
    parser = cli.make_parser(__doc__, epochs=ex2_1_segnet.EPOCHS, batch_size=ex2_1_segnet.BATCH_SIZE,
                             lr=ex2_1_segnet.LR, num_seeds=ex2_1_segnet.NUM_SEEDS)
    parser.add_argument("--depths", nargs="+", type=int, default=list(BLOCK_DEPTHS),
                        help="block depths to compare with the Ex 2.1 network (default: %(default)s)")
    parser.add_argument("--no-bn-depths", nargs="*", type=int, default=list(NO_BN_DEPTHS),
                        help="block depths also compared without batch normalisation (default: %(default)s)")
    ctx = cli.setup(parser, argv, __file__)
    args = ctx.args
    for flag, depths in (("--depths", args.depths), ("--no-bn-depths", args.no_bn_depths)):
        if any(depth < 1 for depth in depths):
            parser.error(f"{flag}: every block depth must be at least 1, got {' '.join(map(str, depths))}")
    splits = ex2_1_segnet.load_splits(ctx)

    panels = ([(depth, True, None) for depth in args.depths] + [(depth, False, None) for depth in args.no_bn_depths]
              + [(depth, False, NO_BN_CHECK_INIT) for depth in args.no_bn_depths])
    specs = {BASELINE_LABEL: ex2_1_segnet.segnet_spec(args)}
    for depth, batch_norm, init in panels:
        for residual in (False, True):
            specs[label(depth, residual, batch_norm, init)] = ex2_1_segnet.segnet_spec(
                args, f"segnet_{panel_name(depth, batch_norm, init, residual)}", block_depth=depth, residual=residual, batch_norm=batch_norm,
                **({"init": init} if init else {}))
    configs = []
    for name, spec in specs.items():
        config = experiment.run_seeds(spec, splits, ctx.seeds, ctx.device, **ctx.run_kwargs())
        config["label"] = name
        configs.append(config)
    by_label = {c["label"]: c for c in configs}

    speed = {c["label"]: seg_eval.speed_of_learning(c, DICE_THRESHOLD) for c in configs}
    val_targets = splits.val[1].cpu()
    findings = {
        "dice_threshold": DICE_THRESHOLD,
        "all_gland_val_dice": float(dice_coefficient(torch.ones_like(val_targets), val_targets).mean()),
        "configs": {c["label"]: {
            "weights": c["num_weights"],
            "test_dice": c["summary"]["test_dice"],
            "final_val_dice": c["summary"]["final_val_dice"],
            "final_train_loss": [r["history"]["epochs"][-1]["train_loss"] for r in c["runs"]],
            "train_time_per_epoch_s": c["summary"]["train_time_per_epoch_s"],
            "reaches_threshold": speed[c["label"]],
        } for c in configs},
        "residual_vs_plain": {depth: _compare(by_label[label(depth, False)], by_label[label(depth, True)],
                                              speed, depth) for depth in args.depths},
        "residual_vs_plain_no_bn": {depth: _compare(by_label[label(depth, False, False)],
                                                    by_label[label(depth, True, False)], speed, depth, " without batch norm")
                                    for depth in args.no_bn_depths},
        "no_bn_check_init": NO_BN_CHECK_INIT,
        "residual_vs_plain_no_bn_check_init": {
            depth: _compare(by_label[label(depth, False, False, NO_BN_CHECK_INIT)],
                            by_label[label(depth, True, False, NO_BN_CHECK_INIT)], speed, depth,
                            f" without batch norm, {NO_BN_CHECK_INIT} init") for depth in args.no_bn_depths},
    }
    for config in configs:
        s = speed[config["label"]]
        print(results.summary_line(config) + f"; val Dice >= {DICE_THRESHOLD} reached by {s['seeds_reaching']}/"
              f"{len(config['runs'])} seeds, mean epoch {_mean_epoch(s['mean_epoch'])}")
    for comparison in [*findings["residual_vs_plain"].values(), *findings["residual_vs_plain_no_bn"].values(),
                       *findings["residual_vs_plain_no_bn_check_init"].values()]:
        print(comparison["summary"])
    results.write_results(ctx, "ex2_4_residual", configs, splits.info, findings)

    for depth, batch_norm, init in panels:
        shown = [by_label[BASELINE_LABEL], by_label[label(depth, False, batch_norm, init)],
                 by_label[label(depth, True, batch_norm, init)]]
        for x in ("epoch", "time"):
            plotting.plot_training_curves(
                shown, ctx.figures_dir, f"ex2_4_residual_{panel_name(depth, batch_norm, init)}_{x}", x=x,
                score_label="Dice", score_legend=batch_norm,  # without BN the Dice legend would cover curves
                title=f"Ex 2.4: blocks of {depth} conv+ReLU pairs{'' if batch_norm else ' without batch norm'}"
                      f"{f' ({init} init)' if init else ''}, with and without residual connections "
                      f"(against {'epochs' if x == 'epoch' else 'training seconds'})")
    per_seed = {c["label"]: {
        "test dice": [r["test"]["dice"] for r in c["runs"]],
        "epoch": [seg_eval.nan_if_none(r["epoch"]) for r in speed[c["label"]]["per_seed"]],
        "seconds": [seg_eval.nan_if_none(r["train_seconds"]) for r in speed[c["label"]]["per_seed"]],
        "s/epoch": [r["train_time_per_epoch_s"]["mean"] for r in c["runs"]]} for c in configs}
    boundary_plots.plot_metric_comparison(
        per_seed, ctx.figures_dir, "ex2_4_residual_summary", lower_is_better=("epoch", "seconds", "s/epoch"),
        metric_labels={"test dice": "final test Dice", "epoch": f"epochs to val Dice ≥ {DICE_THRESHOLD}",
                       "seconds": f"seconds to val Dice ≥ {DICE_THRESHOLD}", "s/epoch": "seconds per epoch"},
        title=f"Ex 2.4: per seed (dots), mean ± std over the {len(ctx.seeds)} seeds, or over the n of them that "
              f"reach the threshold (n=k/{len(ctx.seeds)})")
    return configs


def _mean_epoch(epoch: float | None) -> str:
    """The mean epoch at which the seeds reach the threshold, or "never" if none does."""
    return "never" if epoch is None else f"{epoch:.1f}"


def _compare(plain: dict, residual: dict, speed: dict, depth: int, what: str = "") -> dict:
    p, r = speed[plain["label"]], speed[residual["label"]]
    test_p, test_r = plain["summary"]["test_dice"], residual["summary"]["test_dice"]
    val_p = np.mean([run["history"]["epochs"][-1]["val_score"] for run in plain["runs"]])
    val_r = np.mean([run["history"]["epochs"][-1]["val_score"] for run in residual["runs"]])

    def reach(s):
        return (f"{s['seeds_reaching']}/{len(s['per_seed'])} seeds reach val Dice {s['threshold']}"
                + (f", at epoch {s['mean_epoch']:.1f} ({s['mean_train_seconds']:.0f} s) on average"
                   if s["mean_epoch"] is not None else ""))

    return {
        "depth": depth, "plain": reach(p), "residual": reach(r),
        "final_val_dice": {"plain": float(val_p), "residual": float(val_r)},
        "test_dice": {"plain": test_p["mean"], "residual": test_r["mean"]},
        "summary": (f"block depth {depth}{what}: plain: {reach(p)}; final val Dice {val_p:.4f}, test Dice "
                    f"{test_p['mean']:.4f} ± {test_p['std']:.4f}. Residual: {reach(r)}; final val Dice {val_r:.4f}, "
                    f"test Dice {test_r['mean']:.4f} ± {test_r['std']:.4f}."),
    }


if __name__ == "__main__":
    cli.run(main)
