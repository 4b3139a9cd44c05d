"""The validation sweep behind ex2_5_best.py's choice of the best segmentation model.

Trains each candidate (the ex2_5_best configuration with one or two things changed) for the given
seeds and prints its final-epoch validation Dice (the 15 held-out training images), its best
epoch's validation Dice and its training time. Test Dice is deliberately neither printed nor
written: the choice is made on validation only. The candidates are cheap on a GPU; the chosen one
is then trained on the CPU by ex2_5_best.py.

Run:   python tuning/seg_best_sweep.py --device cuda --num-seeds 2 --out-dir scratch/sweep
Writes <out-dir>/seg_best_sweep.json.
"""
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import ex2_1_segnet  # noqa: E402
import ex2_5_best  # noqa: E402
from common import cli, experiment  # noqa: E402
from common.seg_augment import SegmentationAugment  # noqa: E402

WIDE = (16, 32, 64, 128)
DEFORM = SegmentationAugment(dihedral=True, rotate_deg=10, scale=0.1, shear_deg=5, translate=0.03, elastic_px=3)
# name -> (epochs, lr, best_spec keyword arguments)
CANDIDATES = {
    "c8 res2 e40 (current)": (40, 1e-2, {}),
    "c8 res2 e100": (100, 1e-2, {}),
    "c16 res2 e40": (40, 1e-2, {"channels": WIDE}),
    "c16 res2 e100": (100, 1e-2, {"channels": WIDE}),
    "c16 plain e150": (150, 1e-2, {"channels": WIDE, "block_depth": 1, "residual": False}),
    "c16 res2 e150": (150, 1e-2, {"channels": WIDE}),
    "c16 res2 e100 deform": (100, 1e-2, {"channels": WIDE, "augment": DEFORM}),
    "c16 res2 e100 lr3e-3": (100, 3e-3, {"channels": WIDE}),
    "c16 plain e100": (100, 1e-2, {"channels": WIDE, "block_depth": 1, "residual": False}),
}


def main(argv=None):
    parser = cli.make_parser(__doc__, epochs=ex2_5_best.EPOCHS, batch_size=ex2_5_best.BATCH_SIZE,
                             lr=ex2_5_best.LR, num_seeds=2)
    parser.add_argument("--only", nargs="*", default=None, help="candidate names to run (default: all)")
    ctx = cli.setup(parser, argv, __file__)
    splits = ex2_1_segnet.load_splits(ctx)
    rows = {}
    for name, (epochs, lr, options) in CANDIDATES.items():
        if ctx.args.only and name not in ctx.args.only:
            continue
        args = type(ctx.args)(**{**vars(ctx.args), "epochs": 1 if ctx.quick else epochs, "lr": lr})
        config = experiment.run_seeds(ex2_5_best.best_spec(args, name, **options), splits, ctx.seeds, ctx.device,
                                      **ctx.run_kwargs())
        final = [r["history"]["epochs"][-1]["val_score"] for r in config["runs"]]
        best = [max(e["val_score"] for e in r["history"]["epochs"]) for r in config["runs"]]
        rows[name] = {"weights": config["num_weights"], "final_val_dice": final, "best_val_dice": best,
                      "train_time_per_epoch_s": config["summary"]["train_time_per_epoch_s"]["mean"],
                      "epochs": epochs, "lr": lr}
        print(f"{name:28s} {config['num_weights']:>9,d} weights  final val Dice "
              f"{' '.join(f'{v:.4f}' for v in final)} (mean {sum(final) / len(final):.4f})  best "
              f"{' '.join(f'{v:.4f}' for v in best)}  {rows[name]['train_time_per_epoch_s']:.2f} s/epoch", flush=True)
    ctx.out_dir.mkdir(parents=True, exist_ok=True)
    (ctx.out_dir / "seg_best_sweep.json").write_text(json.dumps({"device": str(ctx.device), "seeds": ctx.seeds,
                                                                  "candidates": rows}, indent=1))


if __name__ == "__main__":
    main()
