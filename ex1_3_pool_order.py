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
import math

import torch

import ex1_2_cnn
from common import cli, evaluation, experiment, mnist, models, plots, results, timing

# The Ex 1.2 network and training (ex1_2_cnn.config: SGD, cross-entropy); ReLU, pool after is its very run.
CONFIGS = {  # name -> (label, MnistCNN options)
    "relu_pool_after": ("ReLU, then pool (Ex 1.2)", {"activation": "relu", "pool_first": False}),
    "relu_pool_first": ("pool, then ReLU", {"activation": "relu", "pool_first": True}),
    "tanh_pool_after": ("tanh, then pool", {"activation": "tanh", "pool_first": False}),
    "tanh_pool_first": ("pool, then tanh", {"activation": "tanh", "pool_first": True}),
}
ACTS = ("relu", "tanh")
TIMING = {"num_batches": 5, "warmup": 1, "repeats": 60}  # short paired repeats share the machine's drift
QUICK_TIMING = {"num_batches": 2, "warmup": 1, "repeats": 1}  # --quick: a smoke test of the timing


def main(argv=None) -> list[experiment.Runs]:
    parser = cli.make_parser(__doc__, epochs=ex1_2_cnn.EPOCHS, batch_size=ex1_2_cnn.BATCH_SIZE, lr=ex1_2_cnn.LR,
                             num_seeds=ex1_2_cnn.SEEDS)
    ctx = cli.setup(parser, argv, __file__)
    args = ctx.args
    splits = mnist.load_splits(ctx.data_dir, ctx.device, seed=ctx.seed, quick=ctx.quick)

    configs = experiment.run_all([ex1_2_cnn.config(args, name, label, **options)
                                  for name, (label, options) in CONFIGS.items()], splits, ctx)

    torch.manual_seed(ctx.seed)  # the time does not depend on the weights' values
    timed = {name: models.MnistCNN(**options) for name, (_, options) in CONFIGS.items()}
    timings = timing.time_forward_backward(timed, *splits.train, batch_size=args.batch_size,
                                           steps_per_epoch=math.ceil(len(splits.train[1]) / args.batch_size),
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
    results.write(ctx, "ex1_3_pool_order", configs, splits, findings)
    plots.pool_order(configs, timings, ctx.figures_dir / "ex1_3_pool_order")
    return configs


if __name__ == "__main__":
    cli.run(main)
