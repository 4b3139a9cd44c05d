"""Run a configuration for one or several seeds, with caching, and describe it completely.

A :class:`RunSpec` says what to train (model, optimizer, loss, epochs, batch size, ...).
:func:`run_seeds` trains it once per seed on the train split, evaluates on the validation split
every epoch, touches the test split once at the end, and returns a JSON-ready record with every
hyperparameter (framework defaults included), the curves, timings and test metrics.

Each finished run is cached under ``<cache>/runs/<key>/`` where the key hashes the
hyperparameters, how the run is scored, initial weights, seed, data fingerprint, training code and
device type. Re-running an unchanged configuration loads the cached record and weights instead of
training again; an interrupted run leaves no entry and is simply redone.
"""
from __future__ import annotations

import io
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

import torch
from torch import nn

from .cache import atomic_write_bytes, atomic_write_json, files_hash, stable_hash
from .data import BatchTransform, Splits, TensorLoader, tensor_fingerprint
from .metrics import accuracy_per_sample, fit_verdict, summarize
from .models import INIT_SCHEME, count_weights
from .runtime import device_name, seed_everything
from .train import ScoreFn, TorchLearner, evaluate, fit

COMMON_DIR = Path(__file__).resolve().parent
# Modules that cannot change what a training run computes; editing them keeps cached runs.
NOT_TRAINING_CODE = {"plotting.py", "results.py", "cli.py", "report.py", "__init__.py", "seg_plots.py", "seg_analysis.py",
                     "seg_eval.py", "boundary.py", "boundary_plots.py", "timing.py", "latex.py"}
EVAL_BATCH_SIZE = 1000


@dataclass
class RunSpec:
    """One trainable configuration. ``build_*`` are called after seeding, once per seed."""

    name: str
    build_model: Callable[[], nn.Module]
    build_optimizer: Callable[[Iterable[nn.Parameter]], torch.optim.Optimizer]
    num_epochs: int
    batch_size: int
    loss_fn: nn.Module = field(default_factory=nn.CrossEntropyLoss)
    build_scheduler: Callable[[torch.optim.Optimizer, int], Any] | None = None  # (optimizer, steps/epoch)
    scheduler_per_batch: bool = False
    train_transform: BatchTransform | None = None
    backend: str = "torch"  # "torch", or "numpy" for the from-scratch MLP of common.numpy_mlp
    channels_last: bool = True  # faster convolutions on the CPU; no effect on the function computed
    restore_best: bool = False  # keep the weights of the best validation epoch
    score_name: str = "accuracy"
    score_fn: ScoreFn = accuracy_per_sample
    gap_tol: float = 0.01  # train-validation score gap above which a run counts as over-fitting
    extra: dict = field(default_factory=dict)  # further settings worth recording


@dataclass
class RunResult:
    record: dict
    directory: Path  # holds weights.pt and test_logits.pt

    def load_weights(self) -> dict:
        return torch.load(self.directory / "weights.pt", weights_only=True)

    def load_test_logits(self) -> torch.Tensor:
        return torch.load(self.directory / "test_logits.pt", weights_only=True)


def describe_optimizer(optimizer: torch.optim.Optimizer) -> dict:
    groups = [{k: v for k, v in g.items() if k != "params"} for g in optimizer.param_groups]
    return {"class": type(optimizer).__name__, "defaults": dict(optimizer.defaults), "param_groups": groups}


def describe_loss(loss_fn: nn.Module) -> dict:
    """The loss's class and plain settings, and a fingerprint of each tensor it holds (e.g. the
    class weights of ``CrossEntropyLoss(weight=...)``); ``buffers`` appears only when it has any."""
    settings = {k: v for k, v in vars(loss_fn).items()
                if not k.startswith("_") and k != "training" and isinstance(v, (int, float, str, bool, type(None)))}
    buffers = {name: tensor_fingerprint(b.detach().cpu()) for name, b in loss_fn.named_buffers()}
    return {"class": type(loss_fn).__name__, **settings, **({"buffers": buffers} if buffers else {})}


