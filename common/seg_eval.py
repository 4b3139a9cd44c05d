"""Comparing segmentation configurations (Ex 2.3-2.5): Dice and boundary metrics per test image and
seed from the stored test logits, their mean and spread over seeds, paired per-image comparisons,
and how fast a run reaches a validation Dice. :func:`dihedral_tta_logits` predicts with test-time
augmentation (the average over the 8 symmetries of the square) from a run's stored weights;
:func:`foreground_masks` turns logits into gland masks (a probability threshold, hole filling);
:func:`adapt_batchnorm` lets a trained network's batch-norm layers normalise with statistics of the
images it predicts instead of the training ones.

Conventions: a configuration's score for one seed is the mean over the test images; "mean and
spread over seeds" summarises those per-seed means (``common.metrics.summarize``: mean, sample
standard deviation, min, max). Per-image values averaged over the seeds are used to pick example
images and for paired (same image) comparisons.
"""
from __future__ import annotations

import copy
import math
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage
from torch import Tensor, nn

from .boundary import boundary_scores
from .metrics import dice_coefficient, summarize

TOLERANCES = (1.0, 2.0)  # boundary F1 tolerances, pixels
METRIC_LABELS = {"dice": "Dice", "boundary_f1_1px": "boundary F1 (1 px)", "boundary_f1_2px": "boundary F1 (2 px)",
                 "hd95": "HD95 (px)"}
LOWER_IS_BETTER = ("hd95",)


def per_image_metrics(config: dict, test_targets: Tensor, tolerances: tuple[float, ...] = TOLERANCES,
                      boundary: bool = True, logits: list[Tensor] | None = None,
                      masks: list[Tensor] | None = None) -> dict[str, np.ndarray]:
    """``{metric: (seeds, images) array}``: Dice and (with ``boundary``) boundary F1 at each
    tolerance and HD95, of each seed's predicted gland masks: ``masks`` (one (images, H, W)
    boolean tensor per seed, e.g. from :func:`foreground_masks`), or else the arg-max of the
    stored test logits or of ``logits`` (one (images, classes, H, W) tensor per seed, e.g. from
    :func:`dihedral_tta_logits`)."""
    targets = test_targets.cpu()
    if masks is None:
        masks = [foreground_masks(lg) for lg in (stored_test_logits(config) if logits is None else logits)]
    out = {"dice": np.stack([dice_coefficient(m, targets == 1).numpy() for m in masks])}
    if boundary:
        per_seed = [boundary_scores(m.long(), targets, tolerances) for m in masks]
        for metric in per_seed[0]:
            out[metric] = np.array([s[metric] for s in per_seed])
    return out


def stored_test_logits(config: dict) -> list[Tensor]:
    """One (images, classes, H, W) tensor per seed of a ``run_seeds`` result: the test logits its runs stored."""
    return [r.load_test_logits() for r in config["_results"]]


def summarize_metrics(per_image: dict[str, np.ndarray]) -> dict:
    """Per metric: the summary over seeds of the per-seed mean over images, the per-seed means,
    and the median over images of the per-image mean over seeds."""
    out = {}
    for metric, values in per_image.items():
        per_seed = values.mean(axis=1)
        out[metric] = {**summarize(per_seed), "per_seed": per_seed.round(5).tolist(),
                       "median_over_images": float(np.median(values.mean(axis=0)))}
    return out


