"""Round 2, stain robustness: stain jitter, per-image input standardisation and test-time augmentation,
validated on the random hold-out and on the 15 most red-stained training images (the test images are
redder than the training images); selection.STAIN_RULE.

Run:  python -m tuning.seg_stain_sweep --device cpu
Writes tuning/seg_stain_sweep.json (with --quick or --out-dir DIR: DIR/seg_stain_sweep.json).
"""
from common import cli

from . import selection, sweep


def main(argv=None) -> dict:
    ctx = cli.setup(sweep.parser(__doc__), argv, __file__)
    candidates = {name: sweep.config(ctx, ctx.args.epochs, **changes) for name, changes in selection.STAIN.items()}
    record = {"epochs": ctx.args.epochs, **sweep.train_candidates(ctx, candidates)}
    sweep.write(ctx, record, "seg_stain_sweep")
    return record


if __name__ == "__main__":
    cli.run(main)
