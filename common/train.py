"""One training loop for every exercise: ``fit`` = epochs of ``train_one_epoch`` + ``evaluate``.

A *learner* knows how to take one optimisation step on a batch and how to compute logits;
``TorchLearner`` wraps a module, optimizer, loss and optional LR scheduler, and
``common.numpy_mlp.NumpyLearner`` the from-scratch NumPy network, so both are trained and
timed by exactly the same loop.
"""
from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field
from typing import Callable, Iterable, Protocol

import torch
from torch import Tensor, nn

from .runtime import synchronize

ScoreFn = Callable[[Tensor, Tensor], Tensor]  # (logits, targets) -> per-sample score (N,)


class Learner(Protocol):
    device: torch.device

    def train_step(self, inputs: Tensor, targets: Tensor) -> Tensor | float:
        """One optimisation step; returns the batch's training loss."""

    def logits(self, inputs: Tensor) -> Tensor:
        """Forward pass in evaluation mode, without gradients."""

    def loss(self, logits: Tensor, targets: Tensor) -> Tensor:
        """The training loss of a batch, averaged over the batch."""

    def start_epoch(self) -> None: ...

    def end_epoch(self) -> None: ...

    def state_dict(self) -> dict: ...

    def load_state_dict(self, state: dict) -> None: ...


class TorchLearner:
    """``model`` trained with ``optimizer`` on ``loss_fn``; ``scheduler`` steps once per batch
    if ``scheduler_per_batch`` else once per epoch."""

    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer, loss_fn: nn.Module,
                 device: torch.device, scheduler=None, scheduler_per_batch: bool = False) -> None:
        self.model, self.optimizer, self.loss_fn = model, optimizer, loss_fn
        self.device, self.scheduler, self.scheduler_per_batch = device, scheduler, scheduler_per_batch

    def start_epoch(self) -> None:
        self.model.train()

    def train_step(self, inputs: Tensor, targets: Tensor) -> Tensor:
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

    def load_state_dict(self, state: dict) -> None:
        self.model.load_state_dict(state)


@dataclass
class EvalResult:
    loss: float  # mean over samples
    scores: Tensor  # per-sample score, on the CPU
    logits: Tensor | None = None  # all logits, on the CPU, when asked for

    @property
    def score(self) -> float:
        return self.scores.mean().item()


def evaluate(learner: Learner, batches: Iterable[tuple[Tensor, Tensor]], score_fn: ScoreFn,
             keep_logits: bool = False) -> EvalResult:
    """Loss and per-sample scores of ``learner`` over all ``batches``."""
    loss_sum, count, scores, kept = 0.0, 0, [], []
    for inputs, targets in batches:
        logits = learner.logits(inputs)
        loss_sum += learner.loss(logits, targets).item() * len(targets)
        count += len(targets)
        scores.append(score_fn(logits, targets).cpu())
        if keep_logits:
            kept.append(logits.cpu())
    if count == 0:
        raise ValueError("evaluate() got no batches")
    return EvalResult(loss_sum / count, torch.cat(scores), torch.cat(kept) if keep_logits else None)


@dataclass
class History:
    """What ``fit`` measured: per-iteration training loss and one dict per epoch."""

    iter_loss: list[float] = field(default_factory=list)
    epochs: list[dict] = field(default_factory=list)
    best_epoch: int | None = None  # 1-based; set when fit(restore_best=True) and a validation score beats -inf

    def to_dict(self) -> dict:
        return {"iter_loss": [float(f"{v:.5g}") for v in self.iter_loss], "epochs": self.epochs,
                "best_epoch": self.best_epoch}


def train_one_epoch(learner: Learner, train_loader, progress=None) -> list[float]:
    """One pass over ``train_loader``; returns the loss of every iteration.

    Losses stay on the device until the end of the epoch, so the loop never waits for the
    accelerator to report a number.
    """
    learner.start_epoch()
    losses = []
    for inputs, targets in train_loader:
        losses.append(learner.train_step(inputs, targets))
        if progress is not None:
            progress.update(1)
    learner.end_epoch()
    if losses and isinstance(losses[0], Tensor):
        return torch.stack(losses).cpu().tolist()
    return [float(v) for v in losses]


def fit(learner: Learner, train_loader, val_loader, num_epochs: int, score_fn: ScoreFn, *,
        train_eval_loader=None, restore_best: bool = False, desc: str = "train",
        show_progress: bool = True) -> History:
    """Train for ``num_epochs``; after each epoch evaluate on ``val_loader`` and (if given)
    ``train_eval_loader``, a fixed subset of the training data evaluated the same way as the
    validation set so the two are comparable. With ``restore_best`` the weights of the epoch
    with the best validation score are loaded at the end; if no epoch's score beats -inf (all
    NaN, say) the last epoch's weights stay and ``best_epoch`` stays None."""
    from tqdm import tqdm

    history = History()
    best = (-float("inf"), None)
    with tqdm(total=num_epochs * len(train_loader), desc=desc, unit="batch", leave=False,
              disable=not show_progress, mininterval=1.0) as progress:
        for epoch in range(1, num_epochs + 1):
            synchronize(learner.device)
            start = time.perf_counter()
            losses = train_one_epoch(learner, train_loader, progress)
            synchronize(learner.device)
            train_time = time.perf_counter() - start
            val = evaluate(learner, val_loader, score_fn)
            record = {"epoch": epoch, "train_loss": sum(losses) / len(losses),
                      "val_loss": val.loss, "val_score": val.score}
            if train_eval_loader is not None:
                train_eval = evaluate(learner, train_eval_loader, score_fn)
                record.update(train_eval_loss=train_eval.loss, train_eval_score=train_eval.score)
            record.update(train_time_s=train_time, eval_time_s=time.perf_counter() - start - train_time)
            history.iter_loss += losses
            history.epochs.append(record)
            progress.set_postfix(epoch=epoch, loss=f"{record['train_loss']:.4f}", val=f"{val.score:.4f}")
            if restore_best and val.score > best[0]:
                best = (val.score, learner.state_dict())
                history.best_epoch = epoch
    if restore_best and best[1] is not None:
        learner.load_state_dict(best[1])
    return history
