"""Exercise 1.1: the Assignment 2 fully connected network in PyTorch.

Implement the same fully connected network as in Assignment 2 with built-in PyTorch functions,
with learning parameters imitating the Assignment 2 code (default weight initialisation is fine).
Do you observe similar accuracy? How many times faster/slower was your own implementation?

The "own implementation" is common/numpy_mlp.py, the same network written from scratch in
NumPy. Both start from identical weights and see identical mini-batches, so their curves should
coincide; the time per epoch of each gives the speed ratio (on the CPU, and also on the GPU
when run with --device cuda).

Run:   python ex1_1_fc.py --device cuda     (or --device cpu; --quick for a smoke test)
Writes report/results/ex1_1_fc.json and report/figures/ex1_1_fc_curves.{pdf,png}.
"""
import dataclasses

import torch

from common import cli, experiment, mnist, models, plotting, results

HIDDEN = (128, 64)  # 784-128-64-10 with ReLU, as in Assignment 2
EPOCHS = 10
BATCH_SIZE = 64
LR = 0.1  # plain mini-batch SGD, as in Assignment 2
NUM_SEEDS = 3
VAL_SIZE = 5000


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
    numpy_spec = dataclasses.replace(torch_spec, name="fc_numpy", backend="numpy")
    cpu = torch.device("cpu")
    configs = [experiment.run_seeds(numpy_spec, splits, ctx.seeds, cpu, **ctx.run_kwargs()),
               experiment.run_seeds(torch_spec, splits, ctx.seeds, cpu, **ctx.run_kwargs())]
    if ctx.device.type != "cpu":
        accel_spec = dataclasses.replace(torch_spec, name=f"fc_torch_{ctx.device.type}")
        configs.append(experiment.run_seeds(accel_spec, splits, ctx.seeds, ctx.device, **ctx.run_kwargs()))

    numpy_time = configs[0]["summary"]["train_time_per_epoch_s"]["mean"]
    findings = {"numpy_over_torch_time_per_epoch": {
        c["name"]: numpy_time / c["summary"]["train_time_per_epoch_s"]["mean"] for c in configs[1:]}}
    for config in configs:
        print(results.summary_line(config))
    for name, ratio in findings["numpy_over_torch_time_per_epoch"].items():
        print(f"NumPy implementation takes {ratio:.2f}x the time per epoch of {name}")
    results.write_results(ctx, "ex1_1_fc", configs, splits.info, findings)
    plotting.plot_training_curves(configs, ctx.figures_dir, "ex1_1_fc_curves",
                                  title=f"Ex 1.1: fully connected 784-{'-'.join(map(str, HIDDEN))}-10, "
                                        f"SGD lr={args.lr}, batch {args.batch_size}")
    return configs


if __name__ == "__main__":
    cli.run(main)
