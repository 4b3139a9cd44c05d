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
from pathlib import Path

import torch

from common import cli, evaluation, mnist, plots, results, text, timing, train

MLP = {"class": "MLP", "in_features": 784, "hidden": (128, 64), "num_classes": 10, "activation": "relu"}
LOSS = {"class": "CrossEntropyLoss"}  # softmax + cross-entropy, as in Assignment 2
LR = 0.1  # plain mini-batch SGD, as in Assignment 2
BATCH_SIZE = 64
EPOCHS = 16  # converged on validation (tuning/convergence.py)
SEEDS = 5  # enough for the paired comparisons to resolve differences of the size that matters
TIMING = {"num_batches": 5, "warmup": 1, "repeats": 60}  # short paired repeats share the machine's drift
QUICK_TIMING = {"num_batches": 2, "warmup": 1, "repeats": 1}  # --quick: a smoke test of the timing
TIMING_BATCH_SIZES = (64, 256, 1024)  # where does the ratio go as a step does more arithmetic?

EXERCISE = "ex1_1_fc"  # its results file and figures


def main(argv=None) -> list[train.Runs]:
    parser = cli.make_parser(__doc__, epochs=EPOCHS, batch_size=BATCH_SIZE, lr=LR, num_seeds=SEEDS)
    ctx = cli.setup(parser, argv, __file__)
    args = ctx.args
    if args.figures_only:  # make figures: from the results file alone, no data, no training
        return draw(*results.read(ctx.out_dir, EXERCISE), ctx.figures_dir)
    splits = mnist.load_splits(ctx.data_dir, ctx.device, seed=ctx.seed, quick=ctx.quick)
    config = {"model": MLP, "loss": LOSS, "optimizer": {"class": "SGD", "lr": args.lr}, "schedule": None,
              "augment": None, "epochs": args.epochs, "batch_size": args.batch_size, "score": "accuracy"}

    cpu = torch.device("cpu")
    fc_numpy = train.run("fc_numpy", {**config, "backend": "numpy"}, splits, ctx, "NumPy (our own)")
    fc_torch = train.run("fc_torch_cpu", config, splits, ctx, "PyTorch (CPU)", device=cpu)
    configs = [fc_numpy, fc_torch]
    if ctx.device.type != "cpu":
        configs.append(train.run(f"fc_torch_{ctx.device.type}", config, splits, ctx,
                                 f"PyTorch ({ctx.device.type.upper()})"))

    steps = {}  # batch size -> step times of NumPy and PyTorch, both from the weights of one new network
    for batch_size in sorted({args.batch_size, *TIMING_BATCH_SIZES}):
        twins = timing.twin_learners(train.build_model(config), args.lr, [cpu, ctx.device])
        steps[str(batch_size)] = timing.time_train_steps(
            twins, *splits.train, batch_size=batch_size, reference="PyTorch (CPU)", **(QUICK_TIMING if ctx.quick else TIMING))
    accuracy = evaluation.compare_runs(fc_torch, fc_numpy, splits.test[1])
    findings = {"step_timing": steps, "training_batch_size": args.batch_size, "numpy_vs_torch_accuracy": accuracy}
    numbers = text.cells("accuracy", accuracy)  # a: PyTorch, b: NumPy
    # "do you observe similar accuracy?": yes where the seeds tell no difference; the interval bounds the gap
    numbers["similar"] = "Yes" if accuracy["outcome"] == "unresolved" else "No"
    numbers["accuracy_bound"] = text.signed("accuracy", max(abs(accuracy["ci_low"]), abs(accuracy["ci_high"]))).lstrip("+")
    numbers["gpu"] = ("No GPU was available for these runs." if ctx.device.type == "cpu" else
                      f"PyTorch on the GPU ({ctx.device.type}) is in Table 1.")
    small, large = (text.speed(steps[str(b)]["NumPy"]["versus"], relation=True) for b in (args.batch_size, max(steps, key=int)))
    numbers["speed"] = (f"{small} PyTorch at batch {args.batch_size} and {large} it at batch {max(steps, key=int)}"
                        if small != large else f"{small} PyTorch at every batch size timed")
    for batch, timed in steps.items():
        numbers.update({f"numpy_ms_{batch}": text.ms(timed["NumPy"]["per_batch_s"]),
                        f"torch_ms_{batch}": text.ms(timed["PyTorch (CPU)"]["per_batch_s"]),
                        f"numpy_speed_{batch}": text.speed(timed["NumPy"]["versus"]),
                        f"repeats_{batch}": timed["NumPy"]["repeats"]})
    draw(results.write(ctx, EXERCISE, configs, splits, findings, numbers=numbers), {}, ctx.figures_dir)
    return configs


def draw(record: dict, arrays: dict, figures: Path) -> None:
    plots.curves(record["configs"], figures / "ex1_1_fc_curves", coinciding=True)  # same weights, same batches


if __name__ == "__main__":
    cli.run(main)
