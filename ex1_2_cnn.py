"""Exercise 1.2: the prescribed CNN on MNIST, trained with plain SGD.

Construct the network below in PyTorch and train it with standard stochastic gradient descent,
choosing a mini-batch size, number of epochs and learning rate that converge well. Reach above 98 %
test accuracy. How many learnable weights does the network contain, compared with Exercise 1.1?

    conv 8 x 3x3x1 (stride 1, padding 1), ReLU, max pool 2x2/2,
    conv 16 x 3x3x8, ReLU, max pool 2x2/2, conv 32 x 3x3x16, ReLU,
    fully connected 10, softmax, cross-entropy

Run:  python ex1_2_cnn.py --device cuda     (or --device cpu; --quick: a smoke test in seconds)
"""
import functools

import torch
from torch import nn

import ex1_1_fc
from common import cli, experiment, mnist, models, plots, results

LOSS = nn.CrossEntropyLoss()  # the softmax of layer 10 and the cross-entropy of layer 11
LR = 0.05  # plain SGD: no momentum, no weight decay
BATCH_SIZE = 64
EPOCHS = 5
SEEDS = 3


def config(args, name: str = "cnn_sgd", label: str | None = None, **model_options) -> experiment.Config:
    """``models.MnistCNN(**model_options)`` (the network above without options) trained as here.
    Exercises 1.3-1.5 build their baseline and variants with this, so their baseline is the very
    run trained here (the run cache ignores the name)."""
    return experiment.Config(name, model=functools.partial(models.MnistCNN, **model_options), loss=LOSS,
                             optimizer=lambda params: torch.optim.SGD(params, lr=args.lr),
                             epochs=args.epochs, batch_size=args.batch_size, label=label)


def main(argv=None) -> experiment.Runs:
    parser = cli.make_parser(__doc__, epochs=EPOCHS, batch_size=BATCH_SIZE, lr=LR, num_seeds=SEEDS)
    ctx = cli.setup(parser, argv, __file__)
    splits = mnist.load_splits(ctx.data_dir, ctx.device, seed=ctx.seed, quick=ctx.quick)

    [cnn] = experiment.run_all([config(ctx.args, label="CNN, SGD")], splits, ctx)

    fc_weights = models.count_weights(models.MLP(hidden=ex1_1_fc.HIDDEN))  # the Exercise 1.1 network
    findings = {"cnn_weights": cnn.num_weights, "fc_weights": fc_weights,
                "fc_to_cnn_weight_ratio": fc_weights / cnn.num_weights,
                "cnn_weights_per_layer": {name: p.numel() for name, p in models.MnistCNN().named_parameters()}}
    results.write(ctx, "ex1_2_cnn", [cnn], splits, findings)
    plots.curves([cnn], ctx.figures_dir / "ex1_2_cnn_curves")
    return cnn


if __name__ == "__main__":
    cli.run(main)
