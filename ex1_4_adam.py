"""Exercise 1.4: Adam instead of plain SGD.

Train the Exercise 1.2 network with Adam (PyTorch's default parameters) instead of SGD. Do you get
better results faster than with plain SGD?

The same network, initial weights, batches, batch size and epochs as Exercise 1.2, whose SGD run is
reused; compared per epoch, per second of training, and by when each first reaches SGD's final
validation accuracy.

Run:  python ex1_4_adam.py --device cuda     (or --device cpu; --quick: a smoke test)
"""
from pathlib import Path

from common import cli, evaluation, mnist, plots, results, text, train

# Exercise 1.2's network, loss, batch size and epochs; its SGD run is reused.
CNN = {"class": "MnistCNN", "channels": (8, 16, 32), "activation": "relu", "pool_first": False,
       "batch_norm": False, "dropout": 0.0}
LOSS = {"class": "CrossEntropyLoss"}
SGD_LR = 0.1  # plain SGD; of the rates tried, the one that reaches the best validation plateau soonest (tuning/)
ADAM_LR = 0.001  # PyTorch's default, as the exercise allows; no rate tried on validation did better (tuning/)
BATCH_SIZE = 64  # chosen with the learning rate (tuning/convergence.py)
EPOCHS = 16  # the Ex 1.2 family's budget, converged on validation (tuning/convergence.py)
SEEDS = 5  # enough for the paired comparisons to resolve differences of the size that matters

EXERCISE = "ex1_4_adam"  # its results file and figures


def main(argv=None) -> list[train.Runs]:
    parser = cli.make_parser(__doc__, epochs=EPOCHS, batch_size=BATCH_SIZE, lr=SGD_LR, num_seeds=SEEDS)
    parser.add_argument("--adam-lr", type=cli.positive_float, default=ADAM_LR,
                        help="Adam's learning rate (default: %(default)s); --lr is SGD's")
    ctx = cli.setup(parser, argv, __file__)
    args = ctx.args
    if args.figures_only:  # make figures: from the results file alone, no data, no training
        return draw(*results.read(ctx.out_dir, EXERCISE), ctx.figures_dir)
    splits = mnist.load_splits(ctx.data_dir, ctx.device, seed=ctx.seed, quick=ctx.quick)
    config = {"model": CNN, "loss": LOSS, "optimizer": {"class": "SGD", "lr": args.lr}, "schedule": None,
              "augment": None, "epochs": args.epochs, "batch_size": args.batch_size, "score": "accuracy"}

    sgd = train.run("cnn_sgd", config, splits, ctx, f"SGD, lr {args.lr:g}")
    adam = train.run("cnn_adam", {**config, "optimizer": {"class": "Adam", "lr": args.adam_lr}}, splits, ctx,
                     f"Adam, lr {args.adam_lr:g}")

    # "faster": the epoch at which each run first reaches a validation accuracy every SGD run reaches
    target = min(r["history"]["epochs"][-1]["val_score"] for r in sgd.records)
    test = evaluation.compare_runs(sgd, adam, splits.test[1])
    sooner = evaluation.paired_epochs_to_threshold(sgd, adam, target)
    findings = {"adam_vs_sgd": test, "epochs_to_target": sooner}
    rows = ("test accuracy", "epochs to reach the target")
    table = [text.row(rows[0], test), text.epochs_row(rows[1], sooner)]
    # the exercise's question, "better results faster?", answered from the two comparisons
    gains = (test["outcome"] == "better") + (sooner["outcome"] == "sooner")
    numbers = {"answer": ("No", "Partly", "Yes")[gains], "target": text.score("accuracy", target),
               "adam_vs_sgd": text.relation(test, rows[0], "SGD's"), "adam_when": text.when(sooner, "SGD", rows[1])}
    draw(results.write(ctx, EXERCISE, [sgd, adam], splits, findings, numbers=numbers, table=table), {},
         ctx.figures_dir)
    return [sgd, adam]


def draw(record: dict, arrays: dict, figures: Path) -> None:
    plots.curves(record["configs"], figures / "ex1_4_adam_curves", against_time=True)


if __name__ == "__main__":
    cli.run(main)
