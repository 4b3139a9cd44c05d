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

import hashlib
import inspect
import io
import json
import os
import multiprocessing
import platform
import random
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np
import torch
from torch import nn

from . import metrics
from .data import BatchTransform, Splits, TensorLoader, atomic_write_bytes, atomic_write_json, stable_hash, tensor_fingerprint
from .models import INIT_SCHEMES, count_weights, layer_list
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
    notes: dict = field(default_factory=dict)  # further settings worth recording


@dataclass
class Runs:
    """A configuration trained once per seed: a record per run, and the cache folder that holds
    its ``weights.pt`` and ``test_logits.pt``."""

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

    def summary(self) -> dict:
        """Test and final validation score (mean, std, min, max over seeds), time per epoch and
        each run's fit verdict (``common.metrics.fit_verdict``, from its curves)."""
        s = self.score
        verdicts = [metrics.fit_verdict(r["history"], score=s) if r.get("validation_held_out", True) else
                    {"verdict": "no hold-out", "why": "the validation images were trained on"} for r in self.records]
        held_out = all(r.get("validation_held_out", True) for r in self.records)
        return {f"test_{s}": metrics.summarize([r["test"][s] for r in self.records]),
                **({f"final_val_{s}": metrics.summarize([r["history"]["epochs"][-1]["val_score"] for r in self.records])}
                   if held_out else {}),
                "train_time_per_epoch_s": metrics.summarize([r["train_time_per_epoch_s"]["mean"] for r in self.records]),
                "verdicts": [v["verdict"] for v in verdicts], "verdict_details": verdicts}

    def as_dict(self) -> dict:
        """The configuration as the results file holds it."""
        return {"name": self.name, "label": self.label, "score_name": self.score, "num_weights": self.num_weights,
                "runs": self.records, "summary": self.summary()}


def run_all(configs: list[Config], splits: Splits, ctx, device: torch.device | None = None,
            seeds: list[int] | None = None) -> list[Runs]:
    """Train each configuration for every seed of ``ctx`` (a ``common.cli.Context``; or ``seeds``),
    or load the cached runs, on ``device`` (default ``ctx.device``). On the CPU, up to ``ctx.workers``
    runs train at once, each in a process of its own with one thread: each run computes exactly
    what it would alone, and two single-threaded runs train about twice as fast as one run on two
    threads (the small convolutions here do not scale across threads)."""
    device, seeds = device or ctx.device, seeds or ctx.seeds
    jobs = [(config, seed) for config in configs for seed in seeds]
    kwargs = {"cache_root": ctx.cache_dir, "show_progress": ctx.show_progress}
    pending = [job for job in jobs if not (ctx.use_cache and _cached(*job, splits, device, ctx.cache_dir))]
    workers = min(getattr(ctx, "workers", 1), len(pending)) if device.type == "cpu" else 1
    if workers > 1:
        _train_in_pool(pending, splits, device, workers, kwargs)  # into the cache, which the loop below reads
    trained: dict[int, list] = {}
    for config, seed in jobs:  # the pool's runs are all in the cache now
        trained.setdefault(id(config), []).append(
            run_one(config, splits, seed, device, use_cache=ctx.use_cache or workers > 1, **kwargs))
    return [Runs(c, [r for r, _ in trained[id(c)]], [f for _, f in trained[id(c)]]) for c in configs]


_POOL: dict = {}  # what the forked workers of _train_in_pool read: they inherit it, nothing is pickled


def _train_in_pool(jobs: list, splits: Splits, device: torch.device, workers: int, kwargs: dict) -> None:
    """Train ``jobs`` ((config, seed) pairs) in ``workers`` forked processes, the longest first."""
    _POOL.update(jobs=jobs, splits=splits, device=device, kwargs=kwargs)
    order = sorted(range(len(jobs)), key=lambda k: -jobs[k][0].epochs * _size(jobs[k][0]))
    print(f"training {len(jobs)} runs, {workers} at a time", file=sys.stderr, flush=True)
    pool = multiprocessing.get_context("fork").Pool(workers, initializer=_worker_init)
    try:
        for _ in pool.imap_unordered(_pool_job, order, chunksize=1):
            pass
        pool.close()
    finally:
        pool.terminate()
        pool.join()
        _POOL.clear()


def _worker_init() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle: it stops the pool


def _pool_job(index: int) -> None:
    config, seed = _POOL["jobs"][index]
    run_one(config, _POOL["splits"], seed, _POOL["device"], use_cache=False, **_POOL["kwargs"])


def _size(config: Config) -> int:
    """Weights of ``config``'s model: with the epochs, how the pool orders the runs (longest first)."""
    return count_weights(config.model())


def _cached(config: Config, seed: int, splits: Splits, device: torch.device, cache_root: Path) -> bool:
    return (cache_root / "runs" / _prepare(config, splits, seed, device)[4] / "record.json").is_file()


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
    steps_per_epoch = -(-len(splits.train[1]) // config.batch_size)
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
                  desc=f"{config.name} seed {seed}", show_progress=show_progress)
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
        **config.notes,
    }


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


def device_name(device: torch.device) -> str:
    """A human-readable name of the hardware behind ``device``."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    if device.type == "mps":
        return "Apple MPS"
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            model = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), model)
    except OSError:
        pass
    return f"CPU: {model} ({torch.get_num_threads()} torch threads, {os.cpu_count()} logical cores)"


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
