"""Metrics, the fit verdict and the statistics behind every comparison.

* classification: accuracy per image, the confusion matrix;
* segmentation: Dice per image, and the boundary metrics of Ex 2.3 (boundary F1 within a pixel
  tolerance, the 95th-percentile Hausdorff distance);
* :func:`fit_verdict`: over-fitting, under-fitting, good fit, diverged or one class, from a run's curves;
* comparisons: the per-seed paired difference with its 95 % confidence interval, the Wilcoxon
  signed-rank test over test images, the sign test over paired timings (scipy.stats).
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from torch import Tensor


def accuracy_per_sample(logits: Tensor, targets: Tensor) -> Tensor:
    """1.0 where ``argmax(logits)`` is the target class, else 0.0. (N, C), (N,) -> (N,)."""
    return (logits.argmax(dim=1) == targets).float()


def confusion_matrix(targets, predictions, num_classes: int) -> np.ndarray:
    """``cm[i, j]`` counts samples of true class ``i`` predicted as ``j`` (scikit-learn's convention)."""
    from sklearn.metrics import confusion_matrix as sk_confusion_matrix

    return sk_confusion_matrix(np.asarray(targets), np.asarray(predictions), labels=list(range(num_classes)))


def summarize(values) -> dict:
    """Mean, sample standard deviation (ddof=1; 0 for a single value), min, max and count."""
    arr = np.asarray(values, dtype=float)
    if arr.size == 0:
        raise ValueError("cannot summarize an empty list of values")
    return {"mean": float(arr.mean()), "std": float(arr.std(ddof=1)) if arr.size > 1 else 0.0,
            "min": float(arr.min()), "max": float(arr.max()), "n": int(arr.size)}


# --- segmentation ----------------------------------------------------------------------------

DICE_EMPTY = 1.0  # both masks empty: nothing to find and nothing found, perfect agreement


def dice_coefficient(pred: Tensor, target: Tensor, empty: float = DICE_EMPTY) -> Tensor:
    """Sørensen-Dice DSC = 2|A∩B| / (|A| + |B|) of each image: boolean (or 0/1) masks (N, H, W)
    -> (N,) floats in [0, 1]; ``empty`` where both masks are empty (0/0). The pixel counts are
    integers; the ratio is taken in float64 on the CPU (Apple's MPS has no float64)."""
    if pred.shape != target.shape:
        raise ValueError(f"prediction {tuple(pred.shape)} and target {tuple(target.shape)} differ in shape")
    a, b = pred.bool().flatten(1), target.bool().flatten(1)
    counts = torch.stack([(a & b).sum(1), a.sum(1) + b.sum(1)]).cpu()  # intersection, |A| + |B|
    intersection, total = counts.double()
    dice = torch.where(total > 0, 2.0 * intersection / total.clamp(min=1), torch.full_like(total, empty))
    return dice.float().to(pred.device)


def dice_per_sample(logits: Tensor, targets: Tensor) -> Tensor:
    """Dice of the gland class per image, the prediction being each pixel's arg-max class.
    (N, 2, H, W) logits, (N, H, W) class indices -> (N,)."""
    return dice_coefficient(logits.argmax(dim=1) == 1, targets == 1)


def boundary_map(mask: Tensor) -> Tensor:
    """(H, W) binary mask -> its inner boundary: foreground pixels with a 4-connected background
    neighbour. Pixels outside the image count as the nearest edge pixel, so the image border is
    never a boundary (a gland cut by the field of view has no boundary there)."""
    if mask.dim() != 2:
        raise ValueError(f"expected an (H, W) mask, got shape {tuple(mask.shape)}")
    fg = mask.bool()
    padded = F.pad(fg[None, None].float(), (1, 1, 1, 1), mode="replicate")[0, 0].bool()
    all_neighbours_fg = padded[:-2, 1:-1] & padded[2:, 1:-1] & padded[1:-1, :-2] & padded[1:-1, 2:]
    return fg & ~all_neighbours_fg


def boundary_distances(pred: Tensor, target: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Boundary pixels (row, column) of ``pred`` and ``target`` and the Euclidean distance from each
    to the other boundary (inf where that is empty): (pred pixels, pred->target, target pixels, target->pred)."""
    p = boundary_map(torch.as_tensor(pred)).nonzero().float()
    t = boundary_map(torch.as_tensor(target)).nonzero().float()
    if len(p) == 0 or len(t) == 0:
        return p, torch.full((len(p),), math.inf), t, torch.full((len(t),), math.inf)
    d = torch.cdist(p, t)
    return p, d.min(dim=1).values, t, d.min(dim=0).values


def boundary_f1(pred: Tensor, target: Tensor, tolerance: float = 1.0) -> float:
    """F1 of boundary precision (share of predicted boundary pixels within ``tolerance`` pixels of the
    true boundary) and recall (vice versa). One boundary empty: 0; both empty: 1 if the masks agree."""
    _, pred_to_true, _, true_to_pred = boundary_distances(pred, target)
    if len(pred_to_true) == 0 and len(true_to_pred) == 0:
        return 1.0 if torch.equal(torch.as_tensor(pred).bool(), torch.as_tensor(target).bool()) else 0.0
    if len(pred_to_true) == 0 or len(true_to_pred) == 0:
        return 0.0
    precision = (pred_to_true <= tolerance).float().mean().item()
    recall = (true_to_pred <= tolerance).float().mean().item()
    return 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)


def hd95(pred: Tensor, target: Tensor) -> float:
    """95th-percentile symmetric Hausdorff distance between the boundaries, in pixels. One boundary
    empty: the image diagonal (the largest possible distance); both empty: 0 if the masks agree."""
    _, pred_to_true, _, true_to_pred = boundary_distances(pred, target)
    if len(pred_to_true) == 0 and len(true_to_pred) == 0 and torch.equal(torch.as_tensor(pred).bool(),
                                                                          torch.as_tensor(target).bool()):
        return 0.0
    if len(pred_to_true) == 0 or len(true_to_pred) == 0:
        return math.hypot(*torch.as_tensor(pred).shape)
    return max(torch.quantile(pred_to_true, 0.95).item(), torch.quantile(true_to_pred, 0.95).item())


def segmentation_scores(preds: Tensor, targets: Tensor, tolerances=(1.0, 2.0)) -> dict[str, np.ndarray]:
    """Per image of (N, H, W) masks: Dice, boundary F1 at each tolerance and HD95."""
    if preds.shape != targets.shape or preds.dim() != 3:
        raise ValueError(f"expected two (N, H, W) tensors of equal shape, got {tuple(preds.shape)} and {tuple(targets.shape)}")
    preds, targets = preds.cpu().bool(), targets.cpu().bool()
    out = {"dice": dice_coefficient(preds, targets).numpy()}
    for t in tolerances:
        out[f"boundary_f1_{t:g}px"] = np.array([boundary_f1(p, g, t) for p, g in zip(preds, targets)])
    out["hd95"] = np.array([hd95(p, g) for p, g in zip(preds, targets)])
    return out


# --- fit verdict -----------------------------------------------------------------------------

# Per score, each criterion's threshold and its margin: a value within the margin of its threshold is
# "borderline", never rounded into a verdict. late_gain: the best validation score in the last quarter of the
# epochs above the best before it (0.15 accuracy points, 0.008 Dice: about the seed-to-seed spread of a final
# validation score); gap: training-subset score above validation; rise: final validation loss above its minimum
# (relative); floor: the final training-subset score below which a network does not fit its own training data.
THRESHOLDS = {
    "accuracy": {"late_gain": (0.0015, 0.0005), "gap": (0.01, 0.0025), "rise": (0.10, 0.025), "floor": (0.95, 0.005)},
    "dice": {"late_gain": (0.008, 0.002), "gap": (0.03, 0.0075), "rise": (0.10, 0.025), "floor": (0.70, 0.02)},
}
ALPHA = 0.05  # every test of this project calls p < ALPHA significant
DIVERGED_FACTOR = 2.0  # a final training loss above this multiple of the loss at the start: diverged
ONE_CLASS_SHARE = 0.99  # a network predicting one class for this share of the validation images (pixels)


def late_gain(curve) -> float:
    """The best value in the last quarter of ``curve`` (its last ``round(len / 4)`` values, at least one) minus the
    best before it."""
    curve = np.asarray(curve, dtype=float)
    cut = len(curve) - max(1, round(len(curve) / 4))
    return float(np.nanmax(curve[cut:]) - np.nanmax(curve[:cut])) if cut > 0 else math.nan


def fit_verdict(history: dict, *, score: str) -> dict:
    """A run's fit, from its curves (``common.train.fit``'s history), the first that applies:

    * diverged: the final training loss is not finite or above DIVERGED_FACTOR x its start;
    * one class: the network predicts one class for ONE_CLASS_SHARE of the validation images (segmentation:
      pixels), a trivial solution whatever its curves look like;
    * under-fitting: the final training-subset score is below ``floor``;
    * not converged: the validation score still rose late (``late_gain`` above its threshold), whatever the
      learning-rate schedule;
    * over-fitting: the final validation loss rose above its minimum by more than ``rise``, or the training
      subset scores above validation by more than ``gap``;
    * borderline: none of these, but a value within the margin of its threshold (``borderline`` names which);
    * otherwise a good fit.
    The training curve's late gain is reported beside the validation curve's, never hidden.
    """
    limits = THRESHOLDS[score]
    epochs, last = history["epochs"], history["epochs"][-1]
    val_loss = [e["val_loss"] for e in epochs]
    best = int(np.nanargmin(val_loss)) if np.isfinite(val_loss).any() else len(epochs) - 1
    values = {"floor": last["train_eval_score"],
              "late_gain": late_gain([e["val_score"] for e in epochs]),
              "rise": val_loss[-1] / val_loss[best] - 1.0,
              "gap": last["train_eval_score"] - last["val_score"]}
    train_late_gain = late_gain([e["train_eval_score"] for e in epochs])
    start = min(v for v in (epochs[0]["train_loss"], (history["iter_loss"] or [math.inf])[0]) if math.isfinite(v))
    final, share = last["train_loss"], last.get("val_majority_share", 0.0)

    def state(criterion: str) -> str:  # "clear", "borderline" or "exceeded"
        threshold, margin = limits[criterion]
        value = values[criterion]
        distance = threshold - value if criterion == "floor" else value - threshold  # above 0: exceeded
        return "exceeded" if distance > margin else "borderline" if distance >= -margin else "clear"

    states = {c: state(c) for c in limits}
    if not math.isfinite(final) or final > DIVERGED_FACTOR * start:
        verdict, why = "diverged", f"training loss {final:.3g} at the end, {start:.3g} at the start"
    elif share >= ONE_CLASS_SHARE:
        verdict, why = "one class", f"{share:.1%} of the validation predictions fall on one class"
    else:
        verdict = next((v for c, v in (("floor", "under-fitting"), ("late_gain", "not converged"),
                                       ("rise", "over-fitting"), ("gap", "over-fitting")) if states[c] == "exceeded"),
                       "borderline" if "borderline" in states.values() else "good fit")
        why = _fit_text(values, train_late_gain, score)
    return {"verdict": verdict, "why": why, **values, "train_late_gain": train_late_gain, "states": states,
            "borderline": [c for c, v in states.items() if v == "borderline"], "best_val_loss_epoch": best + 1,
            "majority_share": share}


def _fit_text(values: dict, train_late_gain: float, score: str) -> str:
    """The rule's numbers in words: late gains of validation and training, gap, rise."""
    def points(v: float) -> str:
        return f"{100 * v:+.2f} points" if score == "accuracy" else f"{v:+.3f}"

    final = f"{100 * values['floor']:.2f} %" if score == "accuracy" else f"{values['floor']:.3f}"
    return (f"training score {final} at the end; last quarter: validation {points(values['late_gain'])}, training "
            f"{points(train_late_gain)}; training above validation by {points(values['gap'])}; validation loss "
            f"{values['rise']:+.0%} above its minimum")


def most_frequent(verdicts: list[str]) -> str:
    """The verdict most seeds share (of a tie, the one that comes first)."""
    return max(dict.fromkeys(verdicts), key=verdicts.count)


def configuration_verdict(verdicts: list[str]) -> str:
    """One verdict for a configuration's seeds: the verdict all seeds share ("good fit"), or each verdict with its
    number of seeds, the most frequent first ("good fit 3, borderline 2")."""
    order = sorted(dict.fromkeys(verdicts), key=lambda v: -verdicts.count(v))
    return ", ".join(f"{v} {verdicts.count(v)}" for v in order) if len(order) > 1 else order[0]


# --- comparisons -----------------------------------------------------------------------------

def mean_interval(values, confidence: float = 0.95) -> dict:
    """The mean of ``values`` and its t confidence interval (nan for a single value)."""
    from scipy import stats

    v = np.asarray(values, float)
    n, mean = len(v), float(v.mean())
    half = stats.t.ppf(0.5 + confidence / 2, n - 1) * v.std(ddof=1) / math.sqrt(n) if n > 1 else math.nan
    return {"mean": mean, "ci_low": mean - half, "ci_high": mean + half, "n": n}


def paired_difference(a, b) -> dict:
    """``b - a`` over pairs (seed k of ``b`` against seed k of ``a``: same split, batches and, where the
    architecture allows, initial weights): the mean difference and its t confidence interval."""
    d = np.asarray(b, float) - np.asarray(a, float)
    interval = mean_interval(d)
    return {"difference": interval["mean"], "ci_low": interval["ci_low"], "ci_high": interval["ci_high"],
            "pairs": len(d), "per_pair": d.tolist()}


def wilcoxon_images(a, b) -> dict:
    """Wilcoxon signed-rank test of ``b - a`` over test images (one seed's pair of networks): the
    two-sided p-value and on how many images ``b`` is higher or lower."""
    from scipy import stats

    d = np.asarray(b, float) - np.asarray(a, float)
    nonzero = d[np.abs(d) > 1e-12]
    p = float(stats.wilcoxon(nonzero).pvalue) if len(nonzero) else 1.0
    ranks = stats.rankdata(np.abs(nonzero))
    rank_sum = float(ranks[nonzero > 0].sum() - ranks[nonzero < 0].sum())  # the test's direction: above 0, b higher
    return {"p": p, "images": len(d), "higher": int((d > 1e-12).sum()), "lower": int((d < -1e-12).sum()),
            "mean_difference": float(d.mean()), "signed_rank_sum": rank_sum}


def compare(a_seeds, b_seeds, a_images=None, b_images=None, *, score: str, lower_is_better: bool = False) -> dict:
    """How configuration b compares with a (``score`` names what is compared), seed k of each paired
    (same split, batches and, where the architecture allows, initial weights).

    ``outcome`` is "better" or "worse" only where the 95 % interval of the paired difference over seeds
    excludes 0, else "unresolved": the seeds cannot tell the two apart. Given per-image scores
    ((seeds, images) arrays), each seed's pair is also tested over the test images (Wilcoxon): the test
    supports a direction the seeds give, and an interval whose direction most seeds' image tests contradict
    (p < 0.05 the other way) is "unresolved"; it never makes a direction of its own.
    """
    out = paired_difference(a_seeds, b_seeds)
    sign = -1.0 if lower_is_better else 1.0
    resolved = out["pairs"] > 1 and (out["ci_low"] > 0 or out["ci_high"] < 0)
    direction = "better" if sign * out["difference"] > 0 else "worse"
    outcome = direction if resolved else "unresolved"
    if a_images is not None:
        per_seed = [wilcoxon_images(a, b) for a, b in zip(np.atleast_2d(a_images), np.atleast_2d(b_images), strict=True)]
        significant = [sign * w["signed_rank_sum"] > 0 for w in per_seed if w["p"] < ALPHA]  # True: b better
        agree = sum(s == (direction == "better") for s in significant)
        out["images"] = {"seeds": len(per_seed), "images": per_seed[0]["images"], "agree": agree,
                         "disagree": len(significant) - agree, "per_seed": per_seed}
        if resolved and len(significant) - agree > len(per_seed) / 2:
            outcome = "unresolved"  # the seeds' interval and most seeds' images point opposite ways
    out["score"], out["lower_is_better"], out["outcome"] = score, lower_is_better, outcome
    out["a"], out["b"] = [float(x) for x in a_seeds], [float(x) for x in b_seeds]
    return out


def compare_counts(a_events: int, b_events: int, a_runs: int, b_runs: int) -> dict:
    """Fisher's exact test of ``a_events`` of ``a_runs`` against ``b_events`` of ``b_runs`` (e.g. runs
    stuck at one class): the counts and the two-sided p-value."""
    from scipy import stats

    p = float(stats.fisher_exact([[a_events, a_runs - a_events], [b_events, b_runs - b_events]]).pvalue)
    return {"a": a_events, "a_runs": a_runs, "b": b_events, "b_runs": b_runs, "p": p}


def sign_test(wins: int, n: int) -> float:
    """Two-sided p-value of ``wins`` of ``n`` paired repeats going one way, if both ways were equally likely."""
    from scipy import stats

    return float(stats.binomtest(wins, n, 0.5).pvalue)
