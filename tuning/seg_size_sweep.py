"""Third validation sweep behind ex2_5_best.py: capacity and training length, on both hold-outs.

The first sweep (seg_best_sweep.py) compared widths and training lengths on the random hold-out
only, where the candidates trained for 100 epochs or more lay close together; its rule then took
the cheapest, the 8-16-32-64 residual U-Net for 100 epochs, although one twice as wide (4x the weights) trained for 150
epochs scored highest. The
second sweep (seg_stain_sweep.py) showed that the reddest hold-out (the 15 most red-stained
training images) drops about as far below the random one as the test set does, and that no stain
measure closes the gap. This sweep asks the first sweep's question again on both hold-outs: does a
wider network or a longer training pay off where the random hold-out could not tell them apart?

The candidates, ex2_5_best.SIZE_CANDIDATES, are the chosen network at 100 and 200 epochs and the 4x
wider one (16-32-64-128) at 100, 150 and 200 epochs, everything else unchanged; each is also
scored with test-time augmentation. ex2_5_best.py applies SIZE_RULE to the record this writes.
Each candidate has its own number of epochs: an --epochs other than the default is refused.

Run:   python tuning/seg_size_sweep.py --device cuda     (CPU: several hours; a GPU: minutes)
Writes tuning/seg_size_sweep.json (with --quick or --out-dir DIR: DIR/seg_size_sweep.json).
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import ex2_5_best  # noqa: E402
import holdout_sweep  # noqa: E402
from common import cli  # noqa: E402

RECORD_NAME = "seg_size_sweep.json"


def main(argv: list[str] | None = None) -> None:
    parser = holdout_sweep.make_parser(__doc__)
    parser.add_argument("--only", nargs="*", default=None, help="candidate names to run (default: all)")
    ctx = cli.setup(parser, argv, __file__)
    holdout_sweep.refuse_epochs(parser, ctx, "each candidate has its own number of epochs (ex2_5_best.SIZE_CANDIDATES)")
    candidates = {name: (epochs, {"channels": channels})
                  for name, (channels, epochs) in ex2_5_best.SIZE_CANDIDATES.items()
                  if not ctx.args.only or name in ctx.args.only}
    holdout_sweep.write_record(ctx, holdout_sweep.sweep(ctx, candidates), RECORD_NAME)


if __name__ == "__main__":
    cli.run(main)