def paired_difference(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> dict:
    """``b`` minus ``a`` per metric: the difference of the means over seeds, its spread over seed
    pairs (seed k of ``b`` against seed k of ``a``: same split, data order and, where the
    architecture allows, initial weights), and on how many test images (mean over seeds) ``b`` is
    better, worse or equal."""
    out = {}
    for metric in a:
        sign = -1.0 if metric in LOWER_IS_BETTER else 1.0
        seed_diff = b[metric].mean(axis=1) - a[metric].mean(axis=1)
        image_diff = b[metric].mean(axis=0) - a[metric].mean(axis=0)
        out[metric] = {
            "difference": float(seed_diff.mean()),
            "difference_per_seed_pair": seed_diff.round(5).tolist(),
            "seed_pairs_better": int((sign * seed_diff > 0).sum()),
            "images_better": int((sign * image_diff > 1e-9).sum()),
            "images_worse": int((sign * image_diff < -1e-9).sum()),
            "images": len(image_diff),
        }
    return out


def difference_sentence(label_a: str, label_b: str, diff: dict) -> str:
    """One line per metric: '<b> vs <a>: Dice +0.0123 (3/3 seed pairs better, 41/60 images better)'."""
    parts = []
    for metric, d in diff.items():
        parts.append(f"{METRIC_LABELS.get(metric, metric)} {d['difference']:+.4f} "
                     f"({d['seed_pairs_better']}/{len(d['difference_per_seed_pair'])} seed pairs and "
                     f"{d['images_better']}/{d['images']} images better)")
    return f"{label_b} vs {label_a}: " + "; ".join(parts)


def first_reaching(run: dict, threshold: float) -> dict:
    """The first epoch at which ``run``'s validation score is at least ``threshold``, and the
    training seconds (sum of the epochs' training times) spent until then; None if never."""
    elapsed = 0.0
    for e in run["history"]["epochs"]:
        elapsed += e["train_time_s"]
        if e["val_score"] >= threshold:
            return {"epoch": e["epoch"], "train_seconds": elapsed}
    return {"epoch": None, "train_seconds": None}


def speed_of_learning(config: dict, threshold: float) -> dict:
    """:func:`first_reaching` per seed, with the mean over the seeds that got there."""
    reached = [first_reaching(r, threshold) for r in config["runs"]]
    epochs = [r["epoch"] for r in reached if r["epoch"] is not None]
    seconds = [r["train_seconds"] for r in reached if r["train_seconds"] is not None]
    return {"threshold": threshold, "per_seed": reached, "seeds_reaching": len(epochs),
            "mean_epoch": float(np.mean(epochs)) if epochs else None,
            "mean_train_seconds": float(np.mean(seconds)) if seconds else None}


def nan_if_none(value) -> float:
    return math.nan if value is None else float(value)


def cases_by_difference(a: np.ndarray, b: np.ndarray) -> dict[str, int]:
    """Test images to show when comparing ``b`` with ``a`` ((images,) scores, higher better): the
    one where ``b`` gains most, the median gain and the one where ``b`` loses most."""
    diff = np.asarray(b) - np.asarray(a)
    order = np.argsort(diff)
    return {"largest gain": int(order[-1]), "median gain": int(order[len(order) // 2]),
            "largest loss": int(order[0])}


DIHEDRAL = [(flip, k) for flip in (False, True) for k in range(4)]  # the 8 symmetries of the square


@torch.no_grad()
def dihedral_tta_logits(model: nn.Module, inputs: Tensor, batch_size: int = 64) -> Tensor:
    """Test-time augmentation: ``model``'s class probabilities for each of the 8 flipped/rotated
    copies of ``inputs`` (N, C, H, W), mapped back and averaged; returned as their logarithm
    (N, classes, H, W), i.e. logits whose softmax is the averaged probabilities (computed as a
    log-sum-exp of log-probabilities, so it stays finite where a probability underflows).
    Puts ``model`` in eval mode."""
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


def tta_logits(config: dict, build_model: Callable[[], nn.Module], inputs: Tensor) -> list[Tensor]:
    """One :func:`dihedral_tta_logits` tensor (on the CPU) per seed of a ``run_seeds`` result,
    each from that run's stored final weights loaded into ``build_model()`` on ``inputs``' device."""
    return run_logits(config, build_model, inputs, tta=True)


def run_logits(config: dict, build_model: Callable[[], nn.Module], inputs: Tensor, tta: bool,
               batchnorm: tuple[str | None, float] = (None, 0.0)) -> list[Tensor]:
    """One (N, classes, H, W) tensor (on the CPU) per seed of a ``run_seeds`` result: the logits of
    that run's stored final weights, loaded into ``build_model()`` on ``inputs``' device, for
    ``inputs``; with ``tta`` those of :func:`dihedral_tta_logits`; ``batchnorm`` = (scope, weight)
    of :func:`adapt_batchnorm` (the default: the training statistics)."""
    out = []
    for result in config["_results"]:
        model = build_model()
        model.load_state_dict(result.load_weights())
        model = adapt_batchnorm(model.to(inputs.device).eval(), *batchnorm, inputs=inputs)
        if tta:
            out.append(dihedral_tta_logits(model, inputs).cpu())
        else:
            with torch.no_grad():
                out.append(torch.cat([model(batch) for batch in inputs.split(64)]).cpu())
    return out


BATCHNORM_SCOPES = ("image", "set")


class ImageStatisticsBatchNorm(nn.Module):
    """A trained ``BatchNorm2d`` that normalises each image of its input (N, C, H, W) with a blend of
    that image's own per-channel statistics (over H, W) and the training ones::

        mean = (1 - weight) * running_mean + weight * mean(image)
        var  = (1 - weight) * running_var  + weight * var(image)

    then applies the layer's learnt scale and shift (as Schneider et al., 2020, "Improving robustness
    against common corruptions by covariate shift adaptation", blend them; ``weight`` 1: instance
    normalisation with the layer's affine parameters). Each output depends on its own image only."""

    def __init__(self, bn: nn.BatchNorm2d, weight: float) -> None:
        super().__init__()
        if not 0.0 < weight <= 1.0:
            raise ValueError(f"weight of the image's statistics must lie in (0, 1], got {weight!r}")
        self.bn, self.weight = bn, weight

    def forward(self, x: Tensor) -> Tensor:
        shape = (1, -1, 1, 1)
        mean = (1 - self.weight) * self.bn.running_mean.view(shape) + self.weight * x.mean(dim=(2, 3), keepdim=True)
        var = ((1 - self.weight) * self.bn.running_var.view(shape)
               + self.weight * x.var(dim=(2, 3), unbiased=False, keepdim=True))
        return (x - mean) * torch.rsqrt(var + self.bn.eps) * self.bn.weight.view(shape) + self.bn.bias.view(shape)

    def extra_repr(self) -> str:
        return f"weight={self.weight}"


def adapt_batchnorm(model: nn.Module, scope: str | None, weight: float = 1.0, *,
                    inputs: Tensor | None = None) -> nn.Module:
    """``model`` (trained, in eval mode) predicting with batch-norm statistics of the images it
    predicts instead of those of its training data, to follow a shift of the input distribution
    (here: staining):

    * ``scope`` None: ``model`` itself, unchanged (the training statistics);
    * "image": a copy whose every ``BatchNorm2d`` is an :class:`ImageStatisticsBatchNorm` with
      ``weight`` (each image normalised with its own statistics, blended with the training ones);
    * "set": a copy whose ``BatchNorm2d`` running statistics are those of ``inputs`` (N, C, H, W), the
      whole set predicted, replacing the training ones (``weight`` must be 1): AdaBN (Li et al., 2016),
      one forward pass of all of ``inputs`` as a single batch (only the batch-norm layers in training
      mode), so each layer's statistics are those of its input as the adapted layers before it
      produce it (the variance with N*H*W in the denominator, as batch norm normalises in training).
      A prediction then depends on the other images of the set; predicting with
      :func:`dihedral_tta_logits` afterwards uses these statistics, of ``inputs`` as given, for
      every flipped and rotated copy.
    """
    if scope is None:
        return model
    if scope not in BATCHNORM_SCOPES:
        raise ValueError(f"unknown batch-norm scope {scope!r}; choose None or one of {BATCHNORM_SCOPES}")
    norms = [name for name, m in model.named_modules() if isinstance(m, nn.BatchNorm2d)]
    if not norms:
        raise ValueError(f"{type(model).__name__} has no BatchNorm2d layer to adapt")
    model = copy.deepcopy(model).eval()
    if scope == "image":
        for name in norms:
            model.set_submodule(name, ImageStatisticsBatchNorm(model.get_submodule(name), weight))
        return model
    if weight != 1.0:
        raise ValueError(f"set statistics replace the training ones: weight must be 1, got {weight!r}")
    if inputs is None or inputs.dim() != 4:
        raise ValueError(f"set statistics need the inputs (N, C, H, W), got "
                         f"{None if inputs is None else tuple(inputs.shape)}")
    counts, hooks = {}, []
    for name in norms:
        bn = model.get_submodule(name)
        bn.reset_running_stats()
        bn.momentum = 1.0  # the running statistics become this batch's
        bn.train()  # only the batch-norm layers: dropout, if any, stays off
        hooks.append(bn.register_forward_hook(
            lambda m, args, out, name=name: counts.__setitem__(name, args[0].numel() // args[0].shape[1])))
    with torch.no_grad():
        model(inputs)
        for name in norms:  # PyTorch keeps the unbiased variance; normalise as in the pass: the biased one
            model.get_submodule(name).running_var.mul_((counts[name] - 1) / counts[name])
    for hook in hooks:
        hook.remove()
    return model.eval()


def foreground_masks(logits: Tensor, threshold: float = 0.5, fill_holes: bool = False) -> Tensor:
    """(N, 2, H, W) logits -> (N, H, W) boolean gland masks on the CPU: the pixels whose softmax
    probability of the gland class (1) exceeds ``threshold`` (0.5: the arg-max class, as
    ``common.metrics.dice_per_sample`` predicts). With ``fill_holes``, background regions that
    gland encloses completely (not touching the image border; 4-connected) become gland as well
    (``scipy.ndimage.binary_fill_holes``): the ground truth's glands include their lumen."""
    if logits.dim() != 4 or logits.shape[1] != 2:
        raise ValueError(f"expected logits of shape (N, 2, H, W), got {tuple(logits.shape)}")
    if not 0.0 < threshold < 1.0:
        raise ValueError(f"threshold must lie strictly between 0 and 1, got {threshold!r}")
    logits = logits.detach().cpu().double()
    # p(gland) > t  <=>  logit difference > log(t / (1 - t)); exactly the arg-max at t = 0.5
    masks = logits[:, 1] - logits[:, 0] > math.log(threshold / (1.0 - threshold))
    if fill_holes:
        masks = torch.from_numpy(np.stack([ndimage.binary_fill_holes(m) for m in masks.numpy()]))
    return masks


def mean_dice(masks: list[Tensor], targets: Tensor) -> list[float]:
    """Per seed, the mean Dice over the images of its predicted gland ``masks`` ((N, H, W) each)."""
    return [float(dice_coefficient(m, targets.cpu() == 1).mean()) for m in masks]


def tta_scores(config: dict, build_model: Callable[[], nn.Module], inputs: Tensor, targets: Tensor) -> list[float]:
    """Per seed of a ``run_seeds`` result: the mean Dice over ``inputs`` of its :func:`tta_logits`."""
    return mean_dice([foreground_masks(lg) for lg in tta_logits(config, build_model, inputs)], targets)


TTA_EVALUATION = f"test-time augmentation: mean probability over the {len(DIHEDRAL)} flips/rotations of each image"


def predicted_config(config: dict, logits: list[Tensor], masks: list[Tensor], test_targets: Tensor, name: str,
                     evaluation: str) -> dict:
    """A copy of ``config`` (a ``run_seeds`` result) named ``name`` whose runs' test scores come
    from another prediction of the same trained runs: per seed, the loss of ``logits`` and the
    Dice of ``masks`` (how they were made: ``evaluation``); training curves and validation scores
    stay those of the runs."""
    targets = test_targets.cpu()
    out = copy.deepcopy({k: v for k, v in config.items() if not k.startswith("_")})
    out["name"] = name
    for run, lg, m in zip(out["runs"], logits, masks, strict=True):
        run["test"] = {"loss": F.cross_entropy(lg, targets).item(),
                       "dice": dice_coefficient(m, targets == 1).mean().item(), "n": len(targets),
                       "evaluation": evaluation}
    out["summary"]["test_dice"] = summarize([run["test"]["dice"] for run in out["runs"]])
    return out
