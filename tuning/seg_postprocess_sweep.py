"""Round 4, from the chosen network's probabilities to a mask: thresholds other than 0.5 and filling
holes that gland encloses (the ground truth's glands include their lumen); selection.POSTPROCESS_RULE.
Trains nothing beyond the chosen network on each hold-out (the stain sweep's "base" runs).

Run:  python -m tuning.seg_postprocess_sweep --device cpu
Writes tuning/seg_postprocess_sweep.json (with --quick or --out-dir DIR: DIR/seg_postprocess_sweep.json).
"""
from common import cli

from . import selection, sweep


def main(argv=None) -> dict:
    ctx = cli.setup(sweep.parser(__doc__), argv, __file__)
    candidates = {name: {"threshold": t, "fill_holes": f} for name, (t, f) in selection.POSTPROCESS.items()}

    def scores(runs, inputs, targets):
        return {name: sweep.dice(sweep.tta_masks(runs, inputs, threshold=t, fill_holes=f), targets)
                for name, (t, f) in selection.POSTPROCESS.items()}

    record = sweep.predictions(ctx, candidates, scores)
    sweep.write(ctx, record, "seg_postprocess_sweep")
    return record


if __name__ == "__main__":
    cli.run(main)
