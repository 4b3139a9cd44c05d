"""Exercise 1.4: Adam instead of plain SGD.

Train the Exercise 1.2 network with Adam (PyTorch's default parameters) instead of SGD. Do you get
better results faster than with plain SGD?

The same network, initial weights, batches, batch size and epochs as Exercise 1.2, whose SGD run is
reused; compared per epoch, per second of training, and by when each first reaches SGD's final
validation accuracy.

Run:  python ex1_4_adam.py --device cuda     (or --device cpu; --quick: a smoke test)
"""
import dataclasses

import torch

import ex1_2_cnn
from common import cli, evaluation, experiment, mnist, plots, results

ADAM_LR = 1e-3  # PyTorch's defaults: lr 1e-3, betas (0.9, 0.999), eps 1e-8, no weight decay


def main(argv=None) -> list[experiment.Runs]:
    parser = cli.make_parser(__doc__, epochs=ex1_2_cnn.EPOCHS, batch_size=ex1_2_cnn.BATCH_SIZE, lr=ex1_2_cnn.LR,
                             num_seeds=ex1_2_cnn.SEEDS)
    parser.add_argument("--adam-lr", type=cli.positive_float, default=ADAM_LR,
                        help="Adam's learning rate (default: %(default)s); --lr is SGD's")
    ctx = cli.setup(parser, argv, __file__)
    args = ctx.args
    splits = mnist.load_splits(ctx.data_dir, ctx.device, seed=ctx.seed, quick=ctx.quick)

    sgd = ex1_2_cnn.config(args, "cnn_sgd", f"SGD, lr {args.lr:g}")  # Ex 1.2's run, with its cross-entropy loss
    adam = dataclasses.replace(sgd, name="cnn_adam", label=f"Adam, lr {args.adam_lr:g}",
                               optimizer=lambda params: torch.optim.Adam(params, lr=args.adam_lr))
    sgd_runs, adam_runs = experiment.run_all([sgd, adam], splits, ctx)

    target = results.summary(sgd_runs)["final_val_accuracy"]["mean"]
    findings = {"adam_vs_sgd": evaluation.compare_runs(sgd_runs, adam_runs, splits.test[1]),
                "to_reach_sgd_final_val_accuracy": {"target": target, **{
                    r.name: evaluation.speed_of_learning(r, target) for r in (sgd_runs, adam_runs)}}}
    results.write(ctx, "ex1_4_adam", [sgd_runs, adam_runs], splits, findings)
    plots.curves([sgd_runs, adam_runs], ctx.figures_dir / "ex1_4_adam_curves", against_time=True)
    return [sgd_runs, adam_runs]


if __name__ == "__main__":
    cli.run(main)
