"""Train a configuration once per seed, with a cache, and record it completely.

A :class:`Config` says what to train: model, loss, optimizer, schedule, epochs, batch size,
augmentation. :func:`run` trains it for every seed on the train split (``common.train.fit``),
evaluates on the validation split every epoch, touches the test split once at the end, and returns
the :class:`Runs`: per seed, a JSON-ready record with every hyperparameter (PyTorch's defaults
included), the curves, timings and test scores, plus the weights and test logits on disk.

Each finished run is cached under ``<cache>/runs/<key>/``; the key hashes the hyperparameters,
initial weights, seed, data, training code and device type, but not the configuration's name, so
that exercises training the same configuration (the Ex 1.2 network in Ex 1.3-1.5) share one run.
Rerunning an unchanged configuration loads it instead of training; an interrupted run leaves no
entry and is redone.
"""
from __future__ import annotations

import functools
import hashlib
import inspect
import io
import json
import math
import multiprocessing
import random
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np
import torch
from torch import nn

from . import metrics
from .cli import Progress, announce, device_name
from .data import (BatchTransform, Splits, TensorLoader, atomic_write_bytes, atomic_write_json, stable_hash,
                   tensor_fingerprint)
from .models import INIT_SCHEMES, count_weights, layer_list, multiply_adds
from .train import TorchLearner, evaluate, fit

COMMON_DIR = Path(__file__).resolve().parent
# What determines a run's record: these modules, and the score functions below (the rest of
# common.metrics, the plots and the report may change without retraining).
TRAINING_CODE = ("data.py", "mnist.py", "warwick.py", "augment.py", "models.py", "numpy_mlp.py", "train.py",
                 "experiment.py")
SCORES = {"accuracy": metrics.accuracy_per_sample, "dice": metrics.dice_per_sample}
EVAL_BATCH_SIZE = 1000


@dataclass
class Config:
    """One trainable configuration. ``model`` and ``optimizer`` are called after seeding, once per seed;
    ``scheduler(optimizer, steps_per_epoch)`` steps once per batch if ``scheduler_per_batch``, else per epoch."""

    name: str
    model: Callable[[], nn.Module]
    loss: nn.Module
    optimizer: Callable[[Iterable[nn.Parameter]], torch.optim.Optimizer]
    epochs: int
    batch_size: int
    scheduler: Callable[[torch.optim.Optimizer, int], Any] | None = None
    scheduler_per_batch: bool = False
    augment: BatchTransform | None = None  # applied to training batches only
    score: str = "accuracy"  # a key of SCORES
    backend: str = "torch"  # or "numpy": the from-scratch network of common.numpy_mlp
    label: str | None = None  # for figures and tables; the name by default
    num_seeds: int | None = None  # seeds of this configuration where it needs more than the script's


@dataclass
class Runs:
    """A configuration trained once per seed: a record per run, and the cache folder that holds
    its ``weights.pt`` and ``test_logits.pt`` (``common.results`` summarises them)."""

    config: Config
    records: list[dict]
    folders: list[Path]

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def label(self) -> str:
        return self.config.label or self.config.name

    @property
    def score(self) -> str:
        return self.config.score

    @property
    def num_weights(self) -> int:
        return self.records[0]["hyperparameters"]["num_weights"]

    def test_logits(self) -> list[torch.Tensor]:
        """One (N, classes, ...) tensor per seed, on the CPU."""
        return [torch.load(folder / "test_logits.pt", weights_only=True) for folder in self.folders]

    def weights(self, seed_index: int = 0) -> dict:
        return torch.load(self.folders[seed_index] / "weights.pt", weights_only=True)


@dataclass
class Job:
    """One run to train: a configuration, its data, a seed and a device."""

    config: Config
    splits: Splits
    seed: int
    device: torch.device

    def key(self) -> str:
        return _prepare(self.config, self.splits, self.seed, self.device)[4]

    def cost(self) -> float:
        """A rough measure of the work, to train the longest runs first: epochs x training images x
        multiply-adds of the model's forward pass on one image."""
        return self.config.epochs * len(self.splits.train[1]) * multiply_adds(self.config.model(),
                                                                              self.splits.train[0][:1].cpu())


