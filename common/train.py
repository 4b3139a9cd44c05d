"""The training loop every exercise uses: :func:`fit`, epochs of training steps each followed by
:func:`evaluate` on the validation set (and a training subset of the same size, scored the same
way, so that the two are comparable).

A *learner* takes one optimisation step on a batch and computes logits: :class:`TorchLearner`
wraps a module, its optimizer, loss and learning-rate schedule; ``common.numpy_mlp.NumpyLearner``
the from-scratch NumPy network of Exercise 1.1, so that both are trained by the same loop.
"""
from __future__ import annotations

import copy
import time
from dataclasses import dataclass
from typing import Callable, Iterable

import torch
from torch import Tensor, nn

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
