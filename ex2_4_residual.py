"""Exercise 2.4 (optional): residual connections, and whether they let deeper networks train.

Implement residual connections. Do they improve performance? In particular, do they allow training
deeper networks, when each convolution + activation pair is replaced by a block of two or three such
pairs with the residual connection bridging each block? Check the speed of learning with and without
the residual connections, for otherwise identical architectures.

Every conv + ReLU of the Exercise 2.1 network (encoder, bottleneck, decoder; its runs are the depth-1
reference) becomes a block of 3 pairs (DEPTH), plain or with a shortcut relu(F(x) + x) (a 1x1 convolution
where the block changes the channel count). Batch norm already keeps deep plain networks trainable, so the
comparison is repeated without it, where the shortcut is the only help depth gets: with He initialisation
by true fan-in, each residual block starting as its shortcut, each kind at the learning rate chosen for it on
validation (tuning/) and 8 seeds (NO_BN_SEEDS; neither --lr nor --num-seeds below 8 changes them). Speed of learning: the epoch at which the validation Dice first
reaches 0.75 (DICE_THRESHOLD), paired seed by seed, and the time per training step of the two networks
timed in turn on the same batches.

Run:  python ex2_4_residual.py --device cuda     (or --device cpu; --quick: a smoke test)
"""
from pathlib import Path

import torch

from common import cli, evaluation, metrics, plots, results, text, timing, train, warwick

# Exercise 2.1's network and training; its runs are the depth-1 reference.
SEGNET = {"class": "SegNet", "channels": (8, 16, 32, 64), "up_kernel": 4, "init": "kaiming", "batch_norm": True,
          "skip": None, "block_depth": 1, "residual": False}  # common/models.py SegNet
DIHEDRAL = {"class": "SegmentationAugment", "dihedral": True}  # random flips + 90-degree rotations
LOSS = {"class": "CrossEntropyLoss"}  # per pixel: the softmax over the two channels, cross-entropy against the mask
LR = 0.01  # Adam, annealed to 0 over the epochs along a cosine; chosen with EPOCHS on validation
BATCH_SIZE = 10
EPOCHS = 80  # with LR: the shortest schedule within 0.008 of the best (tuning/convergence.py, stage 3)
SEEDS = 5  # enough for the paired comparisons to resolve differences of the size that matters
DEPTH = 3  # conv + ReLU pairs per block (Ex 2.1: 1); compared with batch norm, and without it, where the
# shortcut is the only help depth gets
# He initialisation by true fan-in (models.INIT_SCHEMES): without batch norm, Ex 2.1's "kaiming" (which counts a
# transposed convolution's fan-in as in_channels*k*k) would let the decoder lose signal at each up-sampling. The
# residual blocks' last convolutions start at zero ("he_zero"): without batch norm nothing rescales a residual sum,
# and with plain He weights every block adds its body's variance to the shortcut's (class scores of std 24 at the
# start against the plain network's 1.2), a handicap that has nothing to do with the shortcut's help
NO_BN_INIT = {"plain": "he", "residual": "he_zero"}
# Without batch norm a run can fail (stuck predicting one class); how many runs of each kind fail is compared
# (Fisher's exact test), which needs more seeds than a difference of means
NO_BN_SEEDS = 8
# Adam without batch norm: for each kind the rate with the best validation Dice (tuning/convergence.py, family
# segnet_depth3_nobn); each prefers a different one, so a shared rate would decide the comparison
NO_BN_LR = {"plain": 0.001, "residual": 0.003}
# The depth-1 reference without batch norm: Ex 2.2's network without it, at the rate chosen for it on validation
# (ex2_2_regularization.NO_BN_LR; tuning/convergence.py, stage 4), with as many seeds as the deep ones
DEPTH1_NO_BN_LR = 0.003
DICE_THRESHOLD = 0.75  # validation Dice: above the 0.64 of predicting gland everywhere, below Ex 2.1's final 0.8
TIMING = {"num_batches": 1, "warmup": 1, "repeats": 30}  # short paired repeats share the machine's drift
QUICK_TIMING = {"num_batches": 1, "warmup": 1, "repeats": 1}  # --quick: a smoke test of the timing

