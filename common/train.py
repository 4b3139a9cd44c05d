"""Training: the loop every exercise uses, and each configuration trained once per seed, cached.

A configuration is a plain dict (what ``build`` reads; the scripts write it out in full)::

    {"model": {"class": "MnistCNN", "channels": (8, 16, 32), ...},     # a class of common.models, its options
     "loss": {"class": "CrossEntropyLoss", "label_smoothing": 0.0},     # the softmax is in the loss
     "optimizer": {"class": "SGD", "lr": 0.05, ...},                    # a class of torch.optim, its options
     "schedule": None | {"class": "CosineAnnealingLR"} | {"class": "OneCycleLR"},
     "augment": None | {"class": "RandomAffine", ...},                  # a class of common.augment, its options
     "epochs": 15, "batch_size": 64, "score": "accuracy" | "dice", "backend": "torch" | "numpy"}

:func:`run` trains it for each seed (:func:`fit`: epochs of training steps, each followed by
:func:`evaluate` on the validation split and on a training subset of the same size), touches the test
split once at the end, and keeps per seed a record (the configuration, the curves, timings, test scores)
with the weights and test logits. The run cache: a run is stored under the hash of its configuration
dict, seed, data fingerprint, device type (and a CPU's instruction set), torch version and ``VERSION``;
``VERSION`` changes whenever what a run computes or records changes (training, its scores, its record), and
``tests/test_train.py`` holds small runs' numbers that fail until it does. Editing a comment, a figure or
the report never retrains anything.
"""
from __future__ import annotations

import copy
import io
import json
import math
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
import torch
from torch import Tensor, nn

from . import augment, metrics, models
from .cli import Progress, device_name
from .data import Splits, TensorLoader, atomic_write_bytes, atomic_write_json, cache_dir, stable_hash
from .numpy_mlp import NumpyLearner, NumpyMLP

ScoreFn = Callable[[Tensor, Tensor], Tensor]  # (logits, targets) -> per-sample score (N,)


def synchronize(device: torch.device) -> None:
    """Wait for queued kernels, so that wall-clock timings measure the work itself."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


class TorchLearner:
    """``model`` trained with ``optimizer`` on ``loss_fn``; ``scheduler`` steps once per batch if
    ``scheduler_per_batch``, else once per epoch."""

    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer, loss_fn: nn.Module,
                 device: torch.device, scheduler=None, scheduler_per_batch: bool = False) -> None:
        self.model, self.optimizer, self.loss_fn = model, optimizer, loss_fn
        self.device, self.scheduler, self.scheduler_per_batch = device, scheduler, scheduler_per_batch

    @property
    def lr(self) -> float:
        return self.optimizer.param_groups[0]["lr"]

    def start_epoch(self) -> None:
        self.model.train()

    def train_step(self, inputs: Tensor, targets: Tensor) -> Tensor:
        """One optimisation step; returns the batch's loss, left on the device."""
        loss = self.loss_fn(self.model(inputs), targets)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        if self.scheduler is not None and self.scheduler_per_batch:
            self.scheduler.step()
        return loss.detach()

    def end_epoch(self) -> None:
        if self.scheduler is not None and not self.scheduler_per_batch:
            self.scheduler.step()

    @torch.no_grad()
    def logits(self, inputs: Tensor) -> Tensor:
        self.model.eval()
        return self.model(inputs)

    def loss(self, logits: Tensor, targets: Tensor) -> Tensor:
        return self.loss_fn(logits, targets)

    def state_dict(self) -> dict:
        return copy.deepcopy(self.model.state_dict())


@dataclass
class Evaluation:
    loss: float  # mean over samples
    scores: Tensor  # per sample, on the CPU
    majority_share: float  # share of the predictions (images, or pixels) that fall on the most predicted class
    logits: Tensor | None = None  # on the CPU, when asked for

    @property
    def score(self) -> float:
        return self.scores.mean().item()