class Planned(Exception):
    """Raised by :func:`run_all` while ``PLAN`` is a list: the runs it would train are in ``PLAN``."""


# A list while `make report` (common.report) plans: run_all then adds the runs it would train and
# raises Planned, so that every script's runs can be trained together, two at a time, and the scripts
# rerun with them in the cache.
PLAN: list[Job] | None = None


def run_all(configs: list[Config], splits: Splits, ctx, device: torch.device | None = None) -> list[Runs]:
    """Train each configuration for every seed of ``ctx`` (a ``common.cli.Context``; its first
    ``config.num_seeds`` seeds where a configuration says so), or load the cached runs, on ``device``
    (default ``ctx.device``). On the CPU, up to ``ctx.workers`` runs train at once, each in a process
    of its own on one thread (:func:`train_in_pool`): a run computes the same numbers either way."""
    device = device or ctx.device
    jobs = {id(config): [Job(config, splits, seed, device) for seed in seeds(config, ctx)] for config in configs}
    pending = [job for js in jobs.values() for job in js
               if not (ctx.use_cache and (ctx.cache_dir / "runs" / job.key() / "record.json").is_file())]
    if PLAN is not None and pending:
        PLAN.extend(pending)
        raise Planned()
    announce(ctx)  # while make report plans, cli.setup leaves the script's header to here
    workers = min(getattr(ctx, "workers", 1), len(pending)) if device.type == "cpu" else 1
    if workers > 1:
        print(f"training {len(pending)} runs, {workers} at a time", file=sys.stderr, flush=True)
        train_in_pool(pending, workers, cache_root=ctx.cache_dir, show_progress=ctx.show_progress)
    kwargs = {"cache_root": ctx.cache_dir, "show_progress": ctx.show_progress}
    out = []
    for config in configs:  # the pool's runs are in the cache now
        trained = [run_one(config, splits, job.seed, device, use_cache=ctx.use_cache or workers > 1, **kwargs)
                   for job in jobs[id(config)]]
        out.append(Runs(config, [r for r, _ in trained], [f for _, f in trained]))
    return out


def seeds(config: Config, ctx) -> list[int]:
    """The seeds of ``config``: ``ctx``'s, or its first ``config.num_seeds`` (not with --quick)."""
    if config.num_seeds is None or getattr(ctx, "quick", False):
        return ctx.seeds
    return [ctx.seed + k for k in range(config.num_seeds)]


_POOL: list[Job] = []  # what the forked workers of train_in_pool read: they inherit it, nothing is pickled


def train_in_pool(jobs: list[Job], workers: int, *, cache_root: Path, show_progress: bool = True,
                  cost: Callable[[Job], float] | None = None, on_done: Callable[[Job, int], None] | None = None) -> None:
    """Train ``jobs`` into the cache, the costliest first (by ``cost``, default ``Job.cost``),
    ``workers`` at a time in forked processes on one thread each; ``on_done(job, count)`` after each
    (the caller says what it trains). Two single-threaded runs at once get through more epochs than one
    run on two threads (``make bench`` measures both): the small convolutions here scale poorly across
    threads. Forked workers of a process whose OpenMP threads are running can deadlock, so a process on
    several threads (not a script: cli.setup makes them single-threaded from the start) trains one run
    at a time instead."""
    if torch.get_num_threads() > 1:
        print(f"training one run at a time: this process uses {torch.get_num_threads()} threads", file=sys.stderr)
        workers = 1
    cost = cost or Job.cost
    order = sorted(range(len(jobs)), key=lambda k: -cost(jobs[k]))
    _POOL[:] = jobs
    if workers <= 1:
        for count, k in enumerate(order, 1):
            _pool_job(k, cache_root, show_progress)
            if on_done:
                on_done(jobs[k], count)
        return
    pool = multiprocessing.get_context("fork").Pool(workers, initializer=_worker_init)
    try:
        for count, k in enumerate(pool.imap_unordered(functools.partial(_pool_job, cache_root=cache_root,
                                                                        show_progress=show_progress),
                                                      order, chunksize=1), 1):
            if on_done:
                on_done(jobs[k], count)
        pool.close()
    finally:
        pool.terminate()
        pool.join()
        _POOL.clear()