EXERCISE = "ex2_4_residual"  # its results file and figures


def segnet_config(args) -> dict:
    """Exercise 2.1's network and training, with the command line's epochs, batch size and learning rate."""
    return {"model": SEGNET, "loss": LOSS, "optimizer": {"class": "Adam", "lr": args.lr},
            "schedule": {"class": "CosineAnnealingLR"}, "augment": DIHEDRAL, "epochs": args.epochs,
            "batch_size": args.batch_size, "score": "dice"}


def deeper(config: dict, depth: int, residual: bool, batch_norm: bool = True) -> dict:
    """Exercise 2.1's configuration with blocks of ``depth`` pairs, plain or residual; without batch norm,
    with the initialisation and learning rate chosen for its kind (depth 1: Ex 2.2's network)."""
    if batch_norm:
        return {**config, "model": {**SEGNET, "block_depth": depth, "residual": residual}}
    kind = "residual" if residual else "plain"
    return {**config, "model": {**SEGNET, "block_depth": depth, "residual": residual, "batch_norm": False,
                                "init": NO_BN_INIT[kind]},
            "optimizer": {**config["optimizer"],
                          "lr": DEPTH1_NO_BN_LR if depth == 1 else NO_BN_LR[kind]}}


def residual_against_plain(plain: train.Runs, residual: train.Runs, timings: dict, test_targets) -> dict:
    """The questions of the exercise for one depth: is the residual network's test Dice better, is it
    slower per epoch, does it learn faster (the epoch its validation Dice first reaches DICE_THRESHOLD),
    and do fewer of its runs get stuck predicting one class?"""
    one_class = [results.summary(r)["verdicts"].count("one class") for r in (plain, residual)]
    return {
        "residual_vs_plain": evaluation.compare_runs(plain, residual, test_targets),
        "time_residual_vs_plain": timing.versus(timings, plain.name, residual.name),
        "reaches_threshold": {r.name: evaluation.speed_of_learning(r, DICE_THRESHOLD) for r in (plain, residual)},
        "epochs_to_threshold": evaluation.paired_epochs_to_threshold(plain, residual, DICE_THRESHOLD),
        "one_class_runs": metrics.compare_counts(*one_class, len(plain.records), len(residual.records)),
    }


EPOCHS_ROW = f"epochs to {text.score('dice', DICE_THRESHOLD)}"


def residual_sentence(groups: list[dict]) -> str:
    """The answer to the exercise in words, from ``residual_against_plain`` with batch norm and without: one
    sentence for both where neither resolves a difference in test Dice or in the epochs to DICE_THRESHOLD (no
    direction, so nothing for the report to qualify), else a sentence for each, its phrases marked as the table
    rows they state (``text.claim``)."""
    threshold = text.score("dice", DICE_THRESHOLD)
    if all(g["residual_vs_plain"]["outcome"] == g["epochs_to_threshold"]["outcome"] == "unresolved"
           and text.compared(g["epochs_to_threshold"]) for g in groups):
        return ("With and without batch norm, neither the residual network's test Dice nor the epochs it needs to "
                f"reach a validation Dice of {threshold} are distinguishable from the plain network's")
    sentences = []
    for g, bn in zip(groups, (True, False)):
        dice = text.relation(g["residual_vs_plain"], row_label(bn, "test Dice"), "the plain network's")
        when = text.when(g["epochs_to_threshold"], "the plain network", row_label(bn, EPOCHS_ROW))
        subject = "the residual network's" if bn else "its"
        sentences.append(f"{'With' if bn else 'Without'} batch norm, {subject} test Dice is {dice}, and it reaches a "
                         f"validation Dice of {threshold} {when}")
    return ". ".join(sentences)


