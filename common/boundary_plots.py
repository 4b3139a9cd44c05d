"""Figures for boundary accuracy (Ex 2.3) and for comparing configurations on several metrics
(Ex 2.3-2.5). Saved with ``plotting.save_figure``; the metrics themselves are in
``common.boundary``.

The boundary error map of a prediction shows, on the darkened image, each predicted boundary pixel
coloured by its distance to the true boundary (near = yellow, far = dark red, clipped at
``max_dist`` pixels) and each true boundary pixel that no predicted boundary pixel comes within
``tolerance`` of (a *missed* boundary) in cyan: the two kinds of boundary error, false and missed
boundary, that boundary precision and recall (and so boundary F1) count.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from .boundary import boundary_map
from .plotting import COLORS, label_room, plt, save_figure

MISSED_COLOR = (0.0, 0.9, 0.9)
TRUTH_COLOR = (1.0, 1.0, 1.0)
DISTANCE_CMAP = "autumn_r"  # yellow (on the true boundary) -> red (far from it)
# Predicted boundaries over the image, one colour per configuration: none of them is a colour of
# DISTANCE_CMAP (the yellow-orange-red of the error maps), MISSED_COLOR or TRUTH_COLOR
BOUNDARY_COLORS = ((0.12, 0.47, 0.71), (1.0, 0.25, 1.0), (0.55, 0.45, 1.0), (0.45, 1.0, 0.45))


def boundary_distances(pred: np.ndarray, truth: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Boundary pixels of ``pred`` and ``truth`` ((H, W) binary) and their distances to the other
    boundary: ``(pred_pixels (P, 2), pred_to_truth (P,), truth_pixels (T, 2), truth_to_pred (T,))``
    (row, column) coordinates; distances are inf where the other boundary is empty."""
    p = boundary_map(torch.as_tensor(np.asarray(pred, bool))).nonzero().float()
    t = boundary_map(torch.as_tensor(np.asarray(truth, bool))).nonzero().float()
    if len(p) and len(t):
        d = torch.cdist(p, t)
        p_to_t, t_to_p = d.min(dim=1).values, d.min(dim=0).values
    else:
        p_to_t, t_to_p = torch.full((len(p),), np.inf), torch.full((len(t),), np.inf)
    return p.long().numpy(), p_to_t.numpy(), t.long().numpy(), t_to_p.numpy()


def boundary_error_image(image: np.ndarray, pred: np.ndarray, truth: np.ndarray, *, tolerance: float = 2.0,
                         max_dist: float = 10.0, dim: float = 0.35) -> np.ndarray:
    """(H, W, 3) RGB boundary error map (see the module doc) over ``image`` darkened by ``dim``."""
    out = np.asarray(image, float).copy() * dim
    p, p_to_t, t, t_to_p = boundary_distances(pred, truth)
    out[t[:, 0], t[:, 1]] = np.array(TRUTH_COLOR) * 0.5  # the true boundary, faint
    missed = t[t_to_p > tolerance]
    out[missed[:, 0], missed[:, 1]] = MISSED_COLOR
    colors = plt.get_cmap(DISTANCE_CMAP)(np.clip(np.nan_to_num(p_to_t, posinf=max_dist) / max_dist, 0, 1))[:, :3]
    out[p[:, 0], p[:, 1]] = colors
    return out


def boundary_overlay(image: np.ndarray, truth: np.ndarray, preds: Sequence[np.ndarray],
                     colors: Sequence[tuple]) -> np.ndarray:
    """(H, W, 3) image with the true boundary in white and each prediction's boundary in its colour
    (later predictions drawn over earlier ones; the true boundary drawn last)."""
    out = np.asarray(image, float).copy() * 0.6
    for pred, color in zip(preds, colors):
        out[boundary_map(torch.as_tensor(np.asarray(pred, bool))).numpy()] = color
    out[boundary_map(torch.as_tensor(np.asarray(truth, bool))).numpy()] = TRUTH_COLOR
    return out