def evaluate(learner, batches: Iterable[tuple[Tensor, Tensor]], score_fn: ScoreFn, keep_logits: bool = False) -> Evaluation:
    """Loss, per-sample scores and class balance of the predictions of ``learner`` over ``batches``."""
    loss_sum, count, scores, kept, classes = 0.0, 0, [], [], None
    for inputs, targets in batches:
        logits = learner.logits(inputs)
        loss_sum += learner.loss(logits, targets).item() * len(targets)
        count += len(targets)
        scores.append(score_fn(logits, targets).cpu())
        counts = torch.bincount(logits.argmax(dim=1).flatten(), minlength=logits.shape[1]).cpu()
        classes = counts if classes is None else classes + counts
        if keep_logits:
            kept.append(logits.cpu())
    if count == 0:
        raise ValueError("evaluate() got no batches")
    return Evaluation(loss_sum / count, torch.cat(scores), (classes.max() / classes.sum()).item(),
                      torch.cat(kept) if keep_logits else None)


def fit(learner, train_loader, val_loader, epochs: int, score_fn: ScoreFn, *, train_eval_loader=None,
        on_epoch: Callable[[dict], None] | None = None) -> dict:
    """Train for ``epochs``; after each, evaluate on ``val_loader`` and ``train_eval_loader`` and hand
    the epoch's record to ``on_epoch`` (progress output). Returns the history: the loss of every
    iteration and one record per epoch."""
    history = {"iter_loss": [], "epochs": [], "initial_lr": learner.lr}
    for epoch in range(1, epochs + 1):
        start = time.perf_counter()
        losses = train_epoch(learner, train_loader)
        train_time = time.perf_counter() - start
        val = evaluate(learner, val_loader, score_fn)
        record = {"epoch": epoch, "train_loss": sum(losses) / len(losses), "val_loss": val.loss, "val_score": val.score,
                  "val_majority_share": val.majority_share, "lr": learner.lr}
        if train_eval_loader is not None:
            train_eval = evaluate(learner, train_eval_loader, score_fn)
            record.update(train_eval_loss=train_eval.loss, train_eval_score=train_eval.score)
        record.update(train_time_s=train_time, eval_time_s=time.perf_counter() - start - train_time)
        history["iter_loss"] += losses
        history["epochs"].append(record)
        if on_epoch is not None:
            on_epoch(record)
    return history


def train_epoch(learner, batches: Iterable[tuple[Tensor, Tensor]]) -> list[float]:
    """One pass of training steps over ``batches``; the loss of every step. The losses stay on the
    device until the pass ends, so that the loop never waits for an accelerator to report a number."""
    synchronize(learner.device)
    learner.start_epoch()
    losses = [learner.train_step(inputs, targets) for inputs, targets in batches]
    learner.end_epoch()
    losses = torch.stack(losses).cpu().tolist() if isinstance(losses[0], Tensor) else [float(v) for v in losses]
    synchronize(learner.device)
    return losses


# --- a configuration, trained once per seed, cached ----------------------------------------------

VERSION = 1  # part of every cache key: change it whenever what training computes changes
MODELS = {"MLP": models.MLP, "MnistCNN": models.MnistCNN, "SegNet": models.SegNet}
OPTIMIZERS = {"SGD": torch.optim.SGD, "Adam": torch.optim.Adam}
AUGMENTS = {"RandomAffine": augment.RandomAffine, "SegmentationAugment": augment.SegmentationAugment,
            "StainJitter": augment.StainJitter}
LOSSES = {"CrossEntropyLoss": nn.CrossEntropyLoss}
SCORES = {"accuracy": metrics.accuracy_per_sample, "dice": metrics.dice_per_sample}
EVAL_BATCH_SIZE = 1000


def options(spec: dict) -> dict:
    """A ``{"class": ..., **options}`` entry of a configuration without its class."""
    return {k: v for k, v in spec.items() if k != "class"}


def build_model(config: dict) -> nn.Module:
    spec = config["model"]
    return MODELS[spec["class"]](**options(spec))


def build_loss(config: dict) -> nn.Module:
    return LOSSES[config["loss"]["class"]](**options(config["loss"]))


def build_augment(spec: dict | list | None):
    """None, one ``{"class": ..., **options}`` of ``AUGMENTS``, or a list of them applied in turn."""
    if spec is None:
        return None
    if isinstance(spec, list):
        return augment.Compose(tuple(build_augment(s) for s in spec))
    return AUGMENTS[spec["class"]](**options(spec))


