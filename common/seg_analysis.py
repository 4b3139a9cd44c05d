"""Per-image analysis of segmentation results: Dice per test image from the stored test logits,
simple image statistics, and a data-driven description of the worst test case."""
from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from .metrics import dice_per_sample


def per_image_dice(config: dict, test_targets: Tensor) -> np.ndarray:
    """(seeds, test images) Dice of a ``run_seeds`` result, from each run's stored test logits."""
    targets = test_targets.cpu()
    return np.stack([dice_per_sample(r.load_test_logits(), targets).numpy() for r in config["_results"]])


def test_predictions(config: dict, seed_index: int = 0) -> Tensor:
    """(N, H, W) 0/1 predicted class map of one seed's run on the test set."""
    return config["_results"][seed_index].load_test_logits().argmax(dim=1)


NO_TISSUE_LEVEL = 0.1  # a pixel shows no tissue (empty slide) where both stains are below this (of 255)


def image_statistics(inputs: Tensor, truth: Tensor, pred: Tensor, normalisation: dict | None = None
                     ) -> dict[str, np.ndarray]:
    """Per image: gland fraction of the ground truth and of the prediction, false positive and
    false negative pixel fractions, and the gland/background contrast: |mean inside - mean
    outside| / pooled within-class standard deviation (Cohen's d), averaged over the channels
    (nan where the ground truth has only one class). ``inputs`` (N, C, H, W), masks (N, H, W).
    With the data's ``normalisation`` also the fraction of pixels without tissue (both stains
    below ``NO_TISSUE_LEVEL`` of full scale) and the stain balance: the red stain's share of the
    two stains' mean intensity ("red_share")."""
    x = inputs.detach().float().cpu()
    t, p = truth.cpu().bool(), pred.cpu().bool()
    area = t[0].numel()
    stats = {
        "gland_fraction": t.flatten(1).float().mean(1).numpy(),
        "predicted_gland_fraction": p.flatten(1).float().mean(1).numpy(),
        "false_positive_fraction": (p & ~t).flatten(1).sum(1).numpy() / area,
        "false_negative_fraction": (~p & t).flatten(1).sum(1).numpy() / area,
    }
    contrast = np.full(len(x), np.nan)
    for i in range(len(x)):
        inside, outside = x[i][:, t[i]], x[i][:, ~t[i]]
        if inside.shape[1] > 1 and outside.shape[1] > 1:
            pooled = ((inside.var(1) + outside.var(1)) / 2).sqrt()
            contrast[i] = ((inside.mean(1) - outside.mean(1)).abs() / pooled).mean().item()
    stats["contrast"] = contrast
    if normalisation is not None:
        raw = display_images(inputs, normalisation)[..., :2]
        stats["no_tissue_fraction"] = (raw < NO_TISSUE_LEVEL).all(axis=-1).reshape(len(x), -1).mean(1)
        mean_stain = raw.reshape(len(x), -1, 2).mean(1)  # (N, 2): mean red, mean green
        stats["red_share"] = mean_stain[:, 0] / mean_stain.sum(1)
    return stats


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman rank correlation (ties broken by order; nans dropped)."""
    keep = ~(np.isnan(a) | np.isnan(b))
    ra, rb = np.argsort(np.argsort(a[keep])), np.argsort(np.argsort(b[keep]))
    return float(np.corrcoef(ra, rb)[0, 1])


MINOR_ERROR_FRACTION = 0.05  # below this share of wrong pixels a case has "few errors", whatever their kind


def describe_case(index: int, dice: np.ndarray, stats: dict[str, np.ndarray], names: list[str], *,
                  seeds: list[int] | None = None, stats_row: int = 0) -> dict:
    """Numbers and one paragraph saying how test image ``index`` differs from the others.

    ``dice``: (seeds, images) per-image Dice; ``stats``: :func:`image_statistics` of the
    predictions of run ``stats_row`` (seed ``seeds[stats_row]``), whose own Dice the text quotes
    beside the mean over the runs."""
    mean_dice = dice.mean(axis=0)
    shown = f"seed {seeds[stats_row]}" if seeds else f"run {stats_row + 1}"
    median = {k: float(np.nanmedian(v)) for k, v in stats.items()}
    own = {k: float(v[index]) for k, v in stats.items()}
    rank = {k: int((v < v[index]).sum()) + 1 for k, v in stats.items()}
    n = len(mean_dice)
    correlations = {k: spearman(mean_dice, stats[k]) for k in ("gland_fraction", "contrast", "red_share")
                    if k in stats}
    fp, fn = own["false_positive_fraction"], own["false_negative_fraction"]
    error_kind = ("few errors" if fp + fn < MINOR_ERROR_FRACTION else
                  "mostly false positives (over-segmentation)" if fp > 2 * fn else
                  "mostly false negatives (under-segmentation)" if fn > 2 * fp else
                  "false positives and false negatives alike")
    text = (
        f"{names[index]}: Dice {mean_dice[index]:.3f} (mean over {dice.shape[0]} seed(s); range "
        f"{dice[:, index].min():.3f}-{dice[:, index].max():.3f}) vs a median of {np.median(mean_dice):.3f} over the "
        f"{n} test images. Its ground truth covers {own['gland_fraction']:.1%} of the image (median "
        f"{median['gland_fraction']:.1%}, rank {rank['gland_fraction']} of {n} from smallest); {shown}'s prediction "
        f"(Dice {dice[stats_row, index]:.3f}) marks {own['predicted_gland_fraction']:.1%} as gland, {error_kind}: {fp:.1%} of the pixels false positive, "
        f"{fn:.1%} false negative. Gland/background contrast (Cohen's d, mean over both stains) "
        f"{own['contrast']:.2f} vs a median of {median['contrast']:.2f} (rank {rank['contrast']} of {n} from "
        f"lowest)."
        + (f" Empty slide (no tissue) covers {own['no_tissue_fraction']:.1%} of it (median "
           f"{median['no_tissue_fraction']:.1%}, rank {rank['no_tissue_fraction']} of {n} from smallest)."
           if "no_tissue_fraction" in own else "")
        + (f" Its stain balance (red share of the mean stain intensity) is {own['red_share']:.2f} vs a median of "
           f"{median['red_share']:.2f} (rank {rank['red_share']} of {n} from lowest)." if "red_share" in own else "")
        + f" Over all test images, Spearman correlation of Dice with gland fraction "
        f"{correlations['gland_fraction']:+.2f}, with contrast {correlations['contrast']:+.2f}"
        + (f" and with the red share {correlations['red_share']:+.2f}." if "red_share" in correlations else ".")
    )
    return {"index": index, "name": names[index], "dice_mean": float(mean_dice[index]),
            "dice_per_seed": dice[:, index].tolist(), "statistics_from": shown, "dice_shown": float(dice[stats_row, index]),
            "median_dice": float(np.median(mean_dice)),
            "stats": own, "median_stats": median, "ranks_from_lowest": rank,
            "spearman_dice_vs": correlations, "description": text}


def display_images(inputs: Tensor, normalisation: dict) -> np.ndarray:
    """Normalised (N, 2, H, W) inputs -> (N, H, W, 3) RGB in [0, 1] as the PNGs look (blue = 0)."""
    mean = torch.tensor(normalisation["mean"])[None, :, None, None]
    std = torch.tensor(normalisation["std"])[None, :, None, None]
    x = (inputs.detach().float().cpu() * std + mean).clamp(0, 1)
    return torch.cat([x, torch.zeros_like(x[:, :1])], dim=1).permute(0, 2, 3, 1).numpy()
