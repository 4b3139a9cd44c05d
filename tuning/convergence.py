"""Budgets from convergence on validation: for each family of networks, which learning rate and how many
epochs (issue "converged and conclusive").

Every candidate trains for clearly longer than any budget it could get, on the train split, scored on the
validation split after every epoch; the test split is never evaluated here. Each run is written to
tuning/convergence/runs/<family>/<candidate>_seed<k>.json as it finishes (a rerun skips finished runs), and
`python -m tuning.convergence_report` applies the rule of tuning/README.md to them and draws the figures.

* Constant learning rate (the MNIST networks of Ex 1.1-1.4 and Ex 1.5's one-change variants): one long
  run per learning rate shows where its validation curve levels off.
* Annealed schedules (Ex 1.5's one-cycle combination; the segmentation networks' cosine): a schedule
  changes with its length, so each length is its own run.

The variants of Ex 1.3 and Ex 1.5 change one thing against Ex 1.2's network, so they train at the learning
rate and batch this sweep picks for it (stage 2 runs after stage 1 has chosen them); stage 3 compares the
encoder-decoder's learning rates at the length stage 1 chose for it; stage 4 gives the encoder-decoder without
batch norm (Ex 2.2) a learning rate of its own, at the length stage 3 chose; stage 5 chooses Ex 2.2's weight
decay at the rate and length stage 3 chose.

Run:  python -m tuning.convergence              (both cores; about 2.5 hours on this 2-core CPU)
      python -m tuning.convergence --quick      (a smoke test into scratch/convergence)
"""
from __future__ import annotations

import argparse
import math
import multiprocessing
import os
import sys
import time
from pathlib import Path

import torch
from threadpoolctl import threadpool_limits
from torch import nn

from common import augment, metrics, mnist, models, warwick
from common.data import REPO_ROOT, TensorLoader, atomic_write_json
from common.train import seed_everything
from common.train import TorchLearner, fit

OUT_DIR = REPO_ROOT / "tuning" / "convergence" / "runs"
QUICK_OUT_DIR = REPO_ROOT / "scratch" / "convergence" / "runs"
EVAL_BATCH = 1000
MNIST_AFFINE = augment.RandomAffine(max_rotation_deg=10.0, max_shift=2.0, max_scale=0.1)  # Ex 1.5's
SEG_AUGMENT = augment.SegmentationAugment(dihedral=True)  # Ex 2.1's
SEG_NETWORK = {"channels": (8, 16, 32, 64), "up_kernel": 4, "init": "kaiming", "batch_norm": True}  # Ex 2.1's

# family -> {candidate: options}. Options: model (class name), model options, optimizer ("sgd", "adam",
# "sgd_nesterov"), lr, batch, epochs, schedule (None, "cosine", "onecycle"), loss options, augment, seeds.
LONG = 30  # constant-rate MNIST runs: 2-6x the budgets tried so far (5-15 epochs)
# the encoder-decoder's training (Ex 2.1): Adam, cosine schedule, batch 10, flips and rotations; 2 seeds
SEG = {"model": "SegNet", "optimizer": "adam", "batch": 10, "schedule": "cosine", "seeds": 2, "augment": "dihedral",
       "data": "warwick"}


def stage1() -> dict:
    cnn = {"model": "MnistCNN", "optimizer": "sgd", "batch": 64, "epochs": LONG, "seeds": 2}
    seg = {**SEG, "lr": 3e-3}
    nobn = {**seg, "net": {"batch_norm": False, "init": "he", "block_depth": 3}}
    return {
        "fc": {f"lr{lr:g}": {"model": "MLP", "optimizer": "sgd", "lr": lr, "batch": 64, "epochs": 40, "seeds": 2}
               for lr in (0.05, 0.1, 0.2)},
        "cnn_sgd": {**{f"lr{lr:g}": {**cnn, "lr": lr} for lr in (0.05, 0.1, 0.2)},
                    "lr0.2_batch128": {**cnn, "lr": 0.2, "batch": 128}},
        "cnn_adam": {f"lr{lr:g}": {**cnn, "optimizer": "adam", "lr": lr, "seeds": 1} for lr in (3e-4, 1e-3, 3e-3)},
        "cnn_combination": {f"e{e}": {"model": "MnistCNN", "net": {"channels": (16, 32, 64), "batch_norm": True},
                                      "optimizer": "sgd_nesterov", "lr": 0.1, "batch": 128, "epochs": e,
                                      "schedule": "onecycle", "label_smoothing": 0.1, "augment": "affine", "seeds": 1}
                            for e in (8, 16, 32)},
        "segnet": {f"e{e}": {**seg, "epochs": e} for e in (20, 40, 80, 160)},
        "segnet_skip": {f"e{e}": {**seg, "epochs": e, "net": {"skip": "concat"}} for e in (40, 80)},
        "segnet_depth3": {f"{kind}_e{e}": {**seg, "epochs": e, "net": {"block_depth": 3, "residual": kind == "residual"}}
                          for kind in ("plain", "residual") for e in (40, 80)},
        # "residual_zero": each residual block's last convolution starts at zero (models.INIT_SCHEMES "he_zero")
        "segnet_depth3_nobn": {f"{kind}_lr{lr:g}": {**nobn, "lr": lr, "epochs": 80,
                                                    "net": {**nobn["net"], "residual": kind != "plain",
                                                            "init": "he_zero" if kind == "residual_zero" else "he"}}
                               for kind in ("plain", "residual", "residual_zero") for lr in (1e-4, 3e-4, 1e-3, 3e-3, 1e-2)},
    }


