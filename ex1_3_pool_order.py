"""Exercise 1.3: activation before or after max pooling.

Swap layers 2/3 and 5/6 of the Exercise 1.2 network, so that max pooling comes before the ReLU.
What changes, in accuracy and in speed? Why is the difference probably more distinct for tanh?

Max pooling commutes with every non-decreasing function f: max(f(a), f(b)) = f(max(a, b)). ReLU and
tanh both increase, so the two orders compute the same function and, for the same weights, the same
gradients (tests/test_models.py checks this): trained from the same weights on the same batches
their curves coincide. Pooling first applies the activation to 4x fewer values, which saves time,
the more the costlier the activation: the forward+backward time of each order is measured on the
same batches, timed in turn (TIMING).

Run:  python ex1_3_pool_order.py --device cuda     (or --device cpu; --quick: a smoke test)
"""
from pathlib import Path

import torch

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

SAVING = {"tanh": "the saving is larger with tanh, as expected", "ReLU": "the saving is larger with ReLU, against "
          "that expectation", "neither": "the two savings are not distinguishable"}  # which saves more by pooling first

EXERCISE = "ex1_3_pool_order"  # its results file and figures


def same_curves(largest: float) -> str:
    """How alike the two orders train, from the largest difference of their training losses, seed by seed."""
    return "identically, run for run" if largest == 0 else f"almost alike (training losses at most {largest:.1g} apart)"


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

    torch.manual_seed(ctx.seed)  # the time does not depend on the weights' values
    timed = {name: train.build_model({"model": {**CNN, **change}}) for name, (_, change) in VARIANTS.items()}
    timings = timing.time_forward_backward(timed, *splits.train, batch_size=args.batch_size,
                                           **(QUICK_TIMING if ctx.quick else TIMING))
    by_name = {c.name: c for c in configs}
    findings = {
        "timing": timings,
        "pool_first_vs_after": {a: timing.versus(timings, f"{a}_pool_after", f"{a}_pool_first") for a in ACTS},
        "tanh_vs_relu": {order: timing.versus(timings, f"relu_{order}", f"tanh_{order}")
                         for order in ("pool_after", "pool_first")},
        "saving_tanh_vs_relu": timing.compare_savings(timings, ("relu_pool_after", "relu_pool_first"),
                                                      ("tanh_pool_after", "tanh_pool_first"), ("ReLU", "tanh")),
        "curve_differences": {a: evaluation.curve_differences(by_name[f"{a}_pool_after"], by_name[f"{a}_pool_first"])
                              for a in ACTS}}
    numbers = {**{f"pool_first_{a}": text.speed(findings["pool_first_vs_after"][a]) for a in ACTS},
               "saving": SAVING[findings["saving_tanh_vs_relu"]["larger"] if findings["saving_tanh_vs_relu"]["p"] < metrics.ALPHA
                                else "neither"],
               **{f"orders_{a}": same_curves(findings["curve_differences"][a]["iter_loss"]) for a in ACTS},
               **{f"ms_{name}": text.ms(t["per_batch_s"]) for name, t in timings.items()},
               "repeats": timings["relu_pool_after"]["repeats"]}
    draw(results.write(ctx, EXERCISE, configs, splits, findings, numbers=numbers), {}, ctx.figures_dir)
    return configs


def draw(record: dict, arrays: dict, figures: Path) -> None:
    plots.pool_order(record["configs"], record["findings"]["timing"], figures / "ex1_3_pool_order")


if __name__ == "__main__":
    cli.run(main)
