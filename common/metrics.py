"""Metrics. Per-sample scores are returned as tensors so their mean, spread and worst cases
can all be read from one place."""
from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor


def accuracy_per_sample(logits: Tensor, targets: Tensor) -> Tensor:
    """1.0 where ``argmax(logits)`` equals the target class, else 0.0. (N, C), (N,) -> (N,)."""
    return (logits.argmax(dim=1) == targets).float()


def confusion_matrix(targets: Tensor | np.ndarray, predictions: Tensor | np.ndarray,
                     num_classes: int) -> np.ndarray:
    """``cm[i, j]`` counts samples of true class ``i`` predicted as ``j`` (scikit-learn's convention)."""
    from sklearn.metrics import confusion_matrix as sk_confusion_matrix

    return sk_confusion_matrix(np.asarray(targets), np.asarray(predictions), labels=list(range(num_classes)))


def summarize(values: list[float] | np.ndarray) -> dict:
    """Mean, sample standard deviation (ddof=1; 0 for a single value), min, max and count."""
    arr = np.asarray(values, dtype=float)
    if arr.size == 0:
        raise ValueError("cannot summarize an empty list of values")
    return {
        "mean": float(arr.mean()),
        "std": float(arr.std(ddof=1)) if arr.size > 1 else 0.0,
        "min": float(arr.min()),
        "max": float(arr.max()),
        "n": int(arr.size),
    }


DIVERGED_FACTOR = 2.0  # a final training loss above this multiple of the loss at the start: diverged
DIVERGED_RULE = (f"diverged if the final epoch's training loss is not finite or more than {DIVERGED_FACTOR:g}x "
                 "the training loss at the start (the first epoch's, or the first iteration's if lower)")


def diverged(epochs: list[dict], initial_loss: float | None = None) -> tuple[bool, str]:
    """Whether training diverged (see ``DIVERGED_RULE``), and the numbers that say so.

    ``epochs`` are the per-epoch records of :func:`common.train.fit` (``train_loss``: the mean over
    the epoch's iterations; a loss is never negative; records without it, curves of scores only,
    cannot be judged and count as not diverged); ``initial_loss`` is the loss of the first
    iteration, at the initial weights, which lets a one-epoch run be judged too. Runs that train
    end below the start or, stuck at a trivial prediction, level with it (the committed runs end at
    most 1.0004x the start); a far too large learning rate ends thousands of times above it, or at NaN."""
    if "train_loss" not in epochs[-1]:
        return False, ""
    final = epochs[-1]["train_loss"]
    starts = [v for v in (epochs[0]["train_loss"], initial_loss) if v is not None and math.isfinite(v)]
    start = min(starts) if starts else math.nan
    if not math.isfinite(final):
        return True, f"final training loss {final}"
    if final > DIVERGED_FACTOR * start:
        return True, f"final training loss {final:.4g}, {final / start:.3g}x the {start:.4g} at the start"
    return False, ""


def fit_verdict(epochs: list[dict], *, gap_tol: float, rise_tol: float = 0.10,
                improve_tol: float = 0.002, initial_loss: float | None = None) -> dict:
    """Classify a training run as diverged, over-fitting, under-fitting or a good fit from its curves.

    ``epochs`` are the per-epoch records of :func:`common.train.fit` (``train_eval_score`` and
    ``val_score`` measured the same way, in eval mode, on equally sized subsets); ``initial_loss``
    the training loss of the first iteration, if known. The rule:

    * diverged if the training loss ends non-finite or far above where it started (:func:`diverged`;
      stated in the result's ``divergence_rule``, which only a diverged run's verdict has, so that
      the ``rule`` string, which the report parses, reads as before);
    * over-fitting if the final validation loss is more than ``rise_tol`` (relative) above its
      minimum, or the final train score exceeds the validation score by more than ``gap_tol``;
    * otherwise under-fitting if the train score still rose by more than ``improve_tol`` over
      the last quarter of the epochs (the model has not converged: more epochs or capacity help);
    * otherwise a good fit.
    """
    val_loss = [e["val_loss"] for e in epochs]
    last = epochs[-1]
    best_epoch = int(np.argmin(val_loss))
    rise = val_loss[-1] / val_loss[best_epoch] - 1.0
    gap = last["train_eval_score"] - last["val_score"]
    quarter = epochs[max(0, len(epochs) - 1 - max(1, len(epochs) // 4))]
    still_improving = last["train_eval_score"] - quarter["train_eval_score"]
    facts = (f"train-validation gap {gap:+.4f}; validation loss {rise:+.1%} vs its minimum "
             f"(epoch {best_epoch + 1}); train score change over the last quarter {still_improving:+.4f}")
    did_diverge, why = diverged(epochs, initial_loss)
    if did_diverge:
        verdict, facts = "diverged", f"{why}; {facts}"
    elif rise > rise_tol or gap > gap_tol:
        verdict = "over-fitting"
    elif still_improving > improve_tol:
        verdict = "under-fitting (still improving)"
    else:
        verdict = "good fit"
    rule = (f"over-fitting if final val loss > (1+{rise_tol}) x its minimum or train-val score gap > {gap_tol}; "
            f"else under-fitting if the train score rose > {improve_tol} over the last quarter of epochs; "
            "else good fit")
    return {"verdict": verdict, "facts": facts, "rule": rule,
            **({"divergence_rule": DIVERGED_RULE} if did_diverge else {}), "gap": gap, "val_loss_rise": rise, "best_val_loss_epoch": best_epoch + 1,
            "late_train_improvement": still_improving}


# --- Segmentation ----------------------------------------------------------------------------

DICE_EMPTY = 1.0  # Dice of an image where prediction and ground truth are both empty: perfect agreement


def dice_coefficient(pred: Tensor, target: Tensor, empty: float = DICE_EMPTY) -> Tensor:
    """Sørensen-Dice coefficient DSC = 2|A∩B| / (|A| + |B|) of each image, on the foreground.

    ``pred`` (A) and ``target`` (B) are boolean (or 0/1) masks of shape (N, H, W) (any trailing
    shape works); returns (N,) floats in [0, 1]. Where both masks are empty the ratio is 0/0 and
    the image scores ``empty`` (default 1.0: nothing to find and nothing found).

    The pixel counts are integers on the masks' device; the ratio is taken in float64 on the CPU
    (Apple's MPS has no float64) and returned as float32 on the masks' device.
    """
    if pred.shape != target.shape:
        raise ValueError(f"prediction {tuple(pred.shape)} and target {tuple(target.shape)} differ in shape")
    a, b = pred.bool().flatten(1), target.bool().flatten(1)
    counts = torch.stack([(a & b).sum(1), a.sum(1) + b.sum(1)]).cpu()  # intersection, |A| + |B|: int64
    intersection, total = counts.double()
    dice = torch.where(total > 0, 2.0 * intersection / total.clamp(min=1), torch.full_like(total, empty))
    return dice.float().to(pred.device)


def dice_per_sample(logits: Tensor, targets: Tensor) -> Tensor:
    """Dice of the gland class (1) per image: the ScoreFn adapter of :func:`dice_coefficient`.

    ``logits`` (N, 2, H, W), ``targets`` (N, H, W) class indices -> (N,). The prediction is the
    arg-max class of each pixel (softmax probability of gland > 0.5).
    """
    return dice_coefficient(logits.argmax(dim=1) == 1, targets == 1)
