"""Second validation sweep behind ex2_5_best.py: robustness to staining.

The first sweep (seg_best_sweep.py) chose the architecture and the number of epochs; all its
candidates scored 0.92-0.93 on the random validation split, which the test set does not reach. The
test images are, by their unlabelled inputs alone, more red-stained than the training images (the
red share of ``common.warwick.red_share``). This sweep asks, on validation only, whether three
cheap measures against a stain shift help:

* ``stain jitter``: random per-channel contrast and brightness during training
  (``common.seg_augment.StainJitter``), on top of the flips and rotations;
* ``input norm``: each input image standardised per channel by the network itself
  (``SegNet(input_norm=True)``);
* test-time augmentation (TTA): the prediction averaged over the 8 flips/rotations of the image
  (``common.seg_eval.dihedral_tta_logits``), evaluated for every trained candidate.

Each trained candidate is run on two validation designs (common.warwick.HOLDOUTS): the random
15-image hold-out of every exercise, and ``reddest``: the 15 most red-stained training images held
out, so that the network is validated on staining outside the range it trained on. Every run computes a test score (see
common.experiment); this script neither prints, writes nor reads it.
ex2_5_best.py applies its stated rule to the record this writes.

Run:   python tuning/seg_stain_sweep.py --device cpu
Writes tuning/seg_stain_sweep.json (with --quick or --out-dir DIR: DIR/seg_stain_sweep.json).
"""
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

import ex2_1_segnet  # noqa: E402
import ex2_5_best  # noqa: E402
from common import cli, experiment, seg_eval, warwick  # noqa: E402
from common.metrics import dice_per_sample  # noqa: E402

RECORD_NAME = "seg_stain_sweep.json"


def main(argv: list[str] | None = None) -> None:
    parser = cli.make_parser(__doc__, epochs=ex2_5_best.EPOCHS, batch_size=ex2_5_best.BATCH_SIZE,
                             lr=ex2_5_best.LR, num_seeds=2)
    ctx = cli.setup(parser, argv, __file__)
    rows, stain = {}, {}
    raw = warwick.load_warwick(ctx.data_dir)
    red = {name: share for split in raw.values() for name, share in zip(split[2], warwick.red_share(split[0]))}
    for holdout in warwick.HOLDOUTS:
        splits = warwick.load_splits(ctx.data_dir, val_size=ex2_1_segnet.VAL_SIZE, seed=ctx.args.seed,
                                     device=ctx.device, quick=ctx.quick, holdout=holdout)
        val_inputs, val_targets = splits.val
        # the stain balance each design trains and validates on; the test set's from its inputs alone
        shares = {part: [red[n] for n in names] for part, names in splits.info["names"].items()}
        stain[holdout] = {"train_max": float(max(shares["train"])), "val_min": float(min(shares["val"])),
                          "val_max": float(max(shares["val"])),
                          "test_above_train_max": int(sum(v > max(shares["train"]) for v in shares["test"])),
                          "test_images": len(shares["test"])}
        for name, options in ex2_5_best.STAIN_CANDIDATES.items():
            spec = ex2_5_best.best_spec(ctx.args, name, **options)
            config = experiment.run_seeds(spec, splits, ctx.seeds, ctx.device, **ctx.run_kwargs())
            plain = [r["history"]["epochs"][-1]["val_score"] for r in config["runs"]]
            tta = [float(dice_per_sample(logits, val_targets.cpu()).mean())
                   for logits in seg_eval.tta_logits(config, spec.build_model, val_inputs)]
            for label, values in ((name, plain), (name + ex2_5_best.TTA_SUFFIX, tta)):
                row = rows.setdefault(label, {"weights": config["num_weights"], "final_val_dice": {}})
                row["final_val_dice"][holdout] = values
                print(f"{holdout:8s} {label:24s} final val Dice {' '.join(f'{v:.4f}' for v in values)} "
                      f"(mean {np.mean(values):.4f})", flush=True)
    out_dir = ctx.out_dir if ctx.args.out_dir or ctx.quick else Path(__file__).resolve().parent
    out_dir.mkdir(parents=True, exist_ok=True)
    record = {"device": str(ctx.device), "seeds": ctx.seeds, "epochs": ctx.args.epochs,
              "holdouts": list(warwick.HOLDOUTS), "val_size": ex2_1_segnet.VAL_SIZE, "red_share": stain,
              "candidates": rows}
    (out_dir / RECORD_NAME).write_text(json.dumps(record, indent=1))
    print(f"wrote {out_dir / RECORD_NAME}")


if __name__ == "__main__":
    cli.run(main)