VARIANTS_LONG = 20  # the variants' runs: over twice the 9 epochs stage 1 gives the Ex 1.2 network


def stage2(cnn_lr: float, batch: int) -> dict:
    """Ex 1.3's and Ex 1.5's one-change variants of the Ex 1.2 network, at its chosen learning rate and batch. Pool
    first is no variant here: with tanh as with ReLU it computes the same function as activation first, and
    trains along the same curve (Ex 1.3)."""
    cnn = {"model": "MnistCNN", "optimizer": "sgd", "lr": cnn_lr, "batch": batch, "epochs": VARIANTS_LONG, "seeds": 2}
    return {"cnn_variants": {"tanh": {**cnn, "net": {"activation": "tanh"}},
                             "batch_norm": {**cnn, "net": {"batch_norm": True}},
                             "augmentation": {**cnn, "augment": "affine"}}}


def stage3(epochs: int) -> dict:
    """The encoder-decoder's learning rate (Ex 2.1-2.4): 1e-3 and 1e-2 at the length stage 1 chose for it at 3e-3
    and at half that (stage 1's runs at 3e-3 are the third rate)."""
    return {"segnet_lr": {f"lr{lr:g}_e{e}": {**SEG, "lr": lr, "epochs": e} for lr in (1e-3, 1e-2)
                          for e in (epochs // 2, epochs)}}


def stage4(epochs: int) -> dict:
    """The encoder-decoder without batch norm (Ex 2.2): at the batch-norm network's rate of 1e-2 it predicts one
    class, so four rates at the length chosen for the network with batch norm. He initialisation by true fan-in,
    as Ex 2.4's networks without batch norm."""
    nobn = {**SEG, "net": {"batch_norm": False, "init": "he"}}
    return {"segnet_nobn": {f"lr{lr:g}": {**nobn, "lr": lr, "epochs": epochs} for lr in (3e-4, 1e-3, 3e-3, 1e-2)}}


def stage5(lr: float, epochs: int) -> dict:
    """Ex 2.2's weight decay (Adam's L2 penalty): three strengths for the Ex 2.1 network at the rate and length
    stage 3 chose for it; with none, it is stage 3's chosen run."""
    return {"segnet_wd": {f"wd{wd:g}": {**SEG, "lr": lr, "epochs": epochs, "weight_decay": wd}
                          for wd in (1e-4, 1e-3, 1e-2)}}


def build(c: dict, steps_per_epoch: int):
    """(model, optimizer, scheduler, per_batch, loss, augment) of candidate ``c``."""
    net = {**(SEG_NETWORK if c["model"] == "SegNet" else {}), **c.get("net", {})}
    model = {"MLP": models.MLP, "MnistCNN": models.MnistCNN, "SegNet": models.SegNet}[c["model"]](**net)
    model.to(memory_format=torch.channels_last)
    params, lr = model.parameters(), c["lr"]
    optimizer = {"sgd": lambda: torch.optim.SGD(params, lr=lr),
                 "adam": lambda: torch.optim.Adam(params, lr=lr, weight_decay=c.get("weight_decay", 0.0)),
                 "sgd_nesterov": lambda: torch.optim.SGD(params, lr=lr, momentum=0.9, nesterov=True, weight_decay=5e-4),
                 }[c["optimizer"]]()
    schedule, per_batch = c.get("schedule"), False
    if schedule == "cosine":
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=c["epochs"])
    elif schedule == "onecycle":
        scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, lr, epochs=c["epochs"], steps_per_epoch=steps_per_epoch)
        per_batch = True
    else:
        scheduler = None
    loss = nn.CrossEntropyLoss(label_smoothing=c.get("label_smoothing", 0.0))
    transform = {"affine": MNIST_AFFINE, "dihedral": SEG_AUGMENT, None: None}[c.get("augment")]
    return model, optimizer, scheduler, per_batch, loss, transform


def train_one(job: tuple) -> str:
    family, name, c, seed, splits, path, epochs = job
    seed_everything(seed)
    (x, y), val = splits.train, splits.val
    model, optimizer, scheduler, per_batch, loss, transform = build({**c, "epochs": epochs},
                                                                    math.ceil(len(y) / c["batch"]))
    learner = TorchLearner(model, optimizer, loss, torch.device("cpu"), scheduler, per_batch)
    score = metrics.dice_per_sample if c.get("data") == "warwick" else metrics.accuracy_per_sample
    to_cl = (lambda t: t.contiguous(memory_format=torch.channels_last))
    start = time.perf_counter()
    history = fit(learner, TensorLoader(to_cl(x), y, c["batch"], shuffle=True, seed=seed, transform=transform),
                  TensorLoader(to_cl(val[0]), val[1], EVAL_BATCH), epochs, score,
                  train_eval_loader=TensorLoader(to_cl(x[:len(val[1])]), y[:len(val[1])], EVAL_BATCH))
    record = {"family": family, "candidate": name, "seed": seed, "options": {**c, "epochs": epochs},
              "wall_time_s": time.perf_counter() - start,
              "epochs": [{k: e[k] for k in ("epoch", "train_loss", "val_loss", "val_score", "train_eval_loss",
                                            "train_eval_score", "val_majority_share", "lr")} for e in history["epochs"]]}
    atomic_write_json(path, record)
    print(f"{family}/{name} seed {seed}: final val {record['epochs'][-1]['val_score']:.4f} "
          f"({record['wall_time_s']:.0f} s)", flush=True)
    return str(path)


_SPLITS: dict = {}  # read by the forked workers


def _work(job):
    family, name, c, seed, path, epochs = job
    return train_one((family, name, c, seed, _SPLITS[c.get("data", "mnist")], path, epochs))


def run(families: dict, out: Path, quick: bool, workers: int) -> None:
    jobs = []
    for family, candidates in families.items():
        for name, c in candidates.items():
            for seed in range(min(c["seeds"], 1) if quick else c["seeds"]):
                path = out / family / f"{name}_seed{seed}.json"
                if not path.is_file():
                    epochs = min(c["epochs"], 2) if quick else c["epochs"]
                    jobs.append((family, name, c, seed, path, epochs))
    cost = {"MLP": 0.1, "MnistCNN": 1.0, "SegNet": 0.15}
    jobs.sort(key=lambda j: -j[5] * cost[j[2]["model"]] * (3 if j[2].get("net", {}).get("block_depth") == 3 else 1)
              * (3 if j[2].get("net", {}).get("channels") == (16, 32, 64) else 1))
    print(f"{len(jobs)} runs to train, {workers} at a time", flush=True)
    if workers == 1:
        for job in jobs:
            _work(job)
        return
    with multiprocessing.get_context("fork").Pool(workers) as pool:
        for _ in pool.imap_unordered(_work, jobs, chunksize=1):
            pass


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small data, 2 epochs, one seed, into scratch/")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--data-dir", type=Path, default=Path(os.environ.get("DLIA_DATA_DIR", REPO_ROOT / "data")))
    parser.add_argument("--stage", type=int, choices=(1, 2, 3, 4, 5), default=None, help="only this stage")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    threadpool_limits(1, user_api="blas")
    out = QUICK_OUT_DIR if args.quick else OUT_DIR
    cpu = torch.device("cpu")
    _SPLITS["mnist"] = mnist.load_splits(args.data_dir, cpu, seed=0, quick=args.quick)
    _SPLITS["warwick"] = warwick.load_splits(args.data_dir, cpu, seed=0, quick=args.quick)
    if args.stage in (None, 1):
        run(stage1(), out, args.quick, args.workers)
    if args.stage in (None, 2):
        from tuning.convergence_report import choose_constant  # the rule, applied to stage 1's runs

        chosen = choose_constant(out / "cnn_sgd")
        print(f"stage 2: the Ex 1.2 network's variants at its chosen learning rate {chosen['lr']:g}, batch "
              f"{chosen['batch']}", flush=True)
        run(stage2(chosen["lr"], chosen["batch"]), out, args.quick, args.workers)
    if args.stage in (None, 3):
        from tuning.convergence_report import choose_annealed

        epochs = choose_annealed(out / "segnet")["epochs"]
        print(f"stage 3: the encoder-decoder's learning rate at {epochs} epochs", flush=True)
        run(stage3(epochs), out, args.quick, args.workers)
    if args.stage in (None, 4, 5):  # both at the rate and length stage 3 chose for the network with batch norm
        from tuning.convergence_report import choose_lr

        chosen = choose_lr(out / "segnet_lr")
        if chosen["candidate"] is None:  # no schedule converged within the tolerance
            if not args.quick:
                parser.error(f"stage 3 chose no learning rate and length in {out / 'segnet_lr'}: none of its "
                             "schedules converged; stages 4 and 5 need one")
            # --quick: 2-epoch runs converge nowhere; the smoke test goes on with the best final score
            chosen = max(chosen["rows"].values(), key=lambda row: row["final"])
    if args.stage in (None, 4):
        print(f"stage 4: the encoder-decoder without batch norm, learning rate at {chosen['epochs']} epochs", flush=True)
        run(stage4(chosen["epochs"]), out, args.quick, args.workers)
    if args.stage in (None, 5):
        print(f"stage 5: the encoder-decoder's weight decay at learning rate {chosen['lr']:g}, {chosen['epochs']} "
              "epochs", flush=True)
        run(stage5(chosen["lr"], chosen["epochs"]), out, args.quick, args.workers)


if __name__ == "__main__":
    main(sys.argv[1:])
