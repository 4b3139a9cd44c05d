"""Exercise 2.4 (optional): residual connections, and whether they let deeper networks train.

Implement residual connections. Do they improve performance? In particular, do they allow training
deeper networks, when each convolution + activation pair is replaced by a block of two or three such
pairs with the residual connection bridging each block? Check the speed of learning with and without
the residual connections, for otherwise identical architectures.

Every conv + ReLU of the Exercise 2.1 network (encoder, bottleneck, decoder; its runs are the depth 1
reference) becomes a block of DEPTH pairs, plain or with a shortcut relu(F(x) + x) (a 1x1 convolution
where the block changes the channel count). Batch norm already keeps deep plain networks trainable,
so the comparison is repeated without it (with the He initialisation by true fan-in, since without
batch norm the decoder would otherwise lose signal at each up-sampling), where the shortcut is the
only help depth gets, with more seeds. Speed of learning: the training loss against epochs and
seconds, the epoch at which validation Dice first reaches DICE_THRESHOLD, and the time per epoch of
each network timed in turn on the same batches.

Run:  python ex2_4_residual.py --device cuda     (or --device cpu; --quick: a smoke test)
"""
import dataclasses

import torch

import ex2_1_segnet
from common import cli, evaluation, experiment, metrics, plots, results, timing, warwick

DEPTHS = (3,)  # conv + ReLU pairs per block (Ex 2.1: 1), with batch norm
NO_BN_DEPTH, NO_BN_INIT, NO_BN_SEEDS = 3, "he", 4  # the comparison without batch norm
DICE_THRESHOLD = 0.75  # above the 0.64 of predicting gland everywhere, below Ex 2.1's final 0.8
TIMING = {"num_batches": 2, "warmup": 1, "repeats": 9}


def pair(args, depth: int, batch_norm: bool = True) -> list[experiment.Config]:
    """The Ex 2.1 configuration with blocks of ``depth`` pairs, plain and residual."""
    suffix, label, extra = ("", "", {}) if batch_norm else (f"_nobn_{NO_BN_INIT}", ", no BN", {"init": NO_BN_INIT})
    configs = [ex2_1_segnet.config(args, f"segnet_depth{depth}_{kind}{suffix}", f"depth {depth}, {kind}{label}",
                                   block_depth=depth, residual=kind == "residual", batch_norm=batch_norm, **extra)
               for kind in ("plain", "residual")]
    return configs if batch_norm else [dataclasses.replace(c, num_seeds=NO_BN_SEEDS) for c in configs]


def main(argv=None) -> list[experiment.Runs]:
    parser = cli.make_parser(__doc__, epochs=ex2_1_segnet.EPOCHS, batch_size=ex2_1_segnet.BATCH_SIZE,
                             lr=ex2_1_segnet.LR, num_seeds=ex2_1_segnet.SEEDS)
    ctx = cli.setup(parser, argv, __file__)
    args = ctx.args
    splits = warwick.load_splits(ctx.data_dir, ctx.device, seed=ctx.seed, quick=ctx.quick)

    groups = {**{f"depth {d}": pair(args, d) for d in DEPTHS}, f"depth {NO_BN_DEPTH}, no BN": pair(args, NO_BN_DEPTH, False)}
    reference, *trained = experiment.run_all([ex2_1_segnet.config(args, "segnet", "depth 1 (Ex 2.1)")]
                                             + [c for p in groups.values() for c in p], splits, ctx)
    runs = {group: trained[2 * k: 2 * k + 2] for k, group in enumerate(groups)}

    torch.manual_seed(ctx.seed)  # the time does not depend on the weights' values
    timings = timing.time_forward_backward({r.name: r.config.model() for pair_ in runs.values() for r in pair_},
                                           *splits.train, batch_size=args.batch_size, loss_fn=ex2_1_segnet.LOSS,
                                           steps_per_epoch=-(-len(splits.train[1]) // args.batch_size),
                                           **(dict(num_batches=1, warmup=1, repeats=1) if ctx.quick else TIMING))
    findings = {"dice_threshold": DICE_THRESHOLD, "timing": timings, "groups": {group: {
        "residual_vs_plain": evaluation.compare_runs(plain, residual, splits.test[1]),
        "time_residual_vs_plain": timing.versus(timings, plain.name, residual.name),
        "reaches_threshold": {r.name: evaluation.speed_of_learning(r, DICE_THRESHOLD) for r in (plain, residual)},
        "one_class_runs": metrics.compare_counts(*(results.summary(r)["verdicts"].count("one class") for r in (plain, residual)),
                                                 len(plain.records), len(residual.records))}
        for group, (plain, residual) in runs.items()}}
    configs = [reference] + [r for p in runs.values() for r in p]
    results.write(ctx, "ex2_4_residual", configs, splits, findings)
    plots.residual_grid(runs, ctx.figures_dir / "ex2_4_residual")
    return configs


if __name__ == "__main__":
    cli.run(main)
