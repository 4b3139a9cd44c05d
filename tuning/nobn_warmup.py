"""Ex 2.4 without batch norm: would a warm-up of the learning rate keep the deep networks from getting stuck at
one class? Each kind (plain, residual) as ex2_4_residual.py trains it, at its own rate and initialisation, with
its 8 seeds, once with the cosine schedule and once with one-cycle (a warm-up from a 25th of the rate over the
first 30 % of the steps, then a cosine down); scored on validation only. Per kind, the schedule with the higher
mean final validation Dice is kept; the runs stuck at one class (the fit verdict "one class", as Ex 2.4 counts
them) are counted.

Run:  python -m tuning.nobn_warmup --device cpu     (32 runs; the cosine ones are Ex 2.4's, from the run cache)
Writes tuning/nobn_warmup.json (with --quick or --out-dir DIR: DIR/nobn_warmup.json).
"""
import statistics

from common import cli, results, train, warwick

from . import sweep

# ex2_4_residual.py's networks without batch norm and their training (restated: tests/test_tuning.py checks that
# the two agree, so that the cosine runs are Ex 2.4's own, from the run cache)
NETWORK = {"class": "SegNet", "channels": (8, 16, 32, 64), "up_kernel": 4, "batch_norm": False, "skip": None,
           "block_depth": 3}
KINDS = {"plain": {"residual": False, "init": "he", "lr": 0.001},
         "residual": {"residual": True, "init": "he_zero", "lr": 0.003}}
EPOCHS, BATCH_SIZE, SEEDS = 80, 10, 8
SCHEDULES = ("CosineAnnealingLR", "OneCycleLR")


def config(kind: str, schedule: str, epochs: int, batch_size: int) -> dict:
    """Ex 2.4's network of ``kind`` without batch norm, trained with ``schedule``."""
    k = KINDS[kind]
    return {"model": {**NETWORK, "init": k["init"], "residual": k["residual"]}, "loss": {"class": "CrossEntropyLoss"},
            "optimizer": {"class": "Adam", "lr": k["lr"]}, "schedule": {"class": schedule},
            "augment": {"class": "SegmentationAugment", "dihedral": True}, "epochs": epochs, "batch_size": batch_size,
            "score": "dice"}


def main(argv=None) -> dict:
    parser = cli.make_parser(__doc__, epochs=EPOCHS, batch_size=BATCH_SIZE, lr=KINDS["plain"]["lr"], num_seeds=SEEDS)
    ctx = cli.setup(parser, argv, __file__)
    splits = warwick.load_splits(ctx.data_dir, ctx.device, seed=ctx.seed, quick=ctx.quick)
    kinds, chosen = {}, {}
    for kind in KINDS:
        for schedule in SCHEDULES:
            c = config(kind, schedule, ctx.args.epochs, ctx.args.batch_size)
            runs = train.run(f"{kind}_{schedule}", c, splits, ctx)
            last = [r["history"]["epochs"][-1] for r in runs.records]
            finals = [e["val_score"] for e in last]
            kinds.setdefault(kind, {})[schedule] = {
                "final_val_dice": finals, "mean": statistics.mean(finals),
                "stuck": results.summary(runs)["verdicts"].count("one class"),
                "lr": c["optimizer"]["lr"], "init": c["model"]["init"]}
            print(f"{kind:8s} {schedule:18s} final val Dice {statistics.mean(finals):.3f}, "
                  f"stuck {kinds[kind][schedule]['stuck']} of {len(finals)}", flush=True)
        chosen[kind] = max(SCHEDULES, key=lambda s: kinds[kind][s]["mean"])
    record = {"device": str(ctx.device), "seeds": ctx.seeds, "epochs": ctx.args.epochs, "kinds": kinds, "chosen": chosen}
    sweep.write(ctx, record, "nobn_warmup")
    return record


if __name__ == "__main__":
    cli.run(main)
