"""Round 3, width and epochs again, on both hold-outs (round 1 had the random one only, where the
candidates of 100 epochs or more lay close together), each with and without test-time augmentation;
selection.SIZE_RULE.

Run:  python -m tuning.seg_size_sweep --device cuda     (CPU: hours)
Writes tuning/seg_size_sweep.json (with --quick or --out-dir DIR: DIR/seg_size_sweep.json).
"""
from common import cli

from . import selection, sweep


def main(argv=None) -> dict:
    parser = sweep.parser(__doc__)
    parser.add_argument("--only", nargs="*", default=None, help="candidate names to run (default: all)")
    ctx = cli.setup(parser, argv, __file__)
    candidates = {name: sweep.config(ctx, epochs, channels=channels)
                  for name, (channels, epochs) in selection.SIZE.items() if not ctx.args.only or name in ctx.args.only}
    record = sweep.train_candidates(ctx, candidates)
    sweep.write(ctx, record, "seg_size_sweep")
    return record


if __name__ == "__main__":
    cli.run(main)
