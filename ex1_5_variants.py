"""Exercise 1.5: variations of the Exercise 1.2 network.

Try at least three variations based on what you have learned in the course (architecture,
regularisation, optimisation method, learning-rate scheme, activation, ...). How good a performance
do you manage to reach? For the best model: the confusion matrix and a few misclassified test images.

Each variant changes one thing against Exercise 1.2's configuration (plain SGD, batch 64, the
prescribed CNN), whose runs are reused, as is Exercise 1.3's tanh run. "best" combines several
changes at once, chosen on the validation split only. The configuration with the highest mean final
validation accuracy is analysed on the test set, and the weights of its seed with the highest
validation accuracy are saved (report/models/ex1_5_best.pt; common.results.load_model reads it).

Run:  python ex1_5_variants.py --device cuda     (or --device cpu; --quick: a smoke test)
"""
from pathlib import Path

import numpy as np

from common import cli, evaluation, mnist, plots, results, text, train

# Exercise 1.2's configuration: the baseline each variant changes one thing of.
CNN = {"class": "MnistCNN", "channels": (8, 16, 32), "activation": "relu", "pool_first": False,
       "batch_norm": False, "dropout": 0.0}
LOSS = {"class": "CrossEntropyLoss"}
LR = 0.1  # plain SGD; of the rates tried, the one that reaches the best validation plateau soonest (tuning/)
BATCH_SIZE = 64  # chosen with the learning rate (tuning/convergence.py)
EPOCHS = 16  # the Ex 1.2 family's budget, converged on validation (tuning/convergence.py)
SEEDS = 5  # enough for the paired comparisons to resolve differences of the size that matters
AFFINE = {"class": "RandomAffine", "max_rotation_deg": 10.0, "max_shift": 2.0, "max_scale": 0.1}
# The combination: a wider network with batch norm, augmentation, one-cycle SGD with Nesterov momentum,
# weight decay and label smoothing (tuning/README.md says how it was chosen).
BEST = {"model": {**CNN, "channels": (16, 32, 64), "batch_norm": True},
        "loss": {"class": "CrossEntropyLoss", "label_smoothing": 0.1},
        # one-cycle: warm up to lr, then anneal to ~0; momentum cycles between 0.85 and 0.95
        "optimizer": {"class": "SGD", "lr": 0.1, "momentum": 0.9, "nesterov": True, "weight_decay": 5e-4},
        "schedule": {"class": "OneCycleLR"}, "augment": AFFINE, "epochs": 8, "batch_size": 128, "score": "accuracy"}
MISCLASSIFIED_SHOWN = 10
WEIGHTS = Path("models") / "ex1_5_best.pt"

EXERCISE = "ex1_5_variants"  # its results file and figures


def main(argv=None) -> list:
    parser = cli.make_parser(__doc__, epochs=EPOCHS, batch_size=BATCH_SIZE, lr=LR, num_seeds=SEEDS)
    ctx = cli.setup(parser, argv, __file__)
    args = ctx.args
    if args.figures_only:  # make figures: from the results file alone, no data, no training
        return draw(*results.read(ctx.out_dir, EXERCISE, ("misclassified",)), ctx.figures_dir)
    splits = mnist.load_splits(ctx.data_dir, ctx.device, seed=ctx.seed, quick=ctx.quick)
    baseline = {"model": CNN, "loss": LOSS, "optimizer": {"class": "SGD", "lr": args.lr}, "schedule": None,
                "augment": None, "epochs": args.epochs, "batch_size": args.batch_size, "score": "accuracy"}

    configs = [train.run("baseline", baseline, splits, ctx, "baseline (Ex 1.2)"),
               train.run("batch_norm", {**baseline, "model": {**CNN, "batch_norm": True}}, splits, ctx, "batch norm"),
               train.run("augmentation", {**baseline, "augment": AFFINE}, splits, ctx, "augmentation"),
               train.run("tanh", {**baseline, "model": {**CNN, "activation": "tanh"}}, splits, ctx, "tanh"),
               train.run("best", {**BEST, "epochs": args.epochs} if ctx.quick else BEST, splits, ctx, "combination")]

    chosen = max(configs, key=lambda c: results.summary(c)["final_val_accuracy"]["mean"])
    seed_index = max(range(len(chosen.records)), key=lambda k: chosen.records[k]["history"]["epochs"][-1]["val_score"])
    results.save_model(ctx.out_dir / WEIGHTS, chosen, seed_index, splits)
    errors = evaluation.classification_errors(chosen.test_logits()[seed_index], splits.test[1])
    shown = errors.pop("wrong")[:MISCLASSIFIED_SHOWN]  # the most confident errors
    findings = {"versus_baseline": {c.name: evaluation.compare_runs(configs[0], c, splits.test[1])
                                    for c in configs[1:]},
                "chosen_on_validation": chosen.name, "chosen_label": chosen.label,
                "saved_seed": chosen.records[seed_index]["seed"], "best_model_test": {**errors, "misclassified": shown}}
    arrays = {"misclassified": splits.test[0][[w["index"] for w in shown], 0].cpu().numpy().astype(np.float16)}
    numbers = {"chosen": chosen.label, "errors": f"{errors['errors']:,}", "images": f"{errors['images']:,}",
               "top_confusions": errors["top_confusions_text"],
               # (subject, predicate) pairs: the report words them as one sentence (text.grouped)
               "single_changes": [(c.label, text.relation(findings["versus_baseline"][c.name], c.label, "the baseline"))
                                  for c in configs[1:4]],
               "best_vs_baseline": text.relation(findings["versus_baseline"]["best"], configs[4].label,
                                                 "the Exercise 1.2 network"),
               # augmentation at a constant learning rate: how far its validation score still jumps between the
               # late epochs, and so how much where a run stops decides its final score
               "augmentation_swing": f"{100 * evaluation.late_swing(configs[2]):.1f} points",
               # the configuration at a constant rate whose seeds' test scores spread widest
               "widest": max(configs[:4], key=lambda c: np.std([r["test"]["accuracy"] for r in c.records])).label}
    table = [text.row(c.label, findings["versus_baseline"][c.name]) for c in configs[1:]]
    draw(results.write(ctx, EXERCISE, configs, splits, findings, arrays, numbers, table), arrays, ctx.figures_dir)
    return configs


def draw(record: dict, arrays: dict, figures: Path) -> None:
    findings = record["findings"]
    plots.variant_grid(record["configs"], figures / "ex1_5_variants")
    plots.confusion_and_errors(findings["best_model_test"], arrays["misclassified"], figures / "ex1_5_best_test",
                               title=f"{findings['chosen_label']}, seed {findings['saved_seed']}")


if __name__ == "__main__":
    cli.run(main)