def describe_scoring(spec: RunSpec) -> dict:
    """How a run is scored: the score function (module and qualified name; a callable without a
    name, such as a ``functools.partial``, by its type's), the name its score is recorded under
    and the over-fitting gap of its verdict. Part of the cache key, not of the recorded
    hyperparameters (the record shows them as its test score's key and its verdict's rule)."""
    fn = spec.score_fn
    name = getattr(fn, "__qualname__", type(fn).__qualname__)
    return {"score_fn": f"{getattr(fn, '__module__', type(fn).__module__)}.{name}",
            "score_name": spec.score_name, "gap_tol": spec.gap_tol}


def describe(spec: RunSpec, model: nn.Module, optimizer: torch.optim.Optimizer, scheduler) -> dict:
    """Every hyperparameter of a run, including the framework defaults behind it."""
    return {
        "model": type(model).__name__,
        "architecture": str(model),
        "num_weights": count_weights(model),
        "init": INIT_SCHEME,
        "optimizer": describe_optimizer(optimizer),
        "scheduler": None if scheduler is None else {
            "class": type(scheduler).__name__, "per_batch": spec.scheduler_per_batch,
            "state": {k: v for k, v in scheduler.state_dict().items()
                      if isinstance(v, (int, float, str, bool, list, type(None)))}},
        "loss": describe_loss(spec.loss_fn),
        "num_epochs": spec.num_epochs,
        "batch_size": spec.batch_size,
        "shuffle": "new permutation every epoch, seeded with the run's seed",
        "train_transform": None if spec.train_transform is None else repr(spec.train_transform),
        "backend": spec.backend,
        "memory_format": "channels_last" if spec.channels_last and spec.backend == "torch" else "contiguous",
        "weights_used_for_test": "best validation epoch" if spec.restore_best else "last epoch",
        **spec.extra,
    }


def training_code_hash() -> str:
    return files_hash([p for p in COMMON_DIR.glob("*.py") if p.name not in NOT_TRAINING_CODE])


def cache_key(hyper: dict, model: nn.Module, seed: int, splits: Splits, device: torch.device) -> str:
    """What determines a run's record: its hyperparameters (with how it is scored), the initial
    weights (which also captures any custom initialisation), the seed, the data, the training
    code and the device.
    The configuration's name and the script are deliberately left out, so that exercises that
    train the same configuration (e.g. the Ex 1.2 baseline reused by Ex 1.3-1.5) share one run."""
    init = tensor_fingerprint(*(t.detach().cpu() for t in model.state_dict().values()))
    return stable_hash({"hyper": hyper, "init": init, "seed": seed,
                        "data": splits.info.get("fingerprint"), "code": training_code_hash(),
                        "device": device.type, "torch": torch.__version__})


