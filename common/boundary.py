"""Boundary accuracy of binary segmentations: boundary F1 within a pixel tolerance and the
95th-percentile Hausdorff distance (HD95). Pure functions on (H, W) masks, per image.

Conventions
-----------
* The boundary of a mask is its foreground pixels with at least one 4-connected background
  neighbour. Pixels outside the image count as equal to the nearest edge pixel, so the image
  border itself is never a boundary (a gland cut by the field of view has no boundary there).
* Distances are Euclidean, in pixels, between boundary pixel centres.
* Boundary F1 at tolerance ``t``: precision = share of predicted boundary pixels within ``t`` of
  the true boundary, recall = share of true boundary pixels within ``t`` of the predicted one,
  F1 = 2PR / (P + R). Exactly one boundary empty: 0.0.
* HD95 = max(95th percentile of distances from predicted to true boundary, and vice versa).
  Exactly one boundary empty: the image diagonal, the largest possible distance.
* Both boundaries empty: each mask is all foreground or all background, and the masks decide:
  equal (both empty, or both the whole image) is perfect agreement, F1 1.0 and HD95 0.0; one
  empty and the other the whole image is complete disagreement, F1 0.0 and HD95 the diagonal.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor


def boundary_map(mask: Tensor) -> Tensor:
    """(H, W) binary mask -> (H, W) bool map of its inner boundary pixels."""
    if mask.dim() != 2:
        raise ValueError(f"expected an (H, W) mask, got shape {tuple(mask.shape)}")
    fg = mask.bool()
    padded = F.pad(fg[None, None].float(), (1, 1, 1, 1), mode="replicate")[0, 0].bool()
    all_neighbours_fg = padded[:-2, 1:-1] & padded[2:, 1:-1] & padded[1:-1, :-2] & padded[1:-1, 2:]
    return fg & ~all_neighbours_fg


def _boundary_distances(pred: Tensor, target: Tensor) -> tuple[Tensor, Tensor]:
    """Distances from each predicted boundary pixel to the true boundary, and vice versa."""
    p = boundary_map(pred).nonzero().float()
    t = boundary_map(target).nonzero().float()
    if len(p) == 0 or len(t) == 0:  # nothing to measure against: infinitely far
        return torch.full((len(p),), math.inf), torch.full((len(t),), math.inf)
    d = torch.cdist(p, t)
    return d.min(dim=1).values, d.min(dim=0).values


def _same_mask(pred: Tensor, target: Tensor) -> bool:
    """Whether two masks without boundary pixels (each all foreground or all background) agree."""
    return torch.equal(pred.bool(), target.bool())


def boundary_f1(pred: Tensor, target: Tensor, tolerance: float = 1.0) -> float:
    """Boundary F1 of two (H, W) binary masks at ``tolerance`` pixels (see module doc)."""
    pred_to_true, true_to_pred = _boundary_distances(pred, target)
    if len(pred_to_true) == 0 and len(true_to_pred) == 0:
        return 1.0 if _same_mask(pred, target) else 0.0
    if len(pred_to_true) == 0 or len(true_to_pred) == 0:
        return 0.0
    precision = (pred_to_true <= tolerance).float().mean().item()
    recall = (true_to_pred <= tolerance).float().mean().item()
    return 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)


def hd95(pred: Tensor, target: Tensor) -> float:
    """95th-percentile symmetric Hausdorff distance in pixels (see module doc)."""
    pred_to_true, true_to_pred = _boundary_distances(pred, target)
    if len(pred_to_true) == 0 and len(true_to_pred) == 0 and _same_mask(pred, target):
        return 0.0
    if len(pred_to_true) == 0 or len(true_to_pred) == 0:
        return math.hypot(*pred.shape)
    return max(torch.quantile(pred_to_true, 0.95).item(), torch.quantile(true_to_pred, 0.95).item())


def boundary_scores(preds: Tensor, targets: Tensor, tolerances: tuple[float, ...] = (1.0, 2.0)) -> dict[str, list[float]]:
    """Per-image boundary F1 at each tolerance and HD95 for (N, H, W) masks."""
    if preds.shape != targets.shape or preds.dim() != 3:
        raise ValueError(f"expected two (N, H, W) tensors of equal shape, got {tuple(preds.shape)} and {tuple(targets.shape)}")
    scores: dict[str, list[float]] = {f"boundary_f1_{t:g}px": [] for t in tolerances}
    scores["hd95"] = []
    for pred, target in zip(preds.cpu(), targets.cpu()):
        for t in tolerances:
            scores[f"boundary_f1_{t:g}px"].append(boundary_f1(pred, target, t))
        scores["hd95"].append(hd95(pred, target))
    return scores