def _worker_init() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle: it stops the pool


def _pool_job(index: int, cache_root: Path, show_progress: bool) -> int:
    job = _POOL[index]
    run_one(job.config, job.splits, job.seed, job.device, cache_root=cache_root, use_cache=False,
            show_progress=show_progress)
    return index


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and CUDA) and ask for deterministic kernels."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # also seeds every CUDA device
    torch.backends.cudnn.benchmark = False
    torch.backends.cudnn.deterministic = True


def _prepare(config: Config, splits: Splits, seed: int, device: torch.device) -> tuple:
    """Seed, build the model, optimizer and schedule of a run, describe it: (model, optimizer,
    scheduler, hyperparameters, cache key, device)."""
    seed_everything(seed)
    model = config.model()
    if config.backend == "torch":
        model.to(device).to(memory_format=torch.channels_last)  # faster convolutions; the same function
    else:
        device = torch.device("cpu")
    optimizer = config.optimizer(model.parameters())
    steps_per_epoch = math.ceil(len(splits.train[1]) / config.batch_size)
    scheduler = config.scheduler(optimizer, steps_per_epoch) if config.scheduler else None
    hyper = describe(config, model, optimizer, scheduler)
    return model, optimizer, scheduler, hyper, cache_key(hyper, config, model, seed, splits, device), device


def run_one(config: Config, splits: Splits, seed: int, device: torch.device, *, cache_root: Path,
            use_cache: bool = True, show_progress: bool = True) -> tuple[dict, Path]:
    """Train ``config`` with ``seed`` (or load the cached run); returns its record and cache folder."""
    model, optimizer, scheduler, hyper, key, device = _prepare(config, splits, seed, device)
    folder = cache_root / "runs" / key
    if use_cache and (folder / "record.json").is_file():
        return {**json.loads((folder / "record.json").read_text()), "name": config.name}, folder

    learner, ((x_train, y_train), val, test) = _learner(config, model, optimizer, scheduler, device, splits)
    score_fn = SCORES[config.score]
    n_eval = len(val[1])
    start = time.perf_counter()
    history = fit(learner, TensorLoader(x_train, y_train, config.batch_size, shuffle=True, seed=seed,
                                        transform=config.augment),
                  TensorLoader(*val, EVAL_BATCH_SIZE), config.epochs, score_fn,
                  train_eval_loader=TensorLoader(x_train[:n_eval], y_train[:n_eval], EVAL_BATCH_SIZE),
                  on_epoch=Progress(f"{config.name} seed {seed}", config.epochs, config.score, show_progress))
    wall = time.perf_counter() - start
    test_result = evaluate(learner, TensorLoader(*test, EVAL_BATCH_SIZE), score_fn, keep_logits=True)
    history["iter_loss"] = [float(f"{v:.5g}") for v in history["iter_loss"]]
    record = {
        "name": config.name, "seed": seed, "hyperparameters": hyper, "device": str(device),
        "device_name": device_name(device), "history": history,
        "train_time_per_epoch_s": metrics.summarize([e["train_time_s"] for e in history["epochs"]]),
        "wall_time_s": wall,
        "validation_held_out": splits.info.get("validation_held_out", True),
        "test": {"loss": test_result.loss, config.score: test_result.score, "n": len(test_result.scores),
                 "majority_share": test_result.majority_share},
        "cache_key": key,
    }
    _save(folder, record, learner.state_dict(), test_result.logits)
    return record, folder


