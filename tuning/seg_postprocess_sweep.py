"""Fourth validation sweep behind ex2_5_best.py: from the chosen network's probabilities to a mask.

The network and its prediction (with test-time augmentation) are those the first three sweeps
chose (ex2_5_best.final_choice). On the reddest hold-out (the 15 most red-stained training
images) they score about 0.05 below the random hold-out, and the test set's worst images are
under-segmented; the ground truth's glands include their lumen. This sweep asks, on validation
only, whether turning the gland probability into a mask differently helps:

* a threshold on the gland probability other than 0.5 (0.3, 0.4, 0.6, 0.7);
* filling holes: background regions that the predicted gland encloses completely become gland
  (``common.seg_eval.foreground_masks``);

and both. Nothing is trained beyond the chosen network on each hold-out of holdout_sweep.py (seeds
0 and 1); those runs are the stain sweep's ``base`` runs, so with its cache they load instead of
training. ex2_5_best.py applies POSTPROCESS_RULE to the record this writes.

Run:   python tuning/seg_postprocess_sweep.py --device cpu
Writes tuning/seg_postprocess_sweep.json (with --quick or --out-dir DIR: DIR/seg_postprocess_sweep.json).
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import ex2_5_best  # noqa: E402
import holdout_sweep  # noqa: E402
from common import cli, experiment, seg_eval  # noqa: E402

RECORD_NAME = "seg_postprocess_sweep.json"


def main(argv: list[str] | None = None) -> None:
    parser = holdout_sweep.make_parser(__doc__)
    ctx = cli.setup(parser, argv, __file__)
    if not ctx.quick and ctx.args.epochs != ex2_5_best.EPOCHS:
        parser.error("--epochs: the network trains for the chosen size candidate's epochs (ex2_5_best.SIZE_CHOICE)")
    stain, size, tta = ex2_5_best.final_choice(ex2_5_best.STAIN_CHOICE, ex2_5_best.SIZE_CHOICE)
    channels, epochs = ex2_5_best.SIZE_CANDIDATES[size]
    args = holdout_sweep.epochs_args(ctx, epochs)
    rows, all_splits = {}, {}
    for holdout, splits in holdout_sweep.holdouts(ctx):
        all_splits[holdout] = splits
        spec = ex2_5_best.best_spec(args, channels=channels, **ex2_5_best.STAIN_CANDIDATES[stain])
        config = experiment.run_seeds(spec, splits, ctx.seeds, ctx.device, **ctx.run_kwargs())
        val_inputs, val_targets = splits.val
        logits = seg_eval.run_logits(config, spec.build_model, val_inputs, tta)
        for name, (threshold, fill_holes) in ex2_5_best.POSTPROCESS_CANDIDATES.items():
            values = seg_eval.mean_dice([seg_eval.foreground_masks(lg, threshold, fill_holes) for lg in logits],
                                        val_targets)
            row = rows.setdefault(name, {"threshold": threshold, "fill_holes": fill_holes, "final_val_dice": {}})
            row["final_val_dice"][holdout] = values
            holdout_sweep.print_scores(holdout, name, values)
    record = holdout_sweep.record(ctx, rows, all_splits)
    predictor = {"stain": stain, "size": size, "channels": list(channels), "epochs": args.epochs, "tta": tta}
    holdout_sweep.write_record(ctx, {"predictor": predictor, **record}, RECORD_NAME)


if __name__ == "__main__":
    cli.run(main)
