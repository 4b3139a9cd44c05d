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

Each trained candidate is run on both validation designs of holdout_sweep.py (the random
hold-out of every exercise, and the 15 most red-stained training images). ex2_5_best.py applies its
stated rule to the record this writes.

Run:   python tuning/seg_stain_sweep.py --device cpu
Writes tuning/seg_stain_sweep.json (with --quick or --out-dir DIR: DIR/seg_stain_sweep.json).
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import ex2_5_best  # noqa: E402
import holdout_sweep  # noqa: E402
from common import cli  # noqa: E402

RECORD_NAME = "seg_stain_sweep.json"


def main(argv: list[str] | None = None) -> None:
    parser = holdout_sweep.make_parser(__doc__)
    ctx = cli.setup(parser, argv, __file__)
    candidates = {name: (ctx.args.epochs, options) for name, options in ex2_5_best.STAIN_CANDIDATES.items()}
    record = holdout_sweep.sweep(ctx, candidates)
    holdout_sweep.write_record(ctx, {"epochs": ctx.args.epochs, **record}, RECORD_NAME)


if __name__ == "__main__":
    cli.run(main)
