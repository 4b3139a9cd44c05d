"""Round 5, the last: which statistics the chosen network's batch norm normalises with when it
predicts: the training ones, each image's own blended in (weights 1/4, 1/2, 1), or those of the whole
set predicted (AdaBN); selection.BATCHNORM_RULE. Trains nothing beyond the chosen network.

Run:  python -m tuning.seg_batchnorm_sweep --device cpu
Writes tuning/seg_batchnorm_sweep.json (with --quick or --out-dir DIR: DIR/seg_batchnorm_sweep.json).
"""
from common import cli

from . import selection, sweep


def main(argv=None) -> dict:
    ctx = cli.setup(sweep.parser(__doc__), argv, __file__)
    candidates = {name: {"scope": scope, "weight": weight} for name, (scope, weight) in selection.BATCHNORM.items()}

    def scores(runs, inputs, targets):
        return {name: sweep.dice(sweep.tta_masks(runs, inputs, batchnorm=adapt), targets)
                for name, adapt in selection.BATCHNORM.items()}

    record = sweep.predictions(ctx, candidates, scores)
    sweep.write(ctx, record, "seg_batchnorm_sweep")
    return record


if __name__ == "__main__":
    cli.run(main)
