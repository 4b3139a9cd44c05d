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
import math

import torch

import ex2_1_segnet
from common import cli, evaluation, experiment, metrics, plots, results, timing, warwick

DEPTHS = (3,)  # conv + ReLU pairs per block (Ex 2.1: 1), with batch norm
# The comparison without batch norm, where the shortcut is the only help depth gets:
NO_BN_DEPTH = 3  # the depth of DEPTHS: batch norm (and the initialisation it needs) is the only difference
# He initialisation by true fan-in (models.INIT_SCHEMES): without batch norm, Ex 2.1's "kaiming" (which counts a
# transposed convolution's fan-in as in_channels*k*k) would let the decoder lose signal at each up-sampling
NO_BN_INIT = "he"
# At least this many seeds, more than Ex 2.1's SEEDS (3): without batch norm a run can fail (stuck predicting
# one class), and how many runs of each kind fail is compared
NO_BN_SEEDS = 4
DICE_THRESHOLD = 0.75  # validation Dice: above the 0.64 of predicting gland everywhere, below Ex 2.1's final 0.8
TIMING = {"num_batches": 1, "warmup": 1, "repeats": 30}  # short paired repeats share the machine's drift
QUICK_TIMING = {"num_batches": 1, "warmup": 1, "repeats": 1}  # --quick: a smoke test of the timing


def plain_and_residual(args, depth: int, batch_norm: bool = True) -> list[experiment.Config]:
    """The Ex 2.1 configuration with blocks of ``depth`` pairs: [plain, residual]. Without batch
    norm, with the NO_BN_INIT initialisation and at least NO_BN_SEEDS seeds."""
    if batch_norm:
        suffix, label, extra = "", "", {}
    else:
        suffix, label, extra = f"_nobn_{NO_BN_INIT}", ", no BN", {"init": NO_BN_INIT}
    configs = [ex2_1_segnet.config(args, f"segnet_depth{depth}_{kind}{suffix}", f"depth {depth}, {kind}{label}",
                                   block_depth=depth, residual=kind == "residual", batch_norm=batch_norm, **extra)
               for kind in ("plain", "residual")]
    return configs if batch_norm else [dataclasses.replace(c, num_seeds=max(NO_BN_SEEDS, args.num_seeds))
                                       for c in configs]


def residual_against_plain(plain: experiment.Runs, residual: experiment.Runs, timings: dict, test_targets) -> dict:
    """The questions of the exercise for one depth: is the residual network's test Dice better, is it
    slower per epoch, does it learn faster (the epoch its validation Dice first reaches DICE_THRESHOLD),
    and do fewer of its runs get stuck predicting one class?"""
    one_class = [results.summary(r)["verdicts"].count("one class") for r in (plain, residual)]
    return {
        "residual_vs_plain": evaluation.compare_runs(plain, residual, test_targets),
        "time_residual_vs_plain": timing.versus(timings, plain.name, residual.name),
        "reaches_threshold": {r.name: evaluation.speed_of_learning(r, DICE_THRESHOLD) for r in (plain, residual)},
        "one_class_runs": metrics.compare_counts(*one_class, len(plain.records), len(residual.records)),
    }


def main(argv=None) -> list[experiment.Runs]:
    parser = cli.make_parser(__doc__, epochs=ex2_1_segnet.EPOCHS, batch_size=ex2_1_segnet.BATCH_SIZE,
                             lr=ex2_1_segnet.LR, num_seeds=ex2_1_segnet.SEEDS)
    ctx = cli.setup(parser, argv, __file__)
    args = ctx.args
    splits = warwick.load_splits(ctx.data_dir, ctx.device, seed=ctx.seed, quick=ctx.quick)

    depth_1 = ex2_1_segnet.config(args, "segnet", "depth 1 (Ex 2.1)")  # the Ex 2.1 runs
    groups = {f"depth {depth}": plain_and_residual(args, depth) for depth in DEPTHS}  # group -> [plain, residual]
    groups[f"depth {NO_BN_DEPTH}, no BN"] = plain_and_residual(args, NO_BN_DEPTH, batch_norm=False)
    trained = experiment.run_all([depth_1] + [config for pair in groups.values() for config in pair], splits, ctx)
    by_name = {r.name: r for r in trained}
    reference = by_name[depth_1.name]
    runs = {group: [by_name[config.name] for config in pair] for group, pair in groups.items()}

    torch.manual_seed(ctx.seed)  # the time does not depend on the weights' values
    networks = {r.name: r.config.model() for pair in runs.values() for r in pair}
    timings = timing.time_forward_backward(networks, *splits.train, batch_size=args.batch_size,
                                           loss_fn=ex2_1_segnet.LOSS,
                                           steps_per_epoch=math.ceil(len(splits.train[1]) / args.batch_size),
                                           **(QUICK_TIMING if ctx.quick else TIMING))
    findings = {"dice_threshold": DICE_THRESHOLD, "timing": timings,
                "groups": {group: residual_against_plain(plain, residual, timings, splits.test[1])
                           for group, (plain, residual) in runs.items()},
                # does depth pay off? Each deep network with batch norm against the Ex 2.1 network
                "versus_ex2_1": {r.name: evaluation.compare_runs(reference, r, splits.test[1])
                                 for r in runs[f"depth {DEPTHS[-1]}"]}}
    configs = [reference] + [r for pair in runs.values() for r in pair]
    results.write(ctx, "ex2_4_residual", configs, splits, findings)
    plots.residual_grid(runs, ctx.figures_dir / "ex2_4_residual")
    return configs


if __name__ == "__main__":
    cli.run(main)
