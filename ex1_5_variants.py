"""Exercise 1.5: variations of the Exercise 1.2 network.

Try at least three variations based on what you have learned in the course (architecture,
regularisation, optimisation method, learning-rate scheme, activation, ...). How good a performance
do you manage to reach? For the best model: the confusion matrix and a few misclassified test images.

Each variant changes one thing against Exercise 1.2's configuration (SGD lr 0.05, batch 64, the
prescribed CNN), whose runs are reused, as is Exercise 1.3's tanh run. "best" combines several
changes at once, chosen on the validation split only. The configuration with the highest mean final
validation accuracy is analysed on the test set, and the weights of its seed with the highest
validation accuracy are saved; ``--from-weights`` remakes its figures from them without training.

Run:  python ex1_5_variants.py --device cuda     (or --device cpu; --quick: a smoke test)
      python ex1_5_variants.py --from-weights report/models/ex1_5_best.pt   (figures only)
"""
import dataclasses
import functools
from pathlib import Path

import torch
from torch import nn

import ex1_2_cnn
from common import augment, cli, evaluation, experiment, mnist, models, plots, results

AUGMENT = augment.RandomAffine(max_rotation_deg=10.0, max_shift=2.0, max_scale=0.1)
# The combination: a wider network with batch norm, augmentation, one-cycle SGD with Nesterov momentum,
# weight decay and label smoothing (tuning/README.md says how it was chosen).
BEST_MODEL = {"channels": (16, 32, 64), "batch_norm": True}
BEST_LOSS = nn.CrossEntropyLoss(label_smoothing=0.1)
BEST_EPOCHS = 6
BEST_BATCH_SIZE = 128
BEST_MAX_LR = 0.1  # one-cycle: warm up to this, then anneal to ~0
BEST_MOMENTUM = 0.9  # Nesterov; one-cycle cycles it between 0.85 and 0.95
BEST_WEIGHT_DECAY = 5e-4
MISCLASSIFIED_SHOWN = 10
WEIGHTS = Path("models") / "ex1_5_best.pt"
TEST_FIGURES = "ex1_5_best_test"  # the best model's confusion matrix and misclassified images (.pdf, .png)


def best_config(epochs: int) -> experiment.Config:
    return experiment.Config(
        "best", model=functools.partial(models.MnistCNN, **BEST_MODEL), loss=BEST_LOSS,
        optimizer=lambda params: torch.optim.SGD(params, lr=BEST_MAX_LR, momentum=BEST_MOMENTUM, nesterov=True,
                                                 weight_decay=BEST_WEIGHT_DECAY),
        scheduler=lambda opt, steps: torch.optim.lr_scheduler.OneCycleLR(opt, BEST_MAX_LR, epochs=epochs,
                                                                        steps_per_epoch=steps),
        scheduler_per_batch=True, augment=AUGMENT, epochs=epochs, batch_size=BEST_BATCH_SIZE,
        label="combination")


def main(argv=None) -> list:
    parser = cli.make_parser(__doc__, epochs=ex1_2_cnn.EPOCHS, batch_size=ex1_2_cnn.BATCH_SIZE, lr=ex1_2_cnn.LR,
                             num_seeds=ex1_2_cnn.SEEDS)
    parser.add_argument("--from-weights", type=Path, default=None,
                        help="only remake the best model's test figures from this weights file (no training)")
    ctx = cli.setup(parser, argv, __file__)
    args = ctx.args
    saved = results.load_model(args.from_weights, models.MnistCNN) if args.from_weights else None  # fail fast
    splits = mnist.load_splits(ctx.data_dir, ctx.device, seed=ctx.seed, quick=ctx.quick)
    if saved is not None:  # figures only: no training, no results file
        errors = test_figures(evaluation.logits(saved["model"], splits.test[0]), splits, ctx, saved["name"])
        print(f"figures of {saved['name']} from {args.from_weights}: {ctx.figures_dir / TEST_FIGURES}.pdf and .png")
        return [errors]

    baseline = ex1_2_cnn.config(args, "baseline", "baseline (Ex 1.2)")
    variants = [baseline,
                ex1_2_cnn.config(args, "batch_norm", "batch norm", batch_norm=True),
                dataclasses.replace(baseline, name="augmentation", label="augmentation", augment=AUGMENT),
                ex1_2_cnn.config(args, "tanh", "tanh", activation="tanh"),
                best_config(args.epochs if ctx.quick else BEST_EPOCHS)]
    configs = experiment.run_all(variants, splits, ctx)

    chosen = max(configs, key=lambda c: results.summary(c)["final_val_accuracy"]["mean"])
    seed_index = max(range(len(chosen.records)), key=lambda k: chosen.records[k]["history"]["epochs"][-1]["val_score"])
    results.save_model(ctx.out_dir / WEIGHTS, chosen, seed_index, splits)
    findings = {"versus_baseline": {c.name: evaluation.compare_runs(configs[0], c, splits.test[1])
                                    for c in configs[1:]},
                "chosen_on_validation": chosen.name, "chosen_label": chosen.label, "saved_seed": chosen.records[seed_index]["seed"],
                "best_model_test": test_figures(chosen.test_logits()[seed_index], splits, ctx, chosen.label)}
    results.write(ctx, "ex1_5_variants", configs, splits, findings)
    plots.variant_grid(configs, ctx.figures_dir / "ex1_5_variants")
    return configs


def test_figures(logits: torch.Tensor, splits, ctx, name: str) -> dict:
    """The confusion matrix and the misclassified test images (most confident first) of one model."""
    errors = evaluation.classification_errors(logits, splits.test[1])
    plots.confusion_and_errors(errors, splits.test[0], MISCLASSIFIED_SHOWN, ctx.figures_dir / TEST_FIGURES, title=name)
    return {k: v for k, v in errors.items() if k != "wrong"}


if __name__ == "__main__":
    cli.run(main)
