"""Round 1, the architecture sweep: width, residual blocks, epochs, deformations and the learning rate
of ex2_5_best.py's configuration, on the random 15-image hold-out; selection.ARCHITECTURE_RULE.

Run:  python -m tuning.seg_best_sweep --device cuda     (CPU: hours)
Writes tuning/seg_best_sweep.json (with --quick or --out-dir DIR: DIR/seg_best_sweep.json).
"""
from common import cli, train, warwick

from . import selection, sweep


def main(argv=None) -> dict:
    parser = sweep.parser(__doc__)
    parser.add_argument("--only", nargs="*", default=None, help="candidate names to run (default: all)")
    ctx = cli.setup(parser, argv, __file__)
    splits = warwick.load_splits(ctx.data_dir, ctx.device, seed=ctx.seed, quick=ctx.quick)
    rows = {}
    for name, (epochs, lr, options) in selection.ARCHITECTURE.items():
        if ctx.args.only and name not in ctx.args.only:
            continue
        runs = train.run(name, sweep.config(ctx, epochs, lr, **options), splits, ctx)
        rows[name] = {"weights": runs.num_weights, "epochs": epochs, "lr": lr,
                      "final_val_dice": [r["history"]["epochs"][-1]["val_score"] for r in runs.records],
                      "best_val_dice": [max(e["val_score"] for e in r["history"]["epochs"]) for r in runs.records]}
        print(f"{name:28s} final val Dice {' '.join(f'{v:.4f}' for v in rows[name]['final_val_dice'])}", flush=True)
    record = {"device": str(ctx.device), "seeds": ctx.seeds, "candidates": rows}
    sweep.write(ctx, record, "seg_best_sweep")
    return record


if __name__ == "__main__":
    cli.run(main)
