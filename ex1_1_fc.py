"""Exercise 1.1: the Assignment 2 fully connected network in PyTorch.

Implement the same fully connected network as in Assignment 2 with built-in PyTorch functions,
with learning parameters imitating the Assignment 2 code (default weight initialisation is fine).
Do you observe similar accuracy? How many times faster/slower was your own implementation?

The "own implementation" is common/numpy_mlp.py, the same network written from scratch in
NumPy. Both start from identical weights and see identical mini-batches, so their curves should
coincide. The speed ratio is measured twice: from the time per epoch of the training runs (which
ran one after the other, so a change of machine load between them changes the ratio), and by
timing training steps of both in turn on the same batches (round-robin, TIMING repeats; the
median and a paired verdict per repeat, measured afresh on every call), at the training batch
size and at the larger TIMING_BATCH_SIZES. On the CPU, and also on the GPU when run with
--device cuda.

NumPy runs its matrix products on NUMPY_BLAS_THREADS OpenBLAS thread(s). In one process with
PyTorch, NumPy's default BLAS threads compete for the cores with PyTorch's OpenMP threads, which
keep spinning for a while after every PyTorch operation (here: slicing each batch); on a 2-core
machine that made each NumPy training step many times slower, a cost of sharing the process that a
NumPy program of its own (Assignment 2) does not pay. (threadpoolctl cannot limit every BLAS, e.g.
not Apple's Accelerate: there NumPy keeps its own threads, with a warning, and the results say so.)

Run:   python ex1_1_fc.py --device cuda     (or --device cpu; --quick for a smoke test)
Writes report/results/ex1_1_fc.json and report/figures/ex1_1_fc_curves.{pdf,png}.
"""
import dataclasses
import math
import sys

import torch
from threadpoolctl import threadpool_info, threadpool_limits
from torch import nn

from common import cli, experiment, mnist, models, plotting, results, timing
from common.numpy_mlp import NumpyLearner, NumpyMLP
from common.train import TorchLearner

HIDDEN = (128, 64)  # 784-128-64-10 with ReLU, as in Assignment 2
EPOCHS = 10
BATCH_SIZE = 64
LR = 0.1  # plain mini-batch SGD, as in Assignment 2
NUM_SEEDS = 3
VAL_SIZE = 5000
TIMING = {"num_batches": 50, "warmup": 5, "repeats": 7}  # round-robin timing of training steps
TIMING_BATCH_SIZES = (64, 256, 1024)  # the step timing also at these batch sizes: where does the ratio go?
NUMPY_BLAS_THREADS = 1  # see the docstring: more contend with PyTorch's OpenMP threads


