"""Exercise 1.3: activation before or after max pooling.

Swap layers 2/3 and 5/6 of the Exercise 1.2 network, so that max pooling comes before the ReLU.
What changes, in accuracy and in speed? Why is the difference probably more distinct for tanh?

Max pooling commutes with every non-decreasing function f: max(f(a), f(b)) = f(max(a, b)). ReLU and
tanh both increase, so the two orders compute the same function and, for the same weights, the same
gradients (tests/test_models.py checks this): trained from the same weights on the same batches
their curves coincide. Pooling first applies the activation to 4x fewer values, which saves time,
the more the costlier the activation: the forward+backward time of each order is measured on the
same batches, timed in turn (TIMING), in three separate processes (SESSIONS).

Run:  python ex1_3_pool_order.py --device cuda     (or --device cpu; --quick: a smoke test)
"""
from pathlib import Path

from common import cli, evaluation, metrics, mnist, plots, results, text, timing, train

# Exercise 1.2's network and training (SGD, cross-entropy); "ReLU → pool" is its very run.
CNN = {"class": "MnistCNN", "channels": (8, 16, 32), "activation": "relu", "pool_first": False,
       "batch_norm": False, "dropout": 0.0}
LOSS = {"class": "CrossEntropyLoss"}
LR = 0.1  # plain SGD; of the rates tried, the one that reaches the best validation plateau soonest (tuning/)
BATCH_SIZE = 64  # chosen with the learning rate (tuning/convergence.py)
EPOCHS = 16  # the Ex 1.2 family's budget, converged on validation (tuning/convergence.py)
SEEDS = 5  # enough for the paired comparisons to resolve differences of the size that matters
VARIANTS = {  # name -> (label, what changes in the network)
    "relu_pool_after": ("ReLU → pool (Ex 1.2)", {"activation": "relu", "pool_first": False}),
    "relu_pool_first": ("pool → ReLU", {"activation": "relu", "pool_first": True}),
    "tanh_pool_after": ("tanh → pool", {"activation": "tanh", "pool_first": False}),
    "tanh_pool_first": ("pool → tanh", {"activation": "tanh", "pool_first": True}),
}
ACTS = ("relu", "tanh")
TIMING = {"num_batches": 5, "warmup": 1, "repeats": 60}  # short paired repeats share the machine's drift
QUICK_TIMING = {"num_batches": 2, "warmup": 1, "repeats": 1}  # --quick: a smoke test of the timing
# Timed in three sessions, each in a fresh process: the two savings differ by a percent or two, and timings of the
# same code in separate processes disagreed on which was larger; a direction is claimed only where all three give it.
SESSIONS = 3

SAVING = {"tanh": "on this CPU it is", "ReLU": "on this CPU it is the other way round",
          "neither": "on this CPU the two savings are not distinguishable",
          "disagree": "the timing sessions disagree on which saving is larger, so we claim neither"}  # by pooling first

EXERCISE = "ex1_3_pool_order"  # its results file and figures


def same_curves(largest: float) -> str:
    """How alike the two orders train, from the largest difference of their training losses, seed by seed (the
    number itself is in the exercise's table)."""
    return "identically, run for run" if largest == 0 else "almost alike"


def saving_text(sessions: list[dict]) -> str:
    """Which activation's time pooling first cuts more, from ``timing.compare_savings`` of each session: a
    direction only where every session's sign test gives it; "not distinguishable" where none does."""
    found = [s["larger"] for s in sessions if s["p"] < metrics.ALPHA]
    if len(found) == len(sessions) and len(set(found)) == 1:
        return SAVING[found[0]]
    if not found:
        return SAVING["neither"]
    if len(set(found)) > 1:
        return SAVING["disagree"]
    return (f"only {len(found)} of the {len(sessions)} timing sessions found it larger with {found[0]}, so we "
            "claim neither")


def tanh_larger(saving: dict) -> int:
    """In how many paired repeats pooling first saved more with tanh than with ReLU (``timing.compare_savings``
    counts the repeats that agree with the larger median)."""
    return saving["agreeing_repeats"] if saving["larger"] == "tanh" else saving["repeats"] - saving["agreeing_repeats"]


def main(argv=None) -> list[train.Runs]:
    parser = cli.make_parser(__doc__, epochs=EPOCHS, batch_size=BATCH_SIZE, lr=LR, num_seeds=SEEDS)
    ctx = cli.setup(parser, argv, __file__)
    args = ctx.args
    if args.figures_only:  # make figures: from the results file alone, no data, no training
        return draw(*results.read(ctx.out_dir, EXERCISE), ctx.figures_dir)
    splits = mnist.load_splits(ctx.data_dir, ctx.device, seed=ctx.seed, quick=ctx.quick)
    config = {"model": CNN, "loss": LOSS, "optimizer": {"class": "SGD", "lr": args.lr}, "schedule": None,
              "augment": None, "epochs": args.epochs, "batch_size": args.batch_size, "score": "accuracy"}

    configs = [train.run(name, {**config, "model": {**CNN, **change}}, splits, ctx, label)
               for name, (label, change) in VARIANTS.items()]

    sessions = timing.time_in_processes({name: {"model": {**CNN, **change}} for name, (_, change) in VARIANTS.items()},
                                        *splits.train, sessions=SESSIONS, batch_size=args.batch_size,
                                        **(QUICK_TIMING if ctx.quick else TIMING))
    timings = sessions[0]  # the table's and the figure's
    by_name = {c.name: c for c in configs}
    findings = {
        "timing": timings, "timing_again": sessions[1:],
        "pool_first_vs_after": {a: timing.versus(timings, f"{a}_pool_after", f"{a}_pool_first") for a in ACTS},
        "tanh_vs_relu": {order: timing.versus(timings, f"relu_{order}", f"tanh_{order}")
                         for order in ("pool_after", "pool_first")},
        "saving_tanh_vs_relu": [timing.compare_savings(t, ("relu_pool_after", "relu_pool_first"),
                                                       ("tanh_pool_after", "tanh_pool_first"), ("ReLU", "tanh"))
                                for t in sessions],
        "curve_differences": {a: evaluation.curve_differences(by_name[f"{a}_pool_after"], by_name[f"{a}_pool_first"])
                              for a in ACTS}}
    numbers = {**{f"pool_first_{a}": text.speed(findings["pool_first_vs_after"][a]) for a in ACTS},
               "saving": saving_text(findings["saving_tanh_vs_relu"]),
               **{f"orders_{a}": same_curves(findings["curve_differences"][a]["iter_loss"]) for a in ACTS},
               **{f"loss_gap_{a}": f"{findings['curve_differences'][a]['iter_loss']:.1g}" for a in ACTS},
               # the statistics behind "saving", per session: in how many paired repeats tanh's saving was the
               # larger, and the sign test
               "saving_tanh_larger": text.join([str(tanh_larger(s)) for s in findings["saving_tanh_vs_relu"]]),
               "saving_p": text.join([text.p_value(s["p"]) for s in findings["saving_tanh_vs_relu"]]),
               **{f"ms_{name}": text.ms(t["per_batch_s"]) for name, t in timings.items()},
               "repeats": timings["relu_pool_after"]["repeats"]}
    draw(results.write(ctx, EXERCISE, configs, splits, findings, numbers=numbers), {}, ctx.figures_dir)
    return configs


def draw(record: dict, arrays: dict, figures: Path) -> None:
    plots.pool_order(record["configs"], record["findings"]["timing"], figures / "ex1_3_pool_order")


if __name__ == "__main__":
    cli.run(main)
