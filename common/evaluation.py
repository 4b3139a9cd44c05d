"""Evaluating trained runs beyond their recorded scores: per-image segmentation metrics from the
stored test logits, test-time augmentation from the stored weights, how fast a run reaches a
validation score, and the numbers that set a test image apart.

Conventions: a configuration's score for one seed is the mean over the test images; per-image
values averaged over the seeds pick example images and feed the paired tests over images.
"""
from __future__ import annotations

import copy
import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from . import metrics, results, warwick
from .train import Runs, build_model

LOWER_IS_BETTER = ("hd95",)
DIHEDRAL = [(flip, k) for flip in (False, True) for k in range(4)]  # the 8 symmetries of the square


def gland_masks(logits: Tensor) -> Tensor:
    """(N, 2, H, W) logits -> (N, H, W) boolean gland masks on the CPU: each pixel's arg-max class."""
    return logits.detach().cpu().argmax(dim=1) == 1


def per_image(runs: Runs, targets: Tensor, *, masks: list[Tensor] | None = None,
              boundary: bool = False) -> dict[str, np.ndarray]:
    """``{metric: (seeds, images) array}``: Dice and, with ``boundary``, boundary F1 (1 and 2 px)
    and HD95 of each seed's gland ``masks`` (default: the arg-max of the stored test logits)."""
    masks = masks if masks is not None else [gland_masks(lg) for lg in runs.test_logits()]
    truth = targets.cpu() == 1
    if not boundary:
        return {"dice": np.stack([metrics.dice_coefficient(m, truth).numpy() for m in masks])}
    per_seed = [metrics.segmentation_scores(m, truth) for m in masks]
    return {k: np.stack([s[k] for s in per_seed]) for k in per_seed[0]}


