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

from torch import Tensor  # noqa: E402

import ex2_5_best  # noqa: E402
import holdout_sweep  # noqa: E402
from common import cli, experiment, seg_eval  # noqa: E402

RECORD_NAME = "seg_postprocess_sweep.json"


def scores(config: dict, spec: experiment.RunSpec, inputs: Tensor, targets: Tensor, tta: bool) -> dict[str, list[float]]:
    """Per candidate of ex2_5_best.POSTPROCESS_CANDIDATES: the Dice per seed of the masks it makes
    of the network's (TTA) probabilities."""
    logits = seg_eval.run_logits(config, spec.build_model, inputs, tta)
    return {name: seg_eval.mean_dice([seg_eval.foreground_masks(lg, threshold, fill_holes) for lg in logits], targets)
            for name, (threshold, fill_holes) in ex2_5_best.POSTPROCESS_CANDIDATES.items()}


def main(argv: list[str] | None = None) -> None:
    candidates = {name: {"threshold": threshold, "fill_holes": fill_holes}
                  for name, (threshold, fill_holes) in ex2_5_best.POSTPROCESS_CANDIDATES.items()}
    holdout_sweep.prediction_sweep(__file__, __doc__, argv, candidates, scores, RECORD_NAME)


if __name__ == "__main__":
    cli.run(main)