def build(config: dict, steps_per_epoch: int, device: torch.device) -> tuple:
    """(model, optimizer, schedule, loss, augment) of ``config``, the model on ``device``; the schedule
    steps per epoch ("CosineAnnealingLR": to 0 over the epochs) or per batch ("OneCycleLR": warm-up to the
    optimizer's learning rate, then annealing, over all steps)."""
    model = build_model(config).to(device).to(memory_format=torch.channels_last)  # faster convolutions, same function
    optimizer = OPTIMIZERS[config["optimizer"]["class"]](model.parameters(), **options(config["optimizer"]))
    schedule = (config.get("schedule") or {}).get("class")
    if schedule == "CosineAnnealingLR":
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=config["epochs"])
    elif schedule == "OneCycleLR":
        scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=config["optimizer"]["lr"],
                                                        total_steps=config["epochs"] * steps_per_epoch)
    elif schedule is None:
        scheduler = None
    else:
        raise ValueError(f"unknown schedule {schedule!r}; use None, 'CosineAnnealingLR' or 'OneCycleLR'")
    loss = build_loss(config).to(device)
    return model, optimizer, scheduler, loss, build_augment(config.get("augment"))


@dataclass
class Runs:
    """A configuration trained once per seed: a record per run, and the cache folders holding each
    run's ``weights.pt`` and ``test_logits.pt``."""

    name: str
    label: str
    config: dict
    records: list[dict]
    folders: list[Path]

    @property
    def score(self) -> str:
        return self.config["score"]

    @property
    def num_weights(self) -> int:
        return self.records[0]["hyperparameters"]["num_weights"]

    def model(self, seed_index: int | None = None) -> nn.Module:
        """The network, untrained, or with the weights of the run ``seed_index``."""
        model = build_model(self.config)
        if seed_index is not None:
            model.load_state_dict(self.weights(seed_index))
        return model

    def test_logits(self) -> list[Tensor]:
        """One (N, classes, ...) tensor per seed, on the CPU."""
        return [torch.load(folder / "test_logits.pt", weights_only=True) for folder in self.folders]

    def weights(self, seed_index: int = 0) -> dict:
        return torch.load(self.folders[seed_index] / "weights.pt", weights_only=True)


def run(name: str, config: dict, splits: Splits, ctx, label: str | None = None, *, seeds: list[int] | None = None,
        device: torch.device | None = None) -> Runs:
    """Train ``config`` once per seed of ``ctx`` (or ``seeds``) on ``device`` (default ``ctx.device``), or
    load the runs from the cache. ``name`` and ``label`` only name it: a configuration that several
    exercises train under other names is one set of runs."""
    device = device or ctx.device
    done = [run_one(name, config, splits, seed, device, use_cache=ctx.use_cache, show_progress=ctx.show_progress)
            for seed in (seeds if seeds is not None else ctx.seeds)]
    return Runs(name, label or name, config, [r for r, _ in done], [f for _, f in done])


def cache_key(config: dict, seed: int, splits: Splits, device: torch.device) -> str:
    """On the CPU the key holds the instruction set PyTorch's kernels use (AVX2, AVX512, ...): they round
    differently, so a cache shared between CPU types never hands one the other's numbers."""
    cpu = torch.backends.cpu.get_cpu_capability() if device.type == "cpu" else None
    return stable_hash({"config": config, "seed": seed, "data": splits.info["fingerprint"], "version": VERSION,
                        "device": device.type, "cpu": cpu, "torch": torch.__version__})


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and CUDA) and ask for deterministic kernels."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # also seeds every CUDA device
    torch.backends.cudnn.benchmark = False
    torch.backends.cudnn.deterministic = True