def row_label(batch_norm: bool, what: str) -> str:
    """A row of the exercise's table: "with BN: test Dice". The answer's sentences name the rows they state."""
    return f"{'with BN' if batch_norm else 'no BN'}: {what}"


def depth_label(kind: str, batch_norm: bool) -> str:
    """A row of the table: a deep network's test Dice against the depth-1 network's (with batch norm Ex 2.1's,
    without it Ex 2.2's)."""
    return f"depth 1 → {DEPTH}, {kind}{'' if batch_norm else ', no BN'}"


def group_rows(group: dict, timings: dict, names: tuple[str, str], batch_norm: bool) -> list[dict]:
    """The rows of the exercise's table for one group's comparison (``residual_against_plain``), residual (b)
    against plain (a): test Dice, epochs to the threshold, and time per step (with batch norm) or runs stuck
    at one class (without, where runs can fail)."""
    fails, time = group["one_class_runs"], group["time_residual_vs_plain"]
    rows = [text.row(row_label(batch_norm, "test Dice"), group["residual_vs_plain"]),
            text.epochs_row(row_label(batch_norm, EPOCHS_ROW), group["epochs_to_threshold"])]
    if batch_norm:
        return rows + [text.plain_row(row_label(batch_norm, "ms per step"), *(text.ms(timings[n]["per_batch_s"]) for n in names),
                                      text.speed(time))]
    fewer = ("fewer" if fails["b"] < fails["a"] else "more") if fails["p"] < metrics.ALPHA else "not distinguishable"
    return rows + [text.plain_row(row_label(batch_norm, "runs stuck at one class"), f"{fails['a']} of {fails['a_runs']}",
                                  f"{fails['b']} of {fails['b_runs']}", fewer)]