def run_one(spec: RunSpec, splits: Splits, seed: int, device: torch.device, *, cache_root: Path,
            use_cache: bool = True, show_progress: bool = True) -> RunResult:
    """Train ``spec`` with ``seed`` (or load the cached run) and evaluate it on the test split."""
    seed_everything(seed)
    model = spec.build_model()
    if spec.backend == "torch":
        model.to(device)
        if spec.channels_last:
            model.to(memory_format=torch.channels_last)
    else:
        device = torch.device("cpu")
    optimizer = spec.build_optimizer(model.parameters())
    steps_per_epoch = -(-len(splits.train[1]) // spec.batch_size)
    scheduler = spec.build_scheduler(optimizer, steps_per_epoch) if spec.build_scheduler else None
    hyper = describe(spec, model, optimizer, scheduler)
    key = cache_key({**hyper, "scoring": describe_scoring(spec)}, model, seed, splits, device)
    directory = cache_root / "runs" / key
    if use_cache and (directory / "record.json").is_file():
        record = json.loads((directory / "record.json").read_text())
        record["name"] = spec.name
        return RunResult(record, directory)

    learner, data = _make_learner(spec, model, optimizer, scheduler, device, splits)
    (x_train, y_train), val, test = data
    n_eval = len(val[1])
    train_loader = TensorLoader(x_train, y_train, spec.batch_size, shuffle=True, seed=seed,
                                transform=spec.train_transform)
    val_loader = TensorLoader(*val, EVAL_BATCH_SIZE)
    train_eval_loader = TensorLoader(x_train[:n_eval], y_train[:n_eval], EVAL_BATCH_SIZE)
    start = time.perf_counter()
    history = fit(learner, train_loader, val_loader, spec.num_epochs, spec.score_fn,
                  train_eval_loader=train_eval_loader, restore_best=spec.restore_best,
                  desc=f"{spec.name} seed {seed}", show_progress=show_progress)
    wall = time.perf_counter() - start
    test_result = evaluate(learner, TensorLoader(*test, EVAL_BATCH_SIZE), spec.score_fn, keep_logits=True)
    train_times = [e["train_time_s"] for e in history.epochs]
    record = {
        "name": spec.name,
        "seed": seed,
        "hyperparameters": hyper,
        "device": str(device),
        "device_name": device_name(device),
        "history": history.to_dict(),
        "train_time_per_epoch_s": summarize(train_times),
        "wall_time_s": wall,
        "test": {"loss": test_result.loss, spec.score_name: test_result.score, "n": len(test_result.scores)},
        "verdict": fit_verdict(history.epochs, gap_tol=spec.gap_tol,
                               initial_loss=history.iter_loss[0] if history.iter_loss else None),
        "cache_key": key,
    }
    _save(directory, record, learner.state_dict(), test_result.logits)
    return RunResult(record, directory)


def run_seeds(spec: RunSpec, splits: Splits, seeds: list[int], device: torch.device, **kwargs) -> dict:
    """Run ``spec`` for each seed; returns ``{"name", "runs": [...], "summary": {...}}``."""
    results = [run_one(spec, splits, seed, device, **kwargs) for seed in seeds]
    runs = [r.record for r in results]
    summary = {
        f"test_{spec.score_name}": summarize([r["test"][spec.score_name] for r in runs]),
        f"final_val_{spec.score_name}": summarize([r["history"]["epochs"][-1]["val_score"] for r in runs]),
        "train_time_per_epoch_s": summarize([r["train_time_per_epoch_s"]["mean"] for r in runs]),
        "verdicts": [r["verdict"]["verdict"] for r in runs],
    }
    return {"name": spec.name, "score_name": spec.score_name, "num_weights": runs[0]["hyperparameters"]["num_weights"],
            "runs": runs, "summary": summary, "_results": results}


def _make_learner(spec: RunSpec, model, optimizer, scheduler, device, splits: Splits):
    data = (splits.train, splits.val, splits.test)
    if spec.backend == "numpy":
        from .numpy_mlp import NumpyLearner, NumpyMLP

        groups = optimizer.param_groups
        if not isinstance(optimizer, torch.optim.SGD) or any(g["momentum"] or g["weight_decay"] for g in groups):
            raise ValueError(f"the NumPy backend implements plain SGD only, got {describe_optimizer(optimizer)}")
        cpu = tuple((x.cpu(), y.cpu()) for x, y in data)
        return NumpyLearner(NumpyMLP.from_torch(model), lr=groups[0]["lr"]), cpu
    if spec.backend != "torch":
        raise ValueError(f"unknown backend {spec.backend!r}; use 'torch' or 'numpy'")
    data = tuple((x.to(device), y.to(device)) for x, y in data)
    if spec.channels_last:
        data = tuple((x.contiguous(memory_format=torch.channels_last) if x.dim() == 4 else x, y) for x, y in data)
    learner = TorchLearner(model, optimizer, spec.loss_fn.to(device), device, scheduler, spec.scheduler_per_batch)
    return learner, data


def _save(directory: Path, record: dict, state: dict, test_logits: torch.Tensor) -> None:
    for name, obj in (("weights.pt", state), ("test_logits.pt", test_logits)):
        buffer = io.BytesIO()
        torch.save(obj, buffer)
        atomic_write_bytes(directory / name, buffer.getvalue())
    atomic_write_json(directory / "record.json", record)  # written last: marks the entry complete
