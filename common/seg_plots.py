"""Figures for the segmentation exercises (Part 2): per-image Dice distributions and test cases
shown as image / ground truth / prediction / error map. Saved with ``plotting.save_figure``."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from .plotting import COLORS, plt, save_figure

ERROR_COLORS = {"true positive": (0.85, 0.85, 0.85), "false positive": (0.90, 0.25, 0.20),
                "false negative": (0.20, 0.45, 0.90), "true negative": (0.0, 0.0, 0.0)}


def error_map(pred: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """(H, W) binary prediction and ground truth -> (H, W, 3) RGB: TP grey, FP red, FN blue, TN black."""
    pred, truth = np.asarray(pred, bool), np.asarray(truth, bool)
    out = np.zeros((*pred.shape, 3))
    for key, sel in (("true positive", pred & truth), ("false positive", pred & ~truth),
                     ("false negative", ~pred & truth)):
        out[sel] = ERROR_COLORS[key]
    return out


def plot_dice_distribution(per_image: np.ndarray, figures_dir: Path, name: str, *, title: str = "",
                           highlight: dict[str, int] | None = None, labels: Sequence[str] | None = None,
                           reference: float | dict[str, float] | None = None) -> list[Path]:
    """Per-image test Dice of one or several configurations.

    ``per_image``: (seeds, images) for one configuration, or (configs, seeds, images) with
    ``labels``. Left: histogram of the per-image Dice, averaged over seeds. Right: images sorted by
    that mean, with the min-max range over seeds; ``highlight`` ({label: image index}) marks
    cases such as the worst one; ``reference`` draws a labelled horizontal line (e.g. the target):
    a value (labelled "target <value>") or ``{label: value}`` for several lines.
    """
    data = np.asarray(per_image, dtype=float)
    if data.ndim == 2:
        data = data[None]
    labels = list(labels) if labels is not None else [None] * len(data)
    fig, (ax_hist, ax_sorted) = plt.subplots(1, 2, figsize=(6.4, 2.6), gridspec_kw={"width_ratios": [1, 1.6]})
    bins = np.linspace(min(0.0, data.min()), 1.0, 21)
    for k, (config, label) in enumerate(zip(data, labels)):
        color = COLORS[k % len(COLORS)]
        mean = config.mean(axis=0)
        suffix = f" (mean {mean.mean():.3f})"
        ax_hist.hist(mean, bins=bins, color=color, alpha=0.6 if len(data) > 1 else 0.85,
                     label=(label or "per-image Dice") + suffix)
        order = np.argsort(mean)
        ranks = np.arange(1, len(order) + 1)
        ax_sorted.fill_between(ranks, config.min(axis=0)[order], config.max(axis=0)[order], color=color, alpha=0.2,
                               step="mid")
        ax_sorted.plot(ranks, mean[order], ".-", color=color, markersize=3, linewidth=0.8, label=label)
        if k == 0 and highlight:
            for text, idx in highlight.items():
                rank = int(np.where(order == idx)[0][0]) + 1
                ax_sorted.annotate(text, (rank, mean[idx]), xytext=(12, -4), textcoords="offset points",
                                   fontsize=6, arrowprops={"arrowstyle": "->", "linewidth": 0.6})
    references = {} if reference is None else reference if isinstance(reference, dict) else {
        f"target {reference:g}": reference}
    for k, (text, level) in enumerate(references.items()):
        ax_sorted.axhline(level, color="black" if k == 0 else "0.45", linestyle=(":", "--", "-.")[k % 3],
                          linewidth=0.8, label=text)
    ax_hist.set(xlabel="test Dice (mean over seeds)", ylabel="images", title="distribution over test images")
    ax_hist.legend(loc="upper left")
    ax_sorted.set(xlabel="test image, sorted by Dice", ylabel="Dice", title="per image: mean and range over seeds")
    if any(labels) or references:
        ax_sorted.legend(loc="lower right")
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return save_figure(fig, figures_dir, name)


def case_label(what: str, name: str, dice: Sequence[float], seed: int) -> str:
    """Row label for :func:`plot_cases` when the prediction shown is the first seed's (``seed``):
    that prediction's own Dice (``dice[0]``; ``dice``: the image's Dice per seed, first seed
    first), then the mean over the seeds, e.g. "worst: Test/image_16.png / seed 0: Dice 0.455 /
    (mean of 3 seeds 0.565)"."""
    dice = np.asarray(dice, float)
    return f"{what}: {name}\nseed {seed}: Dice {dice[0]:.3f}\n(mean of {len(dice)} seeds {dice.mean():.3f})"


def plot_cases(rows: list[dict], figures_dir: Path, name: str, *, title: str = "") -> list[Path]:
    """One row per case: image, ground truth, prediction, error map.

    Each row is a dict with ``image`` (H, W, 3) floats in [0, 1] for display, ``truth`` and
    ``pred`` (H, W) binary, and ``label`` (row title, e.g. "worst: Test/image_07.png, Dice 0.41").
    """
    fig, axes = plt.subplots(len(rows), 4, figsize=(6.4, 1.75 * len(rows) + 0.4), squeeze=False)
    for ax_row, row in zip(axes, rows):
        panels = [(row["image"], "image (red, green stains)"), (row["truth"], "ground truth"),
                  (row["pred"], "prediction"), (error_map(row["pred"], row["truth"]), "errors")]
        for ax, (picture, caption) in zip(ax_row, panels):
            ax.imshow(picture, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            ax.grid(False)
            ax.set_title(caption, fontsize=7)
        ax_row[0].set_ylabel(row["label"], fontsize=6.5)
    handles = [plt.Rectangle((0, 0), 1, 1, color=c) for k, c in ERROR_COLORS.items() if k != "true negative"]
    fig.legend(handles, [k for k in ERROR_COLORS if k != "true negative"], loc="lower center", ncol=3, fontsize=7,
               frameon=False)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    return save_figure(fig, figures_dir, name)
