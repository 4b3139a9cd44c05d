"""Fifth and last validation sweep behind ex2_5_best.py: which statistics the chosen network's
batch-norm layers normalise with when it predicts.

The network and its prediction (test-time augmentation, then POSTPROCESS_CHOICE) are those the
first four sweeps chose. On the reddest hold-out (the 15 most red-stained training images) it
scores about 0.05 below the random hold-out, and the test images are redder than the training
images: a shift of the input distribution, while the batch-norm layers normalise with statistics
of the training images. This sweep asks, on validation only, whether normalising with statistics
of the images predicted helps (``common.seg_eval.adapt_batchnorm``):

* per image: each image's own per-channel statistics, blended with the training ones at weight
  1/4, 1/2 or 1 (each prediction still depends on its own image only);
* per set: the statistics of the whole set predicted (the 15 validation images here; AdaBN).

Nothing is trained beyond the chosen network on each hold-out of holdout_sweep.py (seeds 0 and 1);
those runs are the stain and post-processing sweeps' ``base`` runs, so with their cache they load
instead of training, and the "training statistics" row is the post-processing sweep's p>0.5 row.
ex2_5_best.py applies BATCHNORM_RULE to the record this writes.

Run:   python tuning/seg_batchnorm_sweep.py --device cpu
Writes tuning/seg_batchnorm_sweep.json (with --quick or --out-dir DIR: DIR/seg_batchnorm_sweep.json).
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from torch import Tensor  # noqa: E402

import ex2_5_best  # noqa: E402
import holdout_sweep  # noqa: E402
from common import cli, experiment, seg_eval  # noqa: E402

RECORD_NAME = "seg_batchnorm_sweep.json"


def scores(config: dict, spec: experiment.RunSpec, inputs: Tensor, targets: Tensor, tta: bool) -> dict[str, list[float]]:
    """Per candidate of ex2_5_best.BATCHNORM_CANDIDATES: the Dice per seed of the network's chosen
    prediction with those batch-norm statistics."""
    return {name: seg_eval.mean_dice(ex2_5_best.predicted_masks(config, spec, inputs, tta, batchnorm_candidate=name)[1],
                                     targets)
            for name in ex2_5_best.BATCHNORM_CANDIDATES}


def main(argv: list[str] | None = None) -> None:
    candidates = {name: {"scope": scope, "weight": weight}
                  for name, (scope, weight) in ex2_5_best.BATCHNORM_CANDIDATES.items()}
    holdout_sweep.prediction_sweep(__file__, __doc__, argv, candidates, scores, RECORD_NAME)


if __name__ == "__main__":
    cli.run(main)