def compare_configs(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> dict:
    """Per metric of two :func:`per_image` results (the same seeds and images): ``metrics.compare``
    of b against a, over seed pairs (mean over images), each seed's pair also over images."""
    return {m: metrics.compare(a[m].mean(axis=1), b[m].mean(axis=1), a[m], b[m], score=m,
                               lower_is_better=m in LOWER_IS_BETTER) for m in a}


def summarize_per_image(values: dict[str, np.ndarray]) -> dict:
    """Per metric: the summary over seeds of each seed's mean over the images."""
    return {m: metrics.summarize(v.mean(axis=1)) for m, v in values.items()}


@torch.no_grad()
def dihedral_tta_logits(model: nn.Module, inputs: Tensor, batch_size: int = 64) -> Tensor:
    """Test-time augmentation: ``model``'s class probabilities for the 8 flipped/rotated copies of
    ``inputs`` (N, C, H, W), mapped back and averaged, returned as their logarithm (logits whose
    softmax is the mean probability; a log-sum-exp, finite where a probability underflows)."""
    if inputs.dim() != 4 or inputs.shape[2] != inputs.shape[3]:
        raise ValueError(f"expected square images (N, C, H, W), got {tuple(inputs.shape)}")
    model.eval()
    out = []
    for batch in inputs.split(batch_size):
        views = []
        for flip, k in DIHEDRAL:
            x = torch.rot90(batch.flip(3) if flip else batch, k, dims=(2, 3))
            log_p = torch.rot90(model(x).log_softmax(dim=1), -k, dims=(2, 3))  # undo the rotation, then the flip
            views.append(log_p.flip(3) if flip else log_p)
        out.append(torch.logsumexp(torch.stack(views), dim=0) - math.log(len(DIHEDRAL)))
    return torch.cat(out)


def tta_logits(runs: Runs, inputs: Tensor) -> list[Tensor]:
    """Per seed, :func:`dihedral_tta_logits` (on the CPU) of that run's stored weights on ``inputs``."""
    return [dihedral_tta_logits(runs.model(k).to(inputs.device), inputs).cpu() for k in range(len(runs.records))]


def with_test_prediction(runs: Runs, logits: list[Tensor], targets: Tensor, name: str, label: str, how: str) -> dict:
    """The results-file form of ``runs`` (``results.entry``) renamed ``name`` (shown as ``label``),
    with each run's test scores from another prediction (``how``) of the same weights: per seed the
    loss of ``logits`` and the Dice of their arg-max. Curves and validation scores stay those of
    the runs."""
    targets = targets.cpu()
    out = copy.deepcopy(results.entry(runs))
    out["name"], out["label"] = name, label
    for run, lg in zip(out["runs"], logits, strict=True):
        run["test"] = {"loss": F.cross_entropy(lg, targets).item(),
                       "dice": metrics.dice_coefficient(gland_masks(lg), targets == 1).mean().item(),
                       "n": len(targets), "evaluation": how}
    out["summary"]["test_dice"] = metrics.summarize([run["test"]["dice"] for run in out["runs"]])
    return out


def score_std_at_init(config: dict, images: Tensor, seeds: list[int]) -> float:
    """The standard deviation of the class scores on ``images`` of a fresh network of ``config``, mean over
    ``seeds`` (each seed draws the initial weights)."""
    stds = []
    for seed in seeds:
        torch.manual_seed(seed)
        with torch.no_grad():
            stds.append(build_model(config).to(images.device).eval()(images).std().item())
    return sum(stds) / len(stds)


def speed_of_learning(runs: Runs | dict, threshold: float) -> dict:
    """Per seed, the first epoch at which the validation score reaches ``threshold`` and the training
    seconds until then (None: never); the means over the seeds that reach it."""
    records = runs.records if isinstance(runs, Runs) else runs["runs"]
    per_seed = []
    for record in records:
        seconds, reached = 0.0, {"epoch": None, "seconds": None}
        for e in record["history"]["epochs"]:
            seconds += e["train_time_s"]
            if e["val_score"] >= threshold:
                reached = {"epoch": e["epoch"], "seconds": seconds}
                break
        per_seed.append(reached)
    epochs = [r["epoch"] for r in per_seed if r["epoch"] is not None]
    seconds = [r["seconds"] for r in per_seed if r["seconds"] is not None]
    return {"threshold": threshold, "per_seed": per_seed, "seeds_reaching": len(epochs), "seeds": len(per_seed),
            "mean_epoch": float(np.mean(epochs)) if epochs else None,
            "mean_seconds": float(np.mean(seconds)) if seconds else None}


def late_swing(runs: Runs) -> float:
    """The largest change of the validation score from one epoch to the next in the last quarter of the epochs
    (the fit rule's late phase; each step into or within it), over the seeds of ``runs``."""
    curves = [np.array([e["val_score"] for e in r["history"]["epochs"]]) for r in runs.records]
    return max(float(np.abs(np.diff(c[-(len(c) // 4 + 1):])).max(initial=0.0)) for c in curves)


def paired_epochs_to_threshold(a: Runs, b: Runs, threshold: float) -> dict:
    """How much sooner ``b`` reaches a validation ``threshold`` than ``a``, seed k against seed k: the paired
    difference of the epochs (b - a) over the pairs where both reach it with its 95 % interval, and ``outcome``
    "sooner" or "later" only where that interval excludes 0 (else "unresolved")."""
    first = [[s["epoch"] for s in speed_of_learning(x, threshold)["per_seed"]] for x in (a, b)]
    both = [(ea, eb) for ea, eb in zip(*first) if ea is not None and eb is not None]
    out = {"threshold": threshold, "pairs": len(first[0]), "both_reach": len(both), "a_epochs": first[0],
           "b_epochs": first[1], "difference": math.nan, "ci_low": math.nan, "ci_high": math.nan, "outcome": "unresolved"}
    if both:
        d = metrics.paired_difference([ea for ea, _ in both], [eb for _, eb in both])
        out.update(difference=d["difference"], ci_low=d["ci_low"], ci_high=d["ci_high"], per_pair=d["per_pair"])
        if d["ci_low"] > 0 or d["ci_high"] < 0:  # nan (one pair) compares False: unresolved
            out["outcome"] = "sooner" if d["difference"] < 0 else "later"
    return out


def display_images(inputs: Tensor, normalisation: dict) -> np.ndarray:
    """Normalised (N, 2, H, W) inputs -> (N, H, W, 3) RGB in [0, 1] as the PNGs look (blue = 0)."""
    x = warwick.unnormalise(inputs, normalisation)
    return torch.cat([x, torch.zeros_like(x[:, :1])], dim=1).permute(0, 2, 3, 1).numpy()


def case_arrays(splits, indices: list[int], preds: list) -> dict[str, np.ndarray]:
    """What a figure of test images ``indices`` needs, compactly: "case_image" (k, H, W, 3) uint8 RGB as
    the PNGs look, "case_truth" (k, H, W) uint8 masks, and per prediction in ``preds`` ((N, H, W) gland
    masks) "case_pred" (one) or "case_pred_0", "case_pred_1", ... (several)."""
    inputs, targets = splits.test
    image = display_images(inputs[indices], splits.info["normalisation"])
    out = {"case_image": (255 * image.clip(0, 1)).round().astype(np.uint8),
           "case_truth": targets[indices].cpu().numpy().astype(np.uint8)}
    for n, pred in enumerate(preds):
        out["case_pred" if len(preds) == 1 else f"case_pred_{n}"] = np.asarray(pred)[indices].astype(np.uint8)
    return out


def describe_case(index: int, dice: np.ndarray, inputs: Tensor, truth: Tensor, pred: Tensor, names: list[str],
                  normalisation: dict) -> dict:
    """Test image ``index`` in numbers, beside the median of all test images: the share of its pixels that are
    gland, its largest gland's share and how much of that gland the prediction ``pred`` (the first seed's, as
    drawn) finds, the prediction's false and missed gland pixels, and the red stain's share of the staining
    (``warwick.red_share``). ``dice``: (seeds, images); ``truth``, ``pred``: (images, H, W)."""
    from scipy import ndimage

    t, p = truth.cpu().bool().numpy(), pred.cpu().bool().numpy()

    def largest_gland(mask: np.ndarray) -> np.ndarray:  # the largest connected gland, as a mask
        labels, count = ndimage.label(mask)
        return labels == (np.bincount(labels.ravel())[1:].argmax() + 1) if count else mask

    stats = {"gland_fraction": t.reshape(len(t), -1).mean(1),
             "largest_gland_fraction": np.array([largest_gland(m).mean() for m in t]),
             "false_positive_fraction": (p & ~t).reshape(len(t), -1).mean(1),
             "false_negative_fraction": (~p & t).reshape(len(t), -1).mean(1),
             "red_share": warwick.red_share(warwick.unnormalise(inputs, normalisation))}
    own = {k: float(v[index]) for k, v in stats.items()}
    gland = largest_gland(t[index])
    own["largest_gland_found"] = float(p[index][gland].mean()) if gland.any() else math.nan
    return {"index": index, "name": names[index], "dice_mean": float(dice[:, index].mean()),
            "dice_per_seed": dice[:, index].tolist(), "median_dice": float(np.median(dice.mean(axis=0))),
            "stats": own, "median_stats": {k: float(np.nanmedian(v)) for k, v in stats.items()}}


def red_share_summary(splits, index: int | None = None) -> dict:
    """The red-stain share (``warwick.red_share``) of the training and the test images: min, median and
    max of each, how many test images lie above every training image and which, and for test image ``index`` its
    share and how many training images are as red or redder."""
    def share(inputs: torch.Tensor) -> np.ndarray:
        return warwick.red_share(warwick.unnormalise(inputs, splits.info["normalisation"]))

    train, test = share(splits.train[0]), share(splits.test[0])
    summary = {name: {"min": float(v.min()), "median": float(np.median(v)), "max": float(v.max())}
               for name, v in (("training", train), ("test", test))}
    summary["test"]["above_training_max"] = int((test > train.max()).sum())
    summary["test"]["beyond_training"] = np.flatnonzero(test > train.max()).tolist()  # which test images
    if index is not None:
        summary["case"] = {"index": index, "red_share": float(test[index]), "training_as_red": int((train >= test[index]).sum()),
                           "training_images": len(train)}
    return summary


def compare_runs(a: Runs, b: Runs, targets: Tensor | None = None, *, on: str = "test") -> dict:
    """``b`` against ``a`` (``metrics.compare``): their test scores paired seed by seed, and each seed's
    pair also image by image (per-image scores from ``targets``); with
    ``on="validation"``, their final validation scores, seed by seed only."""
    def per_seed(x: Runs) -> list[float]:
        return [r["test"][x.score] if on == "test" else r["history"]["epochs"][-1]["val_score"] for r in x.records]

    if on != "test":
        return metrics.compare(per_seed(a), per_seed(b), score=a.score)
    a_images, b_images = (per_image_scores(x, targets) for x in (a, b))
    return metrics.compare(per_seed(a), per_seed(b), a_images, b_images, score=a.score)


def per_image_scores(runs: Runs, targets: Tensor | None = None) -> np.ndarray:
    """(seeds, images): each test image's score per seed, Dice or 1/0 for a correct classification, from
    the stored test logits."""
    if runs.score == "dice":
        return per_image(runs, targets)["dice"]
    return np.array([(lg.argmax(dim=1) == targets.cpu()).float().numpy() for lg in runs.test_logits()])


def curve_differences(a: Runs, b: Runs) -> dict:
    """The largest absolute differences between two configurations' curves, seed by seed."""
    def largest(values):
        return max(abs(x - y) for ra, rb in zip(a.records, b.records) for x, y in zip(values(ra), values(rb)))

    return {"iter_loss": largest(lambda r: r["history"]["iter_loss"]),
            "val_loss": largest(lambda r: [e["val_loss"] for e in r["history"]["epochs"]]),
            "val_score": largest(lambda r: [e["val_score"] for e in r["history"]["epochs"]]),
            "test_score": largest(lambda r: [r["test"][a.score]])}


def classification_errors(logits: Tensor, targets: Tensor, top: int = 4) -> dict:
    """The confusion matrix of a classifier's test predictions, its errors (most confident first:
    index, true and predicted class, probability of the prediction) and the most frequent confusions."""
    targets = targets.cpu()
    confidence, predictions = logits.float().softmax(dim=1).max(dim=1)
    cm = metrics.confusion_matrix(targets, predictions, num_classes=logits.shape[1])
    wrong = (predictions != targets).nonzero().flatten()
    wrong = wrong[confidence[wrong].argsort(descending=True)]
    pairs = sorted(((int(cm[t, p]), t, p) for t in range(len(cm)) for p in range(len(cm)) if t != p and cm[t, p]),
                   reverse=True)[:top]
    return {"accuracy": 1 - len(wrong) / len(targets), "errors": len(wrong), "images": len(targets),
            "confusion_matrix": cm.tolist(),
            "top_confusions": [{"true": t, "predicted": p, "count": n} for n, t, p in pairs],
            "top_confusions_text": ", ".join(f"{t}→{p} ({n})" for n, t, p in pairs),
            "errors_below_half_probability": int((confidence[wrong] < 0.5).sum()),
            "wrong": [{"index": int(i), "true": int(targets[i]), "predicted": int(predictions[i]),
                       "probability": float(confidence[i])} for i in wrong]}
