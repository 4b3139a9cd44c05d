"""Exercise 1.2: the prescribed CNN on MNIST, trained with plain SGD.

Construct the network below, train it with standard stochastic gradient descent, choosing a
mini-batch size, epoch count and learning rate that converge well; reach above 98 % test
accuracy. How many learnable weights does the network contain, compared with Exercise 1.1?

    conv 8 x 3x3x1 (stride 1, pad 1), ReLU, max pool 2x2/2,
    conv 16 x 3x3x8, ReLU, max pool 2x2/2, conv 32 x 3x3x16, ReLU,
    fully connected 10, softmax, cross-entropy

Run:   python ex1_2_cnn.py --device cuda     (or --device cpu; --quick for a smoke test)
Writes report/results/ex1_2_cnn.json and report/figures/ex1_2_cnn_curves.{pdf,png}.
"""
import argparse
import functools

import torch

from common import cli, experiment, mnist, models, plotting, results

EPOCHS = 15
BATCH_SIZE = 64
LR = 0.05  # plain SGD: no momentum, no weight decay. Set by hand in early trials on validation accuracy
# (no sweep recorded); even at 0.05 one seed's validation loss jumps for one epoch and recovers
NUM_SEEDS = 3
VAL_SIZE = 5000  # images held out of the 60,000 training images for validation


def cnn_spec(args: argparse.Namespace, name: str = "cnn_sgd", **model_options) -> experiment.RunSpec:
    """This exercise's configuration: ``models.MnistCNN(**model_options)`` trained with plain SGD.

    Exercises 1.3-1.5 build their baseline (no options) and their variants with this, so the
    baseline is the very same run as here and comes from the run cache (its key ignores ``name``).
    """
    return experiment.RunSpec(
        name=name,
        build_model=functools.partial(models.MnistCNN, **model_options),
        build_optimizer=lambda params: torch.optim.SGD(params, lr=args.lr),
        num_epochs=args.epochs,
        batch_size=args.batch_size,
    )


def main(argv: list[str] | None = None) -> dict:
    parser = cli.make_parser(__doc__, epochs=EPOCHS, batch_size=BATCH_SIZE, lr=LR, num_seeds=NUM_SEEDS)
    ctx = cli.setup(parser, argv, __file__)
    args = ctx.args
    splits = mnist.load_splits(ctx.data_dir, val_size=VAL_SIZE, seed=args.seed, device=ctx.device,
                               quick=ctx.quick, show_progress=ctx.show_progress)

    cnn = experiment.run_seeds(cnn_spec(args), splits, ctx.seeds, ctx.device, **ctx.run_kwargs())

    fc_weights = models.count_weights(models.MLP())  # the Exercise 1.1 network
    findings = {"cnn_weights": cnn["num_weights"], "fc_weights": fc_weights,
                "cnn_weights_per_layer": {name: p.numel() for name, p in models.MnistCNN().named_parameters()},
                "fc_to_cnn_weight_ratio": fc_weights / cnn["num_weights"]}
    print(results.summary_line(cnn))
    print(f"weights: CNN {cnn['num_weights']:,}, fully connected (Ex 1.1) {fc_weights:,}: "
          f"the fully connected net has {findings['fc_to_cnn_weight_ratio']:.1f}x as many")
    results.write_results(ctx, "ex1_2_cnn", [cnn], splits.info, findings)
    plotting.plot_training_curves([cnn], ctx.figures_dir, "ex1_2_cnn_curves",
                                  title=f"Ex 1.2: CNN, SGD lr={args.lr}, batch {args.batch_size}")
    return cnn


if __name__ == "__main__":
    cli.run(main)
