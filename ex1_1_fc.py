"""Exercise 1.1: the Assignment 2 fully connected network in PyTorch.

Implement the fully connected network of Assignment 2 with built-in PyTorch functions, with
learning parameters that imitate the Assignment 2 code (PyTorch's default initialisation is fine).
Do you observe a similar accuracy? How many times faster or slower was your own implementation?
(Use the GPU if there is one.)

Our own implementation is common/numpy_mlp.py: the same network written from scratch in NumPy.
Both start from the same weights and see the same batches. Speed: training steps of the two timed
in turn on the same batches (round-robin, TIMING), at the training batch size and larger ones.

Run:  python ex1_1_fc.py --device cuda     (or --device cpu; --quick: a smoke test in seconds)
"""
import dataclasses
import functools
import math

import torch
from torch import nn

from common import cli, evaluation, experiment, mnist, models, numpy_mlp, plots, results, timing

HIDDEN = (128, 64)  # 784-128-64-10 with ReLU, as in Assignment 2
LOSS = nn.CrossEntropyLoss()  # softmax + cross-entropy, as in Assignment 2
LR = 0.1  # plain mini-batch SGD, as in Assignment 2
BATCH_SIZE = 64
EPOCHS = 10
SEEDS = 3
TIMING = {"num_batches": 5, "warmup": 1, "repeats": 60}  # short paired repeats share the machine's drift
QUICK_TIMING = {"num_batches": 2, "warmup": 1, "repeats": 1}  # --quick: a smoke test of the timing
TIMING_BATCH_SIZES = (64, 256, 1024)  # where does the ratio go as a step does more arithmetic?


def main(argv=None) -> list[experiment.Runs]:
    parser = cli.make_parser(__doc__, epochs=EPOCHS, batch_size=BATCH_SIZE, lr=LR, num_seeds=SEEDS)
    ctx = cli.setup(parser, argv, __file__)
    args = ctx.args
    splits = mnist.load_splits(ctx.data_dir, ctx.device, seed=ctx.seed, quick=ctx.quick)

    fc_torch = experiment.Config("fc_torch_cpu", model=functools.partial(models.MLP, hidden=HIDDEN), loss=LOSS,
                                 optimizer=lambda params: torch.optim.SGD(params, lr=args.lr),
                                 epochs=args.epochs, batch_size=args.batch_size, label="PyTorch, CPU")
    fc_numpy = dataclasses.replace(fc_torch, name="fc_numpy", backend="numpy", label="NumPy (our own)")
    cpu = torch.device("cpu")
    configs = experiment.run_all([fc_numpy, fc_torch], splits, ctx, device=cpu)
    if ctx.device.type != "cpu":
        configs += experiment.run_all([dataclasses.replace(fc_torch, name=f"fc_torch_{ctx.device.type}",
                                                           label=f"PyTorch, {ctx.device.type.upper()}")], splits, ctx)

    steps = {}  # batch size -> step times of NumPy and PyTorch, both from the weights of one new network
    for batch_size in sorted({args.batch_size, *TIMING_BATCH_SIZES}):
        twins = numpy_mlp.twin_learners(models.MLP(hidden=HIDDEN), args.lr, [cpu, ctx.device])
        steps[str(batch_size)] = timing.time_train_steps(
            twins, *splits.train, batch_size=batch_size, reference="PyTorch (CPU)",
            steps_per_epoch=math.ceil(len(splits.train[1]) / batch_size), **(QUICK_TIMING if ctx.quick else TIMING))
    findings = {"step_timing": steps, "training_batch_size": args.batch_size,
                "numpy_vs_torch_accuracy": evaluation.compare_runs(configs[1], configs[0], splits.test[1])}
    results.write(ctx, "ex1_1_fc", configs, splits, findings)
    plots.curves(configs, ctx.figures_dir / "ex1_1_fc_curves")
    return configs


if __name__ == "__main__":
    cli.run(main)