def main(argv=None) -> list[train.Runs]:
    parser = cli.make_parser(__doc__, epochs=EPOCHS, batch_size=BATCH_SIZE, lr=LR, num_seeds=SEEDS)
    ctx = cli.setup(parser, argv, __file__)
    args = ctx.args
    if args.figures_only:  # make figures: from the results file alone, no data, no training
        return draw(*results.read(ctx.out_dir, EXERCISE, ("figure_groups",)), ctx.figures_dir)
    splits = warwick.load_splits(ctx.data_dir, ctx.device, seed=ctx.seed, quick=ctx.quick)
    config = segnet_config(args)
    no_bn_seeds = ctx.seeds if ctx.quick else [ctx.seed + k for k in range(max(NO_BN_SEEDS, args.num_seeds))]

    reference = train.run("segnet", config, splits, ctx, "depth 1 (Ex 2.1)")
    with_bn = [train.run(f"segnet_depth{DEPTH}_{kind}", deeper(config, DEPTH, kind == "residual"), splits, ctx,
                         f"depth {DEPTH}, {kind}") for kind in ("plain", "residual")]
    without_bn = [train.run(f"segnet_depth{DEPTH}_{kind}_nobn_{NO_BN_INIT[kind]}",
                            deeper(config, DEPTH, kind == "residual", batch_norm=False), splits, ctx,
                            f"depth {DEPTH}, {kind}, no BN", seeds=no_bn_seeds) for kind in ("plain", "residual")]
    runs = {f"depth {DEPTH}": with_bn, f"depth {DEPTH}, no BN": without_bn}  # group -> [plain, residual]
    # Ex 2.2's network without batch norm (its first seeds are Ex 2.2's runs): does depth pay off without it?
    reference_no_bn = train.run("no_batch_norm", deeper(config, 1, False, batch_norm=False), splits, ctx,
                                f"depth 1, no BN (Ex 2.2's, {len(no_bn_seeds)} seeds)", seeds=no_bn_seeds)

    images = splits.train[0][:args.batch_size]
    # without batch norm nothing rescales a residual sum: with plain He weights ("residual_he") each block adds its
    # body's variance to the shortcut's; the blocks that start as their shortcuts do not
    at_init = {kind: deeper(config, DEPTH, kind == "residual", batch_norm=False) for kind in ("plain", "residual")}
    at_init["residual_he"] = {**at_init["residual"], "model": {**at_init["residual"]["model"], "init": "he"}}
    init_std = {kind: evaluation.score_std_at_init(c, images, no_bn_seeds) for kind, c in at_init.items()}
    torch.manual_seed(ctx.seed)  # the time does not depend on the weights' values
    networks = {r.name: r.model() for pair in runs.values() for r in pair}
    timings = timing.time_forward_backward(networks, *splits.train, batch_size=args.batch_size,
                                           loss_fn=train.build_loss(config), **(QUICK_TIMING if ctx.quick else TIMING))
    findings = {"dice_threshold": DICE_THRESHOLD, "timing": timings,
                "groups": {group: residual_against_plain(plain, residual, timings, splits.test[1])
                           for group, (plain, residual) in runs.items()},
                # does depth pay off? Each deep network against the depth-1 network: with batch norm Ex 2.1's,
                # without it Ex 2.2's
                "versus_ex2_1": {r.name: evaluation.compare_runs(reference, r, splits.test[1]) for r in with_bn},
                "versus_depth1_no_bn": {r.name: evaluation.compare_runs(reference_no_bn, r, splits.test[1])
                                        for r in without_bn},
                "score_std_at_init_no_bn": init_std,
                "figure_groups": {group: [r.name for r in pair] for group, pair in runs.items()}}
    table = [row for group, (plain, residual) in runs.items()
             for row in group_rows(findings["groups"][group], timings, (plain.name, residual.name),
                                   batch_norm=group == f"depth {DEPTH}")]
    table += [{**text.row(depth_label(kind, bn), findings[key][r.name]), "part": "depth"}  # a table of their own
              for key, bn, pair in (("versus_ex2_1", True, with_bn), ("versus_depth1_no_bn", False, without_bn))
              for kind, r in zip(("plain", "residual"), pair)]
    # the exercise's question, "do residual connections improve performance?": the residual network against the
    # plain one of the same depth, with batch norm and without
    outcomes = [g["residual_vs_plain"]["outcome"] for g in findings["groups"].values()]
    gains = outcomes.count("better")
    numbers = {"answer": ("Yes", "Partly")[gains < len(outcomes)] if gains else "No" if "worse" in outcomes
               else "Not measurably",  # neither group resolves a difference
               "threshold": text.score("dice", DICE_THRESHOLD), "depth": DEPTH, "nobn_seeds": len(no_bn_seeds),
               # how much wider a fresh residual network's class scores spread with plain He weights than a plain one's
               "init_ratio": f"{init_std['residual_he'] / init_std['plain']:.0f}"}
    numbers["residual_vs_plain"] = residual_sentence([findings["groups"][f"depth {DEPTH}"],
                                                      findings["groups"][f"depth {DEPTH}, no BN"]])
    for key, findings_key, bn, pair in (("versus_depth1", "versus_ex2_1", True, with_bn),
                                        ("versus_depth1_no_bn", "versus_depth1_no_bn", False, without_bn)):
        # (subject, predicate) pairs: the report words them as one sentence (text.grouped)
        numbers[key] = [(f"the {kind} network", text.relation(findings[findings_key][r.name], depth_label(kind, bn),
                                                              "depth 1"))
                        for kind, r in zip(("plain", "residual"), pair)]
    configs = [reference, *with_bn, reference_no_bn, *without_bn]
    draw(results.write(ctx, EXERCISE, configs, splits, findings, numbers=numbers, table=table), {}, ctx.figures_dir)
    return configs


def draw(record: dict, arrays: dict, figures: Path) -> None:
    by_name = {c["name"]: c for c in record["configs"]}
    groups = {group: [by_name[name] for name in names] for group, names in record["findings"]["figure_groups"].items()}
    plots.residual_grid(groups, figures / "ex2_4_residual")


if __name__ == "__main__":
    cli.run(main)