def run_one(name: str, config: dict, splits: Splits, seed: int, device: torch.device, *, use_cache: bool = True,
            show_progress: bool = True) -> tuple[dict, Path]:
    """Train ``config`` with ``seed`` (or load the cached run); returns its record and cache folder."""
    backend = config.get("backend", "torch")
    if backend not in ("torch", "numpy"):
        raise ValueError(f"unknown backend {backend!r}; use 'torch' or 'numpy'")
    if backend == "numpy":
        device = torch.device("cpu")  # NumPy computes on the CPU, whatever the script's device
    folder = cache_dir() / "runs" / cache_key(config, seed, splits, device)
    if use_cache and (folder / "record.json").is_file():
        return {**json.loads((folder / "record.json").read_text()), "name": name}, folder

    seed_everything(seed)
    (x_train, y_train), val, test = _on_device(config, splits, device)
    model, optimizer, scheduler, loss, transform = build(config, math.ceil(len(y_train) / config["batch_size"]), device)
    per_batch = scheduler is not None and config["schedule"]["class"] == "OneCycleLR"
    if backend == "numpy":
        if set(config["optimizer"]) != {"class", "lr"} or config["optimizer"]["class"] != "SGD" or scheduler:
            raise ValueError(f"the NumPy backend implements plain SGD only, got {config['optimizer']} with schedule "
                             f"{config.get('schedule')}")
        learner = NumpyLearner(NumpyMLP.from_torch(model), lr=config["optimizer"]["lr"])
    else:
        learner = TorchLearner(model, optimizer, loss, device, scheduler, per_batch)
    hyper = describe(config, model, optimizer, scheduler, loss, per_batch)
    score_fn = SCORES[config["score"]]
    n_eval = len(val[1])
    start = time.perf_counter()
    history = fit(learner, TensorLoader(x_train, y_train, config["batch_size"], shuffle=True, seed=seed,
                                        transform=transform),
                  TensorLoader(*val, EVAL_BATCH_SIZE), config["epochs"], score_fn,
                  train_eval_loader=TensorLoader(x_train[:n_eval], y_train[:n_eval], EVAL_BATCH_SIZE),
                  on_epoch=Progress(f"{name} seed {seed}", config["epochs"], config["score"], show_progress))
    wall = time.perf_counter() - start
    test_result = evaluate(learner, TensorLoader(*test, EVAL_BATCH_SIZE), score_fn, keep_logits=True)
    history["iter_loss"] = [float(f"{v:.5g}") for v in history["iter_loss"]]
    record = {
        "name": name, "seed": seed, "config": config, "hyperparameters": hyper, "device": str(device),
        "device_name": device_name(device), "history": history,
        "train_time_per_epoch_s": metrics.summarize([e["train_time_s"] for e in history["epochs"]]),
        "wall_time_s": wall,
        "validation_held_out": splits.info.get("validation_held_out", True),
        "test": {"loss": test_result.loss, config["score"]: test_result.score, "n": len(test_result.scores),
                 "majority_share": test_result.majority_share},
        "cache_key": folder.name,
    }
    for file, obj in (("weights.pt", learner.state_dict()), ("test_logits.pt", test_result.logits)):
        buffer = io.BytesIO()
        torch.save(obj, buffer)
        atomic_write_bytes(folder / file, buffer.getvalue())
    atomic_write_json(folder / "record.json", record)  # written last: marks the entry complete
    return record, folder


def _on_device(config: dict, splits: Splits, device: torch.device) -> tuple:
    """The three splits on ``device``, images in channels-last order (the layout of the model's weights)."""
    data = (splits.train, splits.val, splits.test)
    if config.get("backend", "torch") == "numpy":
        return tuple((x.cpu(), y.cpu()) for x, y in data)
    data = tuple((x.to(device), y.to(device)) for x, y in data)
    return tuple((x.contiguous(memory_format=torch.channels_last) if x.dim() == 4 else x, y) for x, y in data)


def describe(config: dict, model: nn.Module, optimizer: torch.optim.Optimizer, scheduler, loss: nn.Module,
             per_batch: bool) -> dict:
    """Every hyperparameter of a run as PyTorch holds it (its defaults included), for the report's tables."""
    return {
        "model": type(model).__name__,
        "model_options": options(config["model"]),
        "layers": models.layer_list(model),
        "num_weights": models.count_weights(model),
        "init": getattr(model, "init_scheme", models.INIT_SCHEMES["default"]),
        "optimizer": {"class": type(optimizer).__name__, "defaults": dict(optimizer.defaults),
                      "param_groups": [{k: v for k, v in g.items() if k != "params"} for g in optimizer.param_groups]},
        "scheduler": None if scheduler is None else {
            "class": type(scheduler).__name__, "per_batch": per_batch,
            "state": {k: v for k, v in scheduler.state_dict().items()
                      if not k.startswith("_") and isinstance(v, (int, float, str, bool, list, type(None)))}},
        "loss": {"class": type(loss).__name__,
                 **{k: v for k, v in vars(loss).items()
                    if not k.startswith("_") and k != "training" and isinstance(v, (int, float, str, bool, type(None)))}},
        "num_epochs": config["epochs"],
        "batch_size": config["batch_size"],
        "shuffle": "new permutation every epoch, seeded with the run's seed",
        "augmentation": config.get("augment"),
        "backend": config.get("backend", "torch"),
    }
