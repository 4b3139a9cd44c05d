"""Figures for the report: saved as vector PDF (LaTeX) and PNG (README), never shown."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

plt.rcParams.update({
    "figure.figsize": (6.4, 2.8), "font.size": 8, "axes.titlesize": 9, "axes.labelsize": 8,
    "legend.fontsize": 7, "xtick.labelsize": 7, "ytick.labelsize": 7, "lines.linewidth": 1.2,
    "axes.grid": True, "grid.alpha": 0.3, "savefig.bbox": "tight", "savefig.dpi": 150,
})
COLORS = plt.rcParams["axes.prop_cycle"].by_key()["color"]


def save_figure(fig: plt.Figure, figures_dir: Path, name: str) -> list[Path]:
    """Save ``fig`` as ``<name>.pdf`` and ``<name>.png`` (no timestamps, so reruns are identical)."""
    figures_dir.mkdir(parents=True, exist_ok=True)
    paths = [figures_dir / f"{name}.pdf", figures_dir / f"{name}.png"]
    fig.savefig(paths[0], metadata={"CreationDate": None})
    fig.savefig(paths[1], metadata={"Software": None})
    plt.close(fig)
    return paths


def moving_average(values: np.ndarray, window: int) -> np.ndarray:
    """Trailing mean over ``window`` values (shorter at the start)."""
    window = max(1, min(window, len(values)))
    cumsum = np.cumsum(np.insert(np.asarray(values, dtype=float), 0, 0.0))
    out = np.empty(len(values))
    out[window - 1:] = (cumsum[window:] - cumsum[:-window]) / window
    out[:window - 1] = cumsum[1:window] / np.arange(1, window)
    return out


def _epoch_array(runs: list[dict], key: str) -> np.ndarray:
    return np.array([[e[key] for e in r["history"]["epochs"]] for r in runs])


def _x_values(runs: list[dict], x: str) -> tuple[np.ndarray, np.ndarray, str]:
    """x at the end of each epoch and at each iteration, in epochs or in training seconds."""
    num_epochs = len(runs[0]["history"]["epochs"])
    iters = len(runs[0]["history"]["iter_loss"])
    if x == "epoch":
        return np.arange(1, num_epochs + 1), np.arange(1, iters + 1) * num_epochs / iters, "epoch"
    if x == "time":
        seconds = np.cumsum(_epoch_array(runs, "train_time_s").mean(axis=0))
        per_iter = np.repeat(np.diff(np.insert(seconds, 0, 0.0)) / (iters / num_epochs), iters // num_epochs)
        return seconds, np.cumsum(per_iter), "training time (s)"
    raise ValueError(f"x must be 'epoch' or 'time', got {x!r}")


def _score_curves(ax: plt.Axes, runs: list[dict], x_epoch: np.ndarray, color, style: str = "-",
                  label: str | None = None) -> None:
    """Per-epoch scores of ``runs`` (one configuration's seeds): the training-subset score (mean,
    dashed; where recorded), then the validation score (mean, ``style``) with its range over seeds
    shaded."""
    if "train_eval_score" in runs[0]["history"]["epochs"][0]:
        ax.plot(x_epoch, _epoch_array(runs, "train_eval_score").mean(axis=0), "--", color=color, linewidth=0.8)
    val_score = _epoch_array(runs, "val_score")
    ax.plot(x_epoch, val_score.mean(axis=0), style, color=color, label=label)
    if len(runs) > 1:
        ax.fill_between(x_epoch, val_score.min(axis=0), val_score.max(axis=0), color=color, alpha=0.2)


def plot_training_curves(configs: list[dict], figures_dir: Path, name: str, *, title: str = "",
                         x: str = "epoch", score_label: str | None = None, loss_legend: bool = True,
                         score_legend: bool = True, figsize: tuple[float, float] | None = None) -> list[Path]:
    """Loss (left) and score (right) of each configuration, averaged over its seeds.

    A configuration may carry ``"label"``, ``"color"`` and ``"linestyle"`` (of its training-loss
    and validation-score lines), e.g. to show two configurations drawn on top of each other.
    ``loss_legend=False`` leaves out the loss panel's legend (many configurations);
    ``score_legend=False`` the score panel's (where it would cover curves; the loss panel's
    legend then names the colours).

    Left: per-iteration training loss (mean over seeds), smoothed over a fifth of an epoch, and
    per-epoch loss on the training subset (circles) and the validation set (squares); the log
    axis is cut below the smallest smoothed or per-epoch value. Right: per-epoch validation score
    (solid) and training-subset score (dashed), with the range over seeds shaded. Colours name
    the configurations in the right panel's legend (left panel too with ``loss_legend``).
    """
    fig, (ax_loss, ax_score) = plt.subplots(1, 2, figsize=figsize)
    lowest: list[float] = []
    for k, config in enumerate(configs):
        runs, label = config["runs"], config.get("label", config["name"])
        color, style = config.get("color", COLORS[k % len(COLORS)]), config.get("linestyle", "-")
        x_epoch, x_iter, x_label = _x_values(runs, x)
        min_len = min(len(r["history"]["iter_loss"]) for r in runs)
        iter_loss = np.array([r["history"]["iter_loss"][:min_len] for r in runs]).mean(axis=0)
        x_iter = x_iter[:min_len]
        per_epoch = max(1, min_len // len(x_epoch))
        smoothed = moving_average(iter_loss, max(1, per_epoch // 5))
        ax_loss.plot(x_iter, smoothed, style, color=color, linewidth=0.9, alpha=0.8, label=label)
        val_loss = _epoch_array(runs, "val_loss").mean(axis=0)
        ax_loss.plot(x_epoch, val_loss, "s-", color=color, markersize=3, linewidth=0.8)
        lowest.extend([float(np.min(smoothed)), float(np.min(val_loss))])
        if "train_eval_loss" in runs[0]["history"]["epochs"][0]:
            train_loss = _epoch_array(runs, "train_eval_loss").mean(axis=0)
            ax_loss.plot(x_epoch, train_loss, "o--", color=color, markersize=2.5, linewidth=0.6)
            lowest.append(float(np.min(train_loss)))
        _score_curves(ax_score, runs, x_epoch, color, style, label)
    score_label = score_label or configs[0].get("score_name", "score")
    ax_loss.set(xlabel=x_label, ylabel="cross-entropy loss", yscale="log",
                title="loss: train per iteration (line), per epoch:\ntrain (circles), validation (squares)")
    positive = [v for v in lowest if v > 0]
    if positive:
        ax_loss.set_ylim(bottom=0.7 * min(positive))
    ax_score.set(xlabel=x_label, ylabel=score_label, title=f"{score_label}: validation (solid), train (dashed)")
    if loss_legend and len(configs) > 1:
        ax_loss.legend(loc="upper right")
    if score_legend and len(configs) > 1:
        ax_score.legend(loc="lower right")
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return save_figure(fig, figures_dir, name)


def plot_against_baseline(configs: list[dict], figures_dir: Path, name: str, *, title: str = "",
                          ncols: int = 3, bottom: float | None = None) -> list[Path]:
    """One panel per configuration after the first, each drawn against the first (the baseline).

    Many configurations overlaid in one panel hide one another; here each panel shows the per-epoch
    validation score (solid, range over seeds shaded) and training-subset score (dashed, where
    recorded) of one configuration in colour, with the baseline's in grey. All panels share their
    axes; ``bottom`` cuts the score axis (e.g. to show the last percent of an accuracy).
    """
    baseline, variants = configs[0], configs[1:]
    if not variants:
        raise ValueError(f"plot_against_baseline needs a baseline and at least one more configuration, got {len(configs)}")
    nrows = -(-len(variants) // ncols)
    fig, axes = plt.subplots(nrows, ncols, sharex=True, sharey=True, squeeze=False,
                             figsize=(2.4 * ncols, 1.9 * nrows + 0.4))

    def draw(ax: plt.Axes, config: dict, color) -> None:
        _score_curves(ax, config["runs"], _x_values(config["runs"], "epoch")[0], color)

    score_label = baseline.get("score_name", "score")
    for k, (ax, config) in enumerate(zip(axes.flat, variants), start=1):  # colours as in plot_bars of all configs
        draw(ax, baseline, "0.55")
        draw(ax, config, config.get("color", COLORS[k % len(COLORS)]))
        ax.set_title(config.get("label", config["name"]))
    for ax in axes.flat[len(variants):]:
        ax.set_visible(False)
    for ax in axes[-1]:
        ax.set_xlabel("epoch")
        ax.xaxis.set_tick_params(labelbottom=True)
    for ax in axes[:, 0]:
        ax.set_ylabel(score_label)
    if bottom is not None:
        axes[0, 0].set_ylim(bottom=bottom)
    fig.suptitle((f"{title}\n" if title else "") + f"{score_label}: validation (solid, range over seeds shaded), "
                 f"train (dashed); grey: {baseline.get('label', baseline['name'])}", fontsize=9)
    fig.tight_layout()
    return save_figure(fig, figures_dir, name)


def plot_bars(values: dict[str, dict], figures_dir: Path, name: str, *, ylabel: str, title: str = "",
              scale: float = 1.0, annotate: str = "{:.3g}", ylim: tuple[float, float] | None = None,
              reference: float | None = None) -> list[Path]:
    """One bar per entry of ``values`` (label -> ``common.metrics.summarize`` dict): the mean,
    with the min-max range over seeds as error bar and the mean written above the error bar.
    ``reference`` draws a horizontal line (e.g. a target accuracy); ``ylim`` is widened where
    needed to show every bar and its value label."""
    labels = list(values)
    means = np.array([values[k]["mean"] for k in labels]) * scale
    low = means - np.array([values[k].get("min", values[k]["mean"]) for k in labels]) * scale
    high = np.array([values[k].get("max", values[k]["mean"]) for k in labels]) * scale - means
    fig, ax = plt.subplots(figsize=(max(3.0, 0.75 * len(labels) + 1.0), 2.8))
    positions = np.arange(len(labels))
    ax.bar(positions, means, yerr=[low, high], color=[COLORS[k % len(COLORS)] for k in range(len(labels))],
           capsize=3, alpha=0.85)
    tops = means + high  # the labels sit above the error bars, not on them
    for pos, top, mean in zip(positions, tops, means):
        ax.annotate(annotate.format(mean), (pos, top), textcoords="offset points", xytext=(0, 2),
                    ha="center", va="bottom", fontsize=6)
    if reference is not None:
        ax.axhline(reference * scale, color="black", linewidth=0.8, linestyle=":")
    ax.set_xticks(positions, labels, rotation=30, ha="right")
    ax.set(ylabel=ylabel, title=title)
    if ylim is not None:  # widened where a bar would fall outside it
        bottom, top = min(ylim[0], float((means - low).min()) - 0.05 * (ylim[1] - ylim[0])), ylim[1]
    else:
        bottom, top = ax.get_ylim()
    ax.set_ylim(bottom, max(top, label_room(float(tops.max()), bottom)))
    ax.grid(axis="x", visible=False)
    fig.tight_layout()
    return save_figure(fig, figures_dir, name)


def label_room(highest: float, bottom: float, fraction: float = 0.1) -> float:
    """An axis top that leaves room for a value label (about 8 points at the figure sizes used
    here) above ``highest``: ``highest`` plus ``fraction`` of the axis span."""
    return highest + fraction / (1 - fraction) * (highest - bottom)


def plot_confusion_matrix(cm: np.ndarray, figures_dir: Path, name: str, *, title: str = "",
                          class_names: list[str] | None = None) -> list[Path]:
    """Counts of true class (rows) against predicted class (columns); the diagonal is shown
    in grey so that the (few) errors stand out in colour."""
    cm = np.asarray(cm)
    n = len(cm)
    class_names = class_names or [str(k) for k in range(n)]
    off = cm.astype(float).copy()
    np.fill_diagonal(off, np.nan)
    off[off == 0] = np.nan  # no errors: left white
    fig, ax = plt.subplots(figsize=(3.6, 3.3))
    ax.imshow(np.where(np.eye(n, dtype=bool), 1.0, np.nan), cmap="Greys", vmin=0, vmax=6)
    image = ax.imshow(off, cmap="Reds", vmin=0, vmax=max(1.0, np.nanmax(off, initial=0.0)))
    for i in range(n):
        for j in range(n):
            if cm[i, j]:
                ax.text(j, i, str(cm[i, j]), ha="center", va="center", fontsize=5.5 if i == j else 6.5,
                        color="black")
    ax.set_xticks(range(n), class_names)
    ax.set_yticks(range(n), class_names)
    ax.set(xlabel="predicted class", ylabel="true class", title=title)
    ax.grid(False)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="errors")
    fig.tight_layout()
    return save_figure(fig, figures_dir, name)


def plot_image_grid(images: np.ndarray, captions: list[str], figures_dir: Path, name: str, *,
                    title: str = "", columns: int = 10) -> list[Path]:
    """Grey-scale images (N, H, W) in a grid, each with its caption above it."""
    n = len(images)
    rows = max(1, -(-n // columns))
    fig, axes = plt.subplots(rows, columns, figsize=(0.75 * columns, 0.9 * rows + (0.3 if title else 0)),
                             squeeze=False)
    for k, ax in enumerate(axes.flat):
        ax.axis("off")
        if k < n:
            ax.imshow(images[k], cmap="gray_r")
            ax.set_title(captions[k], fontsize=5.5, pad=2)
    if title:
        fig.suptitle(title, fontsize=8)
    fig.tight_layout(pad=0.3)
    return save_figure(fig, figures_dir, name)