def main(argv: list[str] | None = None) -> list[dict]:
    parser = cli.make_parser(__doc__, epochs=EPOCHS, batch_size=BATCH_SIZE, lr=LR, num_seeds=NUM_SEEDS)
    ctx = cli.setup(parser, argv, __file__)
    args = ctx.args
    splits = mnist.load_splits(ctx.data_dir, val_size=VAL_SIZE, seed=args.seed, device=ctx.device,
                               quick=ctx.quick, show_progress=ctx.show_progress)

    torch_spec = experiment.RunSpec(
        name="fc_torch_cpu",
        build_model=lambda: models.MLP(hidden=HIDDEN),
        build_optimizer=lambda params: torch.optim.SGD(params, lr=args.lr),
        num_epochs=args.epochs,
        batch_size=args.batch_size,
    )
    with numpy_blas_threads():
        blas_threads = blas_thread_counts()
    if not blas_threads:
        print("warning: threadpoolctl finds no BLAS library of NumPy's to limit (e.g. Apple's Accelerate): the NumPy "
              "network keeps its own threads, which may compete with PyTorch's (see the docstring)", file=sys.stderr)
    numpy_spec = dataclasses.replace(torch_spec, name="fc_numpy", backend="numpy",
                                     extra={"blas_threads": NUMPY_BLAS_THREADS if blas_threads else None})
    cpu = torch.device("cpu")
    with numpy_blas_threads():
        configs = [experiment.run_seeds(numpy_spec, splits, ctx.seeds, cpu, **ctx.run_kwargs())]
    configs.append(experiment.run_seeds(torch_spec, splits, ctx.seeds, cpu, **ctx.run_kwargs()))
    if ctx.device.type != "cpu":
        accel_spec = dataclasses.replace(torch_spec, name=f"fc_torch_{ctx.device.type}")
        configs.append(experiment.run_seeds(accel_spec, splits, ctx.seeds, ctx.device, **ctx.run_kwargs()))

    numpy_time = configs[0]["summary"]["train_time_per_epoch_s"]["mean"]
    steps = {}  # batch size -> the round-robin timing of every learner
    for batch_size in sorted({args.batch_size, *TIMING_BATCH_SIZES}):
        with numpy_blas_threads():  # limits NumPy's BLAS only; PyTorch keeps its threads
            steps[batch_size] = timing.time_train_steps(
                step_learners(args.lr, ctx.device), *splits.train, batch_size=batch_size,
                steps_per_epoch=math.ceil(len(splits.train[1]) / batch_size), **TIMING)
    torch_names = [c["name"] for c in configs[1:]]
    findings = {
        "numpy_blas_threads": blas_threads[0] if blas_threads else "not limited (no BLAS found by threadpoolctl)",
        "numpy_over_torch_time_per_epoch": {
            c["name"]: numpy_time / c["summary"]["train_time_per_epoch_s"]["mean"] for c in configs[1:]},
        "train_step_timing": steps[args.batch_size],
        "per_step": {name: step_comparison(steps[args.batch_size], "fc_numpy", name) for name in torch_names},
        "per_step_by_batch_size": {str(b): {name: step_comparison(steps[b], "fc_numpy", name) for name in torch_names}
                                   for b in steps},
    }
    for config in configs:
        print(results.summary_line(config))
    for name, ratio in findings["numpy_over_torch_time_per_epoch"].items():
        step = findings["per_step"][name]
        print(f"NumPy implementation takes {ratio:.2f}x the time per epoch of {name} (training runs), "
              f"{step['numpy_over_torch']:.2f}x its time per training step (timed in turn: {step['faster']} "
              f"{step['paired']['verdict']}); per step at batch sizes " + ", ".join(
                  f"{b}: {by_batch[name]['numpy_over_torch']:.2f}x"
                  for b, by_batch in findings["per_step_by_batch_size"].items()))
    results.write_results(ctx, "ex1_1_fc", configs, splits.info, findings)
    plotting.plot_training_curves(configs, ctx.figures_dir, "ex1_1_fc_curves",
                                  title=f"Ex 1.1: fully connected 784-{'-'.join(map(str, HIDDEN))}-10, "
                                        f"SGD lr={args.lr}, batch {args.batch_size}")
    return configs


def numpy_blas_threads():
    """A context in which NumPy's BLAS (OpenBLAS here) uses NUMPY_BLAS_THREADS threads; PyTorch's
    OpenMP threads are untouched. A BLAS that threadpoolctl cannot see is left as it is."""
    return threadpool_limits(limits=NUMPY_BLAS_THREADS, user_api="blas")


def blas_thread_counts() -> list[int]:
    """The thread counts of the BLAS libraries threadpoolctl finds in this process ([] if none)."""
    return sorted({info["num_threads"] for info in threadpool_info() if info["user_api"] == "blas"})


def step_comparison(steps: dict[str, dict], numpy_name: str, torch_name: str) -> dict:
    """NumPy's time per training step over PyTorch's, which of the two is faster by the median,
    and whether it is faster in every paired repeat (``timing.paired_comparison``)."""
    ratio = steps[numpy_name]["per_batch_s"] / steps[torch_name]["per_batch_s"]
    faster, slower = (torch_name, numpy_name) if ratio > 1 else (numpy_name, torch_name)
    return {"numpy_over_torch": ratio, "faster": faster,
            "paired": timing.paired_comparison(steps, slower=slower, faster=faster)}


def step_learners(lr: float, device: torch.device) -> dict[str, NumpyLearner | TorchLearner]:
    """The network in NumPy and in PyTorch (on the CPU, and on ``device`` if that is another),
    from the same initial weights, as plain SGD learners for ``timing.time_train_steps``."""
    model = models.MLP(hidden=HIDDEN)
    learners = {"fc_numpy": NumpyLearner(NumpyMLP.from_torch(model), lr=lr)}
    for dev in dict.fromkeys([torch.device("cpu"), device]):
        copy = models.MLP(hidden=HIDDEN).to(dev)
        copy.load_state_dict(model.state_dict())
        learners[f"fc_torch_{dev.type}"] = TorchLearner(copy, torch.optim.SGD(copy.parameters(), lr=lr),
                                                        nn.CrossEntropyLoss(), dev)
    return learners


if __name__ == "__main__":
    cli.run(main)
