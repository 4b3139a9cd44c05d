"""Timing of training steps, for comparing architectures that compute the same thing differently.

Every timing runs its candidates in turn within every repeat (round-robin, the order reversed every other
repeat so that none always goes first), so that a slow-down of the machine during the measurement (other
processes) hits all of them alike, and the median over repeats discards the outliers.
"""
from __future__ import annotations

import concurrent.futures
import copy
import functools
import multiprocessing
import statistics
import time
from typing import Callable

import torch
from threadpoolctl import threadpool_limits
from torch import Tensor, nn

from .metrics import sign_test
from .numpy_mlp import NumpyLearner, NumpyMLP
from .train import TorchLearner, build_model, synchronize

NUM_BATCHES, WARMUP = 20, 3  # timed and untimed batches per repeat, unless a caller asks for others


def time_forward_backward(models: dict[str, nn.Module], inputs: Tensor, targets: Tensor, *,
                          batch_size: int, loss_fn: nn.Module | None = None, num_batches: int = NUM_BATCHES,
                          warmup: int = WARMUP, repeats: int = 5, channels_last: bool = True,
                          reference: str | None = None) -> dict[str, dict]:
    """Seconds per batch for forward + loss + backward of each model: per model name, the median and all
    repeats, and against ``reference`` (if given) the paired comparison of :func:`versus`. Each repeat times
    ``num_batches`` batches of ``batch_size`` after ``warmup`` untimed ones. No optimizer step is taken, so
    the weights (and hence the work) stay the same throughout."""
    if not models:
        raise ValueError("time_forward_backward() needs at least one model")
    _check_counts(num_batches, warmup, repeats)
    loss_fn = loss_fn or nn.CrossEntropyLoss()
    device = inputs.device
    batches = _batches(inputs, targets, batch_size, warmup + num_batches)
    if channels_last:
        batches = [(x.contiguous(memory_format=torch.channels_last) if x.dim() == 4 else x, y) for x, y in batches]
    for model in models.values():
        model.to(device).train()
        if channels_last:
            model.to(memory_format=torch.channels_last)

    def forward_backward(model: nn.Module, x: Tensor, y: Tensor) -> None:
        model.zero_grad(set_to_none=True)
        loss_fn(model(x), y).backward()

    return _round_robin({name: (functools.partial(forward_backward, model), batches, device)
                         for name, model in models.items()},
                        batch_size=batch_size, num_batches=num_batches, warmup=warmup, repeats=repeats,
                        reference=reference)


def time_in_processes(configs: dict[str, dict], inputs: Tensor, targets: Tensor, *, sessions: int,
                      **options) -> list[dict[str, dict]]:
    """:func:`time_forward_backward` of the networks ``configs`` describe (name -> a configuration, as
    ``train.build_model`` takes it), once per session, each session in a fresh Python process. Timings of the
    same code in separate processes differ more than the repeats within one (memory layout, the CPU's state), so
    a difference of a percent or two is real only where every session shows it."""
    used = (options.get("warmup", WARMUP) + options.get("num_batches", NUM_BATCHES)) * options["batch_size"]
    job = functools.partial(_timing_session, configs, inputs[:used].cpu(), targets[:used].cpu(), str(inputs.device),
                            torch.get_num_threads(), options)
    timings = []
    for _ in range(sessions):
        with concurrent.futures.ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
            timings.append(pool.submit(job).result())
    return timings


def _timing_session(configs: dict[str, dict], inputs: Tensor, targets: Tensor, device: str, threads: int,
                    options: dict) -> dict[str, dict]:
    """One session of :func:`time_in_processes`, in its own process."""
    torch.set_num_threads(threads)  # as the parent (common.cli.setup), for PyTorch and NumPy's BLAS alike
    threadpool_limits(threads, user_api="blas")
    torch.manual_seed(0)  # the time does not depend on the weights' values
    models = {name: build_model(config) for name, config in configs.items()}
    return time_forward_backward(models, inputs.to(device), targets.to(device), **options)


def time_train_steps(learners: dict, inputs: Tensor, targets: Tensor, *, batch_size: int,
                     num_batches: int = NUM_BATCHES, warmup: int = WARMUP, repeats: int = 5,
                     reference: str | None = None) -> dict[str, dict]:
    """Seconds per training step (``learner.train_step``: forward, loss, backward, update) of each learner
    (``TorchLearner``, ``NumpyLearner``), each on its own ``learner.device``, on the same batches; as
    :func:`time_forward_backward` otherwise. The weights change as they train; the work per step does not."""
    if not learners:
        raise ValueError("time_train_steps() needs at least one learner")
    _check_counts(num_batches, warmup, repeats)
    batches = _batches(inputs, targets, batch_size, warmup + num_batches)
    steps = {}
    for name, learner in learners.items():
        learner.start_epoch()
        steps[name] = (learner.train_step, [(x.to(learner.device), y.to(learner.device)) for x, y in batches],
                       learner.device)
    return _round_robin(steps, batch_size=batch_size, num_batches=num_batches, warmup=warmup, repeats=repeats,
                        reference=reference)


