"""Timing of training steps, for comparing architectures that compute the same thing differently.

:func:`time_forward_backward` measures forward + loss + backward of each model on the same
batches. The models are timed in turn within every repeat (round-robin, the order reversed
every other repeat so that none always goes first), so that a slow-down of the machine during
the measurement (other processes) hits all of them alike, and the median over repeats discards
the outliers.
"""
from __future__ import annotations

import statistics
import time

import torch
from torch import Tensor, nn

from .runtime import synchronize


def time_forward_backward(models: dict[str, nn.Module], inputs: Tensor, targets: Tensor, *,
                          batch_size: int, loss_fn: nn.Module | None = None, num_batches: int = 20,
                          warmup: int = 3, repeats: int = 5, steps_per_epoch: int | None = None,
                          channels_last: bool = True) -> dict[str, dict]:
    """Seconds for forward + loss + backward of each model, per batch and (optionally) per epoch.

    Each repeat times ``num_batches`` consecutive batches of ``batch_size`` taken from
    ``inputs``/``targets`` (cycling if needed) after ``warmup`` untimed batches. No optimizer
    step is taken, so the weights (and hence the work) stay the same throughout. Returns, per
    model name, the median and all repeats of the time per batch, the time per epoch
    (median x ``steps_per_epoch``) when that is given, and the ratio to the fastest model.
    """
    if not models:
        raise ValueError("time_forward_backward() needs at least one model")
    if num_batches < 1 or repeats < 1 or warmup < 0:
        raise ValueError(f"need num_batches >= 1, repeats >= 1, warmup >= 0; got {num_batches}, {repeats}, {warmup}")
    loss_fn = loss_fn or nn.CrossEntropyLoss()
    device = inputs.device
    n = len(inputs)
    batches = []
    for k in range(warmup + num_batches):
        idx = torch.arange(k * batch_size, (k + 1) * batch_size, device=device) % n
        x = inputs[idx]
        batches.append((x.contiguous(memory_format=torch.channels_last) if channels_last and x.dim() == 4 else x,
                        targets[idx]))
    for model in models.values():
        model.to(device).train()
        if channels_last:
            model.to(memory_format=torch.channels_last)

    def step(model: nn.Module, x: Tensor, y: Tensor) -> None:
        model.zero_grad(set_to_none=True)
        loss_fn(model(x), y).backward()

    per_batch: dict[str, list[float]] = {name: [] for name in models}
    for repeat in range(repeats):
        order = list(models.items())
        for name, model in order if repeat % 2 == 0 else order[::-1]:  # alternate: no model always goes first
            for x, y in batches[:warmup]:
                step(model, x, y)
            synchronize(device)
            start = time.perf_counter()
            for x, y in batches[warmup:]:
                step(model, x, y)
            synchronize(device)
            per_batch[name].append((time.perf_counter() - start) / num_batches)
    medians = {name: statistics.median(times) for name, times in per_batch.items()}
    fastest = min(medians.values())
    return {name: {"per_batch_s": medians[name], "per_batch_repeats_s": per_batch[name],
                   **({"per_epoch_s": medians[name] * steps_per_epoch} if steps_per_epoch else {}),
                   "relative_to_fastest": medians[name] / fastest,
                   "batch_size": batch_size, "num_batches": num_batches, "warmup": warmup, "repeats": repeats}
            for name in models}


def paired_comparison(timings: dict[str, dict], slower: str, faster: str) -> dict:
    """Is ``faster`` really faster than ``slower``? Both were timed in the same repeats (round-robin,
    :func:`time_forward_backward`), so the repeats pair up; ``faster`` counts as faster only if it
    is so in every repeat, else the difference is called not consistent. (A two-sided sign test:
    all of n repeats one way has p = 2/2^n, 0.016 for 7; 6 of 7 already has p = 0.125.)"""
    a, b = timings[slower]["per_batch_repeats_s"], timings[faster]["per_batch_repeats_s"]
    if len(a) != len(b) or not a:
        raise ValueError(f"{slower!r} and {faster!r} need the same, non-zero number of repeats; got {len(a)} and {len(b)}")
    wins = sum(tb < ta for ta, tb in zip(a, b))
    verdict = (f"faster in all {len(a)} paired repeats" if wins == len(a) else
               f"no consistent difference (faster in only {wins} of {len(a)} paired repeats)")
    return {"faster_in_repeats": wins, "repeats": len(a), "verdict": verdict}