def plot_boundary_cases(rows: list[dict], labels: Sequence[str], figures_dir: Path, name: str, *,
                        tolerance: float = 2.0, max_dist: float = 10.0, title: str = "") -> list[Path]:
    """One row per test image: the image with the true and every predicted boundary, then one
    boundary error map per configuration.

    Each row is a dict with ``image`` (H, W, 3) in [0, 1], ``truth`` (H, W) binary, ``preds`` (one
    (H, W) binary mask per label, same order as ``labels``), ``label`` (row title) and optionally
    ``captions`` (one short text per prediction, e.g. its boundary F1).
    """
    colors = [BOUNDARY_COLORS[k % len(BOUNDARY_COLORS)] for k in range(len(labels))]
    ncols = 1 + len(labels)
    fig, axes = plt.subplots(len(rows), ncols, figsize=(1.9 * ncols, 1.9 * len(rows) + 0.6), squeeze=False)
    for ax_row, row in zip(axes, rows):
        panels = [(boundary_overlay(row["image"], row["truth"], row["preds"], colors), "boundaries")]
        captions = row.get("captions", [""] * len(labels))
        for label, pred, caption in zip(labels, row["preds"], captions):
            panels.append((boundary_error_image(row["image"], pred, row["truth"], tolerance=tolerance,
                                                max_dist=max_dist), f"{label}\n{caption}".strip()))
        for ax, (picture, caption) in zip(ax_row, panels):
            ax.imshow(picture, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            ax.grid(False)
            ax.set_title(caption, fontsize=6.5)
        ax_row[0].set_ylabel(row["label"], fontsize=6.5)
    handles = [plt.Line2D([], [], color=TRUTH_COLOR, marker="s", linestyle="", markeredgecolor="black",
                          label="true boundary")]
    handles += [plt.Line2D([], [], color=c, marker="s", linestyle="", label=f"{label} boundary")
                for label, c in zip(labels, colors)]
    handles += [plt.Line2D([], [], color=MISSED_COLOR, marker="s", linestyle="",
                           label=f"error map: true boundary missed by > {tolerance:g} px")]
    fig.legend(handles=handles, loc="lower center", ncol=2, fontsize=6.5, frameon=False)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.subplots_adjust(bottom=0.08 + 0.025 * len(labels), top=0.88 if title else 0.93, wspace=0.05,
                        hspace=0.45, left=0.06, right=0.84)
    mappable = plt.cm.ScalarMappable(norm=plt.Normalize(0, max_dist), cmap=DISTANCE_CMAP)
    bar = fig.colorbar(mappable, cax=fig.add_axes((0.87, 0.3, 0.015, 0.45)))
    bar.set_label(f"error map: predicted boundary pixel's distance\nto the true boundary (px, clipped at {max_dist:g})",
                  fontsize=6.5)
    return save_figure(fig, figures_dir, name)


def value_format(values: Sequence[float]) -> str:
    """One format for every value label of a panel, from the panel's largest magnitude: three
    decimals up to 1 (Dice, F1), two up to 10, one up to 100, none above."""
    largest = max((abs(v) for v in values if np.isfinite(v)), default=0.0)
    decimals = 3 if largest <= 1 else 2 if largest < 10 else 1 if largest < 100 else 0
    return f"{{:.{decimals}f}}"


def plot_metric_comparison(values: dict[str, dict[str, Sequence[float]]], figures_dir: Path, name: str, *,
                           metric_labels: dict[str, str] | None = None, lower_is_better: Sequence[str] = (),
                           unit_interval: Sequence[str] | None = None, title: str = "") -> list[Path]:
    """One panel per metric; per configuration a bar at the mean over seeds, the sample standard
    deviation as an error bar, and one dot per seed; the mean is written above both, in one format
    per panel (``value_format``).

    ``values``: ``{configuration label: {metric: per-seed values (e.g. the mean over test images)}}``;
    every configuration must have the same metrics. Non-finite values (e.g. a seed that never
    reached a threshold) are left out: a bar over fewer seeds than given says "n=k/N", and one
    over none says "never". ``lower_is_better`` metrics say so in their title. Every axis starts
    at 0; ``unit_interval`` metrics (scores such as Dice or F1; by default every metric whose
    values all lie in [0, 1] and that is not lower-is-better) end at 1, the others above the
    highest label.
    """
    labels = list(values)
    metrics = list(values[labels[0]])
    metric_labels = metric_labels or {}
    if len(labels) <= 4:  # one row of panels
        fig, axes = plt.subplots(1, len(metrics), figsize=(max(6.4, 1.7 * len(metrics)), 2.6), squeeze=False)
    else:  # many configurations: two columns of wider panels, so that their labels stay legible
        rows = -(-len(metrics) // 2)
        fig, axes = plt.subplots(rows, 2, figsize=(7.2, 3.0 * rows), squeeze=False)
        for ax in axes.flat[len(metrics):]:
            ax.set_visible(False)
    x = np.arange(len(labels))
    for ax, metric in zip(axes.flat, metrics):
        every = [np.asarray(values[label][metric], float) for label in labels]
        finite = [y for v in every for y in v[np.isfinite(v)]]
        unit = (metric in unit_interval if unit_interval is not None else
                metric not in lower_is_better and bool(finite) and 0 <= min(finite) and max(finite) <= 1)
        fmt = value_format(finite)
        tops = []  # data coordinate above which each label is drawn
        for k, (label, v) in enumerate(zip(labels, every)):
            given = len(v)
            v = v[np.isfinite(v)]
            color = COLORS[k % len(COLORS)]
            if len(v) == 0:
                ax.annotate(f"never (0/{given})", (k, 0), xytext=(0, 2), textcoords="offset points", ha="center",
                            va="bottom", fontsize=6, rotation=90)
                continue
            std = v.std(ddof=1) if len(v) > 1 else 0.0
            ax.bar(k, v.mean(), color=color, alpha=0.5, yerr=std, capsize=2, error_kw={"linewidth": 0.8})
            ax.plot(np.full(len(v), k) + np.linspace(-0.15, 0.15, len(v)), v, "o", color=color, markersize=2.5)
            top = max(v.mean() + std, v.max())
            tops.append(top)
            text = fmt.format(v.mean()) + (f"\nn={len(v)}/{given}" if len(v) < given else "")
            ax.annotate(text, (k, top), xytext=(0, 2.5), textcoords="offset points", ha="center", va="bottom",
                        fontsize=6, linespacing=1.0)
        two_lines = any(np.isfinite(v).sum() not in (0, len(v)) for v in every)
        highest = max(tops, default=1.0)
        room = label_room(highest, 0.0, 0.22 if two_lines else 0.13)
        ax.set_ylim(0.0, max(1.0, room) if unit else room)
        text = metric_labels.get(metric, metric)
        ax.set_title(text + ("\n(lower is better)" if metric in lower_is_better else ""), fontsize=7.5)
        ax.set_xticks(x)
        ax.set_xticklabels(labels, rotation=30, ha="right", fontsize=6.5)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return save_figure(fig, figures_dir, name)


def plot_paired_per_image(a: np.ndarray, b: np.ndarray, labels: tuple[str, str], metrics: Sequence[str],
                          figures_dir: Path, name: str, *, metric_labels: dict[str, str] | None = None,
                          title: str = "") -> list[Path]:
    """Per test image, metric of configuration ``b`` against configuration ``a`` (mean over seeds),
    one square panel per metric (two columns); points above the diagonal are images where ``b``
    scores higher.

    ``a``, ``b``: ``{metric: (images,) values}``."""
    metric_labels = metric_labels or {}
    ncols = min(2, len(metrics))
    nrows = -(-len(metrics) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(5.2, 2.75 * nrows), squeeze=False)
    for ax in axes.flat[len(metrics):]:
        ax.set_visible(False)
    for ax, metric in zip(axes.flat, metrics):
        x, y = np.asarray(a[metric], float), np.asarray(b[metric], float)
        lo, hi = min(x.min(), y.min()), max(x.max(), y.max())
        pad = 0.05 * (hi - lo) or 0.05
        ax.plot([lo - pad, hi + pad], [lo - pad, hi + pad], ":", color="black", linewidth=0.8)
        ax.plot(x, y, ".", color=COLORS[1], markersize=3.5)
        above = int((y > x).sum())
        ax.set_xlim(lo - pad, hi + pad)
        ax.set_ylim(lo - pad, hi + pad)
        ax.set_aspect("equal", adjustable="box")
        ax.set_xlabel(labels[0], fontsize=7)
        ax.set_ylabel(labels[1], fontsize=7)
        ax.set_title(f"{metric_labels.get(metric, metric)}: {labels[1]}\nhigher on {above} of {len(x)} images",
                     fontsize=7.5)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return save_figure(fig, figures_dir, name)