def describe(config: Config, model: nn.Module, optimizer: torch.optim.Optimizer, scheduler) -> dict:
    """Every hyperparameter of a run, PyTorch's defaults behind it included."""
    loss = config.loss
    return {
        "model": type(model).__name__,
        "model_options": model_options(config),
        "layers": layer_list(model),
        "num_weights": count_weights(model),
        "init": getattr(model, "init_scheme", INIT_SCHEMES["default"]),
        "optimizer": {"class": type(optimizer).__name__, "defaults": dict(optimizer.defaults),
                      "param_groups": [{k: v for k, v in g.items() if k != "params"} for g in optimizer.param_groups]},
        "scheduler": None if scheduler is None else {
            "class": type(scheduler).__name__, "per_batch": config.scheduler_per_batch,
            "state": {k: v for k, v in scheduler.state_dict().items()
                      if not k.startswith("_") and isinstance(v, (int, float, str, bool, list, type(None)))}},
        "loss": {"class": type(loss).__name__,
                 **{k: v for k, v in vars(loss).items()
                    if not k.startswith("_") and k != "training" and isinstance(v, (int, float, str, bool, type(None)))}},
        "num_epochs": config.epochs,
        "batch_size": config.batch_size,
        "shuffle": "new permutation every epoch, seeded with the run's seed",
        "augmentation": None if config.augment is None else repr(config.augment),
        "backend": config.backend,
    }


def model_options(config: Config) -> dict:
    """Every argument of the model's class, the defaults included (so that ``MnistCNN()`` and
    ``MnistCNN(activation="relu")`` describe, and cache, alike); {} for a model built otherwise than
    by a ``functools.partial`` of its class."""
    build = config.model
    if not hasattr(build, "keywords"):
        return {}
    bound = inspect.signature(build.func).bind(*build.args, **build.keywords)
    bound.apply_defaults()
    return {k: list(v) if isinstance(v, tuple) else v for k, v in bound.arguments.items()}


def training_code_hash() -> str:
    digest = hashlib.sha256()
    for name in TRAINING_CODE:
        digest.update(name.encode() + (COMMON_DIR / name).read_bytes())
    for fn in (metrics.accuracy_per_sample, metrics.dice_coefficient, metrics.dice_per_sample):
        digest.update(inspect.getsource(fn).encode())
    return digest.hexdigest()[:16]


def cache_key(hyper: dict, config: Config, model: nn.Module, seed: int, splits: Splits, device: torch.device) -> str:
    """What determines a run's record: hyperparameters, the architecture and initial weights, how it
    is scored, the tensors its loss holds, seed, data, training code, device type and torch version."""
    init = tensor_fingerprint(*(t.detach().cpu() for t in model.state_dict().values()))
    loss_buffers = tensor_fingerprint(*(b.detach().cpu() for b in config.loss.buffers()))
    return stable_hash({"hyper": hyper, "architecture": str(model), "init": init, "score": config.score,
                        "loss_buffers": loss_buffers, "seed": seed, "data": splits.info.get("fingerprint"),
                        "code": training_code_hash(), "device": device.type, "torch": torch.__version__})


def _learner(config: Config, model, optimizer, scheduler, device, splits: Splits):
    data = (splits.train, splits.val, splits.test)
    if config.backend == "numpy":
        from .numpy_mlp import NumpyLearner, NumpyMLP

        groups = optimizer.param_groups
        if not isinstance(optimizer, torch.optim.SGD) or any(g["momentum"] or g["weight_decay"] for g in groups):
            raise ValueError(f"the NumPy backend implements plain SGD only, got {type(optimizer).__name__} "
                             f"with {groups[0]}")
        return NumpyLearner(NumpyMLP.from_torch(model), lr=groups[0]["lr"]), tuple((x.cpu(), y.cpu()) for x, y in data)
    if config.backend != "torch":
        raise ValueError(f"unknown backend {config.backend!r}; use 'torch' or 'numpy'")
    data = tuple((x.to(device), y.to(device)) for x, y in data)
    data = tuple((x.contiguous(memory_format=torch.channels_last) if x.dim() == 4 else x, y) for x, y in data)
    return TorchLearner(model, optimizer, config.loss.to(device), device, scheduler, config.scheduler_per_batch), data


def _save(folder: Path, record: dict, state: dict, test_logits: torch.Tensor) -> None:
    for name, obj in (("weights.pt", state), ("test_logits.pt", test_logits)):
        buffer = io.BytesIO()
        torch.save(obj, buffer)
        atomic_write_bytes(folder / name, buffer.getvalue())
    atomic_write_json(folder / "record.json", record)  # written last: marks the entry complete