def _check_counts(num_batches: int, warmup: int, repeats: int) -> None:
    """Refuse a timing without timed batches or repeats, before anything is set up."""
    if num_batches < 1 or repeats < 1 or warmup < 0:
        raise ValueError(f"need num_batches >= 1, repeats >= 1, warmup >= 0; got {num_batches}, {repeats}, {warmup}")


def _batches(inputs: Tensor, targets: Tensor, batch_size: int, count: int) -> list[tuple[Tensor, Tensor]]:
    """``count`` consecutive batches of ``batch_size`` from ``inputs``/``targets``, cycling if needed."""
    n = len(inputs)
    indices = [torch.arange(k * batch_size, (k + 1) * batch_size, device=inputs.device) % n for k in range(count)]
    return [(inputs[idx], targets[idx]) for idx in indices]


def _round_robin(steps: dict[str, tuple[Callable[[Tensor, Tensor], object], list, torch.device]], *,
                 batch_size: int, num_batches: int, warmup: int, repeats: int,
                 reference: str | None = None) -> dict[str, dict]:
    """Time each ``name -> (step, batches, device)``: in every repeat, each step in turn runs over its first
    ``warmup`` batches untimed, then over the next ``num_batches`` timed."""
    per_batch: dict[str, list[float]] = {name: [] for name in steps}
    for repeat in range(repeats):
        order = list(steps.items())
        for name, (step, batches, device) in order if repeat % 2 == 0 else order[::-1]:
            for x, y in batches[:warmup]:
                step(x, y)
            synchronize(device)
            start = time.perf_counter()
            for x, y in batches[warmup:]:
                step(x, y)
            synchronize(device)
            per_batch[name].append((time.perf_counter() - start) / num_batches)
    medians = {name: statistics.median(times) for name, times in per_batch.items()}
    out = {name: {"per_batch_s": medians[name], "per_batch_repeats_s": per_batch[name],
                  "batch_size": batch_size, "num_batches": num_batches, "warmup": warmup, "repeats": repeats}
           for name in steps}
    for name in out:
        if reference is not None and name != reference:
            out[name]["versus"] = versus(out, reference, name)
    return out


def paired_speedups(timings: dict[str, dict], reference: str, name: str) -> list[float]:
    """Repeat by repeat, ``reference``'s time over ``name``'s (above 1: ``name`` is faster); the two
    must have been timed in the same repeats, so that they pair up."""
    a, b = timings[reference]["per_batch_repeats_s"], timings[name]["per_batch_repeats_s"]
    if len(a) != len(b) or not a:
        raise ValueError(f"{reference!r} and {name!r} need the same, non-zero number of repeats; got {len(a)} and {len(b)}")
    return [ta / tb for ta, tb in zip(a, b)]


def compare_savings(timings: dict[str, dict], a: tuple[str, str], b: tuple[str, str], labels: tuple[str, str]) -> dict:
    """Is the saving of ``b`` (time of b[0] over time of b[1], repeat by repeat) larger than that of
    ``a``? All four were timed in the same repeats: which saving is larger by the medians, in how many
    repeats it was, and the sign test of that count."""
    sa, sb = paired_speedups(timings, *a), paired_speedups(timings, *b)
    b_larger = statistics.median(sb) > statistics.median(sa)
    agree = sum((y > x) == b_larger for x, y in zip(sa, sb))
    return {"saving": {labels[0]: statistics.median(sa), labels[1]: statistics.median(sb)},
            "larger": labels[1] if b_larger else labels[0], "agreeing_repeats": agree, "repeats": len(sa),
            "p": sign_test(agree, len(sa))}


def versus(timings: dict[str, dict], reference: str, name: str) -> dict:
    """``name`` against ``reference``: the median of their ``paired_speedups`` (above 1: ``name`` is
    faster), in how many repeats the speed-up lay on the median's side of 1, and the two-sided sign
    test of that count (``metrics.sign_test``). A median of paired ratios, not a ratio of medians: the
    machine's speed drifts between repeats, and each pair shares its repeat's drift."""
    ratios = paired_speedups(timings, reference, name)
    speedup = statistics.median(ratios)
    agree = sum((r > 1) == (speedup > 1) for r in ratios)  # repeats on the median's side of 1
    return {"reference": reference, "speedup": speedup, "agreeing_repeats": agree, "repeats": len(ratios),
            "p": sign_test(agree, len(ratios))}


def twin_learners(model: nn.Module, lr: float, devices: list[torch.device]) -> dict:
    """``model`` (a ReLU ``MLP``) as plain-SGD learners from the same weights: in NumPy ("NumPy") and in
    PyTorch on each of ``devices`` ("PyTorch (CPU)", ...)."""
    learners = {"NumPy": NumpyLearner(NumpyMLP.from_torch(model), lr=lr)}
    for device in dict.fromkeys(devices):
        twin = copy.deepcopy(model).to(device)
        learners[f"PyTorch ({device.type.upper()})"] = TorchLearner(twin, torch.optim.SGD(twin.parameters(), lr=lr),
                                                           nn.CrossEntropyLoss(), device)
    return learners
