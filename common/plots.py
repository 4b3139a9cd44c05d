"""The report's figures, each saved as vector PDF (for LaTeX) and PNG (for the README), never shown.

Figures are drawn at about the width they print at (6.4 in, the report's text is 6.7 in wide), and no text
in them is smaller than 8.5 pt, so that it prints at 8 pt or more.
Colours carry meaning: a baseline or reference is grey, the configuration it is compared with has a
colour of its own, and the same configuration keeps its colour across a figure.
"""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib import patheffects, ticker  # noqa: E402

from . import timing  # noqa: E402

plt.rcParams.update({
    "figure.figsize": (6.4, 2.6), "font.size": 9, "axes.titlesize": 9, "axes.labelsize": 9, "legend.fontsize": 8.5,
    "xtick.labelsize": 8.5, "ytick.labelsize": 8.5, "lines.linewidth": 1.1, "axes.grid": True, "grid.alpha": 0.3,
    "savefig.bbox": "tight", "savefig.dpi": 150, "legend.frameon": False,
})
GREY = "0.55"
COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2"]
ERROR_COLORS = {"gland found": (0.80, 0.80, 0.80), "false gland": (0.90, 0.25, 0.20), "missed gland": (0.20, 0.45, 0.90)}


def save(fig: plt.Figure, path: Path) -> list[Path]:
    """``path``.pdf and ``path``.png, without time stamps (a rerun writes identical files)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    paths = [path.with_suffix(".pdf"), path.with_suffix(".png")]
    fig.savefig(paths[0], metadata={"CreationDate": None})
    fig.savefig(paths[1], metadata={"Software": None})
    plt.close(fig)
    return paths


def smooth(values: np.ndarray, window: int) -> np.ndarray:
    """Trailing mean over ``window`` values (fewer at the start)."""
    window = max(1, min(window, len(values)))
    cumsum = np.cumsum(np.insert(np.asarray(values, float), 0, 0.0))
    out = np.empty(len(values))
    out[window - 1:] = (cumsum[window:] - cumsum[:-window]) / window
    out[:window - 1] = cumsum[1:window] / np.arange(1, window)
    return out


def _style_handles() -> list:
    """Legend entries for the line styles every curve figure shares."""
    return [plt.Line2D([], [], color="black", linewidth=0.9, label="training"),
            plt.Line2D([], [], color="black", linestyle="--", linewidth=1.1, label="validation")]


def _as_markers(lines) -> None:
    """Draw ``lines`` as hollow circles, so that a curve lying on another stays visible."""
    for line in lines:
        line.set(linestyle="none", marker="o", markersize=4.5, markerfacecolor="none", markeredgewidth=1.0,
                 markevery=max(1, len(line.get_xdata()) // 12))


def _epoch_axis(ax) -> None:
    ax.xaxis.set_major_locator(ticker.MaxNLocator(nbins=5, integer=True))


def _epochs(runs, key: str) -> np.ndarray:
    """(seeds, epochs) of a per-epoch value."""
    return np.array([[e[key] for e in r["history"]["epochs"]] for r in runs["runs"]])


def _loss_lines(ax, runs, color, label: str | None, x: str = "epoch", validation: bool = True,
                width: float = 0.9) -> list[float]:
    """Training loss per iteration (mean over seeds, smoothed over a fifth of an epoch; solid) and
    validation loss per epoch (mean over seeds; dashed, circles on about ten epochs) against epochs or training seconds.
    A ``width`` above the usual draws the training line that wide and light, to show beneath another curve.
    Returns the values drawn, for the axis limits."""
    records = runs["runs"]
    n = min(len(r["history"]["iter_loss"]) for r in records)
    epochs = len(records[0]["history"]["epochs"])
    per_epoch = max(1, n // epochs)
    train = smooth(np.array([r["history"]["iter_loss"][:n] for r in records]).mean(0), max(1, per_epoch // 5))
    x_epoch = np.arange(1, epochs + 1, dtype=float)
    if x == "seconds":
        x_epoch = np.cumsum(_epochs(runs, "train_time_s").mean(0))
    x_iter = np.interp(np.arange(1, n + 1) / per_epoch, np.arange(0, epochs + 1), np.insert(x_epoch, 0, 0.0))
    ax.plot(x_iter, train, color=color, label=label, linewidth=width, alpha=0.5 if width > 0.9 else 1.0)
    drawn = list(train[len(train) // 20:])  # the axis leaves out the first steps' spikes
    if validation:
        val = _epochs(runs, "val_loss").mean(0)
        # open circles on about ten epochs (one on every epoch of a long run would fill the dashes in), on top: where
        # the two curves coincide the circles still show the validation curve
        ax.plot(x_epoch, val, "o--", color=color, markersize=3, markerfacecolor="white", linewidth=0.8,
                markevery=max(1, round(epochs / 10)), zorder=3)
        drawn += list(val[1:] if len(val) > 3 else val)
    return drawn


def _score_lines(ax, runs, color, label: str | None = None, training: bool = True) -> list[float]:
    """Training-subset score (mean over seeds; solid; with ``training``) and validation score (mean over seeds,
    dashed, its range over seeds shaded), as the loss: training solid, validation dashed. Returns the means drawn
    after the first epoch, for the axis limits."""
    val = _epochs(runs, "val_score")
    train = _epochs(runs, "train_eval_score").mean(0) if training else np.array([])
    x = np.arange(1, val.shape[1] + 1)
    marker = "o" if len(x) == 1 else None  # one epoch (--quick): a line of one point would not show
    if training:
        ax.plot(x, train, color=color, linewidth=0.9, label=label, marker=marker)
    ax.plot(x, val.mean(0), "--", color=color, linewidth=1.1, marker=marker, label=None if training else label)
    if len(val) > 1:  # the range over seeds: a light fill with its edges drawn, so that two ranges stay apart
        ax.fill_between(x, val.min(0), val.max(0), color=color, alpha=0.12, linewidth=0)
        for edge in (val.min(0), val.max(0)):
            ax.plot(x, edge, color=color, linewidth=0.5, alpha=0.7)
    return [*train[1:], *val.mean(0)[1:]] if len(x) > 1 else [*train, *val.mean(0)]


def _score_axis(ax, drawn: list[float], name: str) -> None:
    """The score axis over the mean curves drawn (a seed's dip may leave it); accuracy in %."""
    low, high = min(drawn), max(drawn)
    pad = max(0.1 * (high - low), 0.002)
    ax.set_ylim(low - pad, min(1.0, high + pad) if high < 1.0 else high + pad)
    _epoch_axis(ax)
    if name == "accuracy":
        ax.yaxis.set_major_formatter(ticker.FuncFormatter(lambda v, _: f"{100 * v:g}"))
        ax.set(xlabel="epoch", ylabel="accuracy (%)", title="accuracy")
    else:
        ax.set(xlabel="epoch", ylabel="Dice", title="Dice")


def _log_loss_axis(ax, drawn: list[float], xlabel: str) -> None:
    """A log loss axis over the values drawn, its ticks plain numbers (0.05, 0.1, 0.2), as many as
    the range allows without crowding. A lone spike (a validation loss far above the 99th percentile of
    the values drawn) leaves the axis, so that it does not squash the curves."""
    positive = [v for v in drawn if v > 0 and np.isfinite(v)]
    ax.set(yscale="log", xlabel=xlabel, ylabel="cross-entropy loss")
    if xlabel == "epoch":
        _epoch_axis(ax)
    if positive:
        # a spike: 5x above the values 99 % of the drawn points stay under (a lone validation epoch is far fewer
        # than 1 % of the points beside a per-iteration training curve)
        low, high = 0.7 * min(positive), 1.3 * min(max(positive), 5 * np.quantile(positive, 0.99))
        ax.set_ylim(low, high)
        subs = (1.0, 2.0, 5.0) if high / low > 8 else (1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0)
        ax.yaxis.set_major_locator(ticker.LogLocator(base=10, subs=subs))
        ax.yaxis.set_major_formatter(ticker.FuncFormatter(lambda v, _: f"{v:g}"))
        ax.yaxis.set_minor_formatter(ticker.NullFormatter())


def curves(configs: list, path: Path, *, against_time: bool = False, coinciding: bool = False) -> list[Path]:
    """Per configuration (mean over seeds): the loss against epochs (and, ``against_time``, against
    training seconds), and the validation and training-subset score, unless the validation images
    were trained on. ``coinciding``: the configurations after the first as circles on their lines, where the
    curves lie on one another."""
    held_out = all(r.get("validation_held_out", True) for c in configs for r in c["runs"])
    panels = 1 + against_time + held_out
    fig, axes = plt.subplots(1, panels, figsize=(6.4 if panels > 1 else 3.0, 2.4), squeeze=False)
    axes = list(axes[0])
    for x, ax in zip(("epoch", "seconds")[:1 + against_time], axes):
        drawn = []
        for k, c in enumerate(configs):
            lines_before = len(ax.lines)
            drawn += _loss_lines(ax, c, COLORS[k % len(COLORS)], c["label"], x, validation=held_out)
            if coinciding and k:
                _as_markers(ax.lines[lines_before:])
        _log_loss_axis(ax, drawn, "epoch" if x == "epoch" else "training time (s)")
    axes[0].set_title("loss" if held_out else "training loss")
    if held_out:
        drawn = []
        for k, c in enumerate(configs):
            lines_before = len(axes[-1].lines)
            drawn += _score_lines(axes[-1], c, COLORS[k % len(COLORS)], c["label"])
            if coinciding and k:
                _as_markers(axes[-1].lines[lines_before:lines_before + 2])
        _score_axis(axes[-1], drawn, configs[0]["score_name"])
    handles = axes[0].get_legend_handles_labels()[0] if len(configs) > 1 else []  # one configuration: the caption names it
    if held_out:
        handles += _style_handles()
    if handles:
        fig.legend(handles=handles, loc="lower center", ncol=len(handles))  # below the curves
    fig.tight_layout(rect=(0, 0.08 if handles else 0, 1, 1))
    return save(fig, path)


def variant_grid(configs: list, path: Path, ncols: int = 4) -> list[Path]:
    """One panel per configuration after the first (the baseline, grey in every panel): training loss
    per iteration (line) and validation loss per epoch (dashed), mean over seeds, against epochs. The caption says
    which line is which: a title or legend would take a row of the page."""
    baseline, variants = configs[0], configs[1:]
    ncols = min(ncols, len(variants))
    nrows = -(-len(variants) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(6.4, 1.7 * nrows + 0.15), sharex=True, sharey=True, squeeze=False)
    drawn = []
    for k, (ax, c) in enumerate(zip(axes.flat, variants)):
        # the baseline wide and light underneath: where a variant's curve lies on it, it shows as a grey halo
        drawn += _loss_lines(ax, baseline, GREY, None, width=2.4)
        drawn += _loss_lines(ax, c, COLORS[k % len(COLORS)], None)
        ax.set_title(c["label"])
    for ax in axes.flat[len(variants):]:
        ax.set_visible(False)
    for ax in axes.flat[:len(variants)]:
        _log_loss_axis(ax, drawn, "epoch")
        ax.label_outer()
    fig.tight_layout()
    return save(fig, path)


def pool_order(configs: list, timings: dict, path: Path) -> list[Path]:
    """Left: the training loss of each order: activation first as a line, pool first as markers on it
    (the two orders' curves coincide, and a line on a line would hide one).
    Right: per paired repeat, the speed-up (a ratio of forward+backward times, as ``timing.versus``)
    of pool first over activation first, for ReLU and for tanh; above 1, pool first is faster."""
    fig, (ax_loss, ax_time) = plt.subplots(1, 2, figsize=(6.4, 2.5), gridspec_kw={"width_ratios": [1.5, 1]})
    drawn = []
    for c in configs:
        color = COLORS[0] if c["name"].startswith("relu") else COLORS[1]
        lines_before = len(ax_loss.lines)
        drawn += _loss_lines(ax_loss, c, color, c["label"], validation=False)
        if "pool_first" in c["name"]:
            _as_markers(ax_loss.lines[lines_before:])
    _log_loss_axis(ax_loss, drawn, "epoch")
    ax_loss.set_title("training loss (pool first: circles)")
    fig.legend(*ax_loss.get_legend_handles_labels(), loc="lower center", ncol=4)  # below, clear of the curves
    ratios = {"ReLU": (("relu_pool_after", "relu_pool_first"), COLORS[0]),
              "tanh": (("tanh_pool_after", "tanh_pool_first"), COLORS[1])}
    ratios = {label: (np.array(timing.paired_speedups(timings, *pair)), color) for label, (pair, color) in ratios.items()}
    for k, (ratio, color) in enumerate(ratios.values()):
        jitter = np.linspace(-0.15, 0.15, len(ratio))
        ax_time.plot(k + jitter, ratio, "o", color=color, markersize=2.5, alpha=0.8)
        ax_time.plot([k - 0.25, k + 0.25], [np.median(ratio)] * 2, color="black", linewidth=1.2)
    ax_time.axhline(1.0, color=GREY, linewidth=0.8, linestyle="--")
    ax_time.set_xticks(range(len(ratios)), list(ratios))
    ax_time.set(ylabel="speed-up of pool first", title="per paired repeat (bar: median)")
    ax_time.grid(axis="x", visible=False)
    fig.tight_layout(rect=(0, 0.1, 1, 1))
    return save(fig, path)


def confusion_and_errors(errors: dict, images: np.ndarray, path: Path, title: str = "") -> list[Path]:
    """Left: the confusion matrix (diagonal grey, errors in red); right: the most confident misclassified
    images (``images``, (k, 28, 28), those of ``errors["misclassified"]``), each captioned true →
    predicted (probability)."""
    cm = np.asarray(errors["confusion_matrix"])
    n = len(cm)
    fig = plt.figure(figsize=(6.4, 2.0))
    ax = fig.add_axes((0.04, 0.1, 0.42, 0.8))
    off = np.where(np.eye(n, dtype=bool) | (cm == 0), np.nan, cm.astype(float))
    ax.imshow(np.where(np.eye(n, dtype=bool), 1.0, np.nan), cmap="Greys", vmin=0, vmax=5)
    top = max(2.0, np.nanmax(off, initial=0.0))
    ax.imshow(off, cmap="Reds", vmin=0, vmax=top)
    for i in range(n):  # the errors in their cells; the diagonal's counts (about a thousand each) beside the row
        for j in range(n):
            if cm[i, j] and i != j:
                ax.text(j, i, str(cm[i, j]), ha="center", va="center", fontsize=8.5,
                        color="white" if cm[i, j] > 0.55 * top else "black")  # white on the darkest reds
        ax.text(n - 0.3, i, f"{cm[i, i]:,}", ha="left", va="center", fontsize=8.5, color="black")
    ax.text(n - 0.3, n - 0.2, "correct", ha="left", va="top", fontsize=8.5, color="black")
    ax.set_xticks(range(n))
    ax.set_yticks(range(n))
    ax.set(xlabel="predicted class", ylabel="true class",
           title=f"{title}: {errors['errors']} errors in {errors['images']:,} test images")
    ax.grid(False)
    for k, (w, image) in enumerate(zip(errors["misclassified"], images)):
        sub = fig.add_axes((0.52 + (k % 5) * 0.096, 0.47 - (k // 5) * 0.45, 0.085, 0.28))
        sub.imshow(image, cmap="gray_r")
        sub.set_title(f"{w['true']} → {w['predicted']}\n({w['probability']:.2f})", fontsize=8.5, pad=2)
        sub.axis("off")
    fig.text(0.76, 0.97, "misclassified: true → predicted (probability)", ha="center", va="bottom", fontsize=8)
    return save(fig, path)


def error_map(pred: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """(H, W) masks -> (H, W, 3): gland found grey, false gland red, missed gland blue, background black."""
    pred, truth = np.asarray(pred, bool), np.asarray(truth, bool)
    out = np.zeros((*pred.shape, 3))
    for key, where in (("gland found", pred & truth), ("false gland", pred & ~truth), ("missed gland", ~pred & truth)):
        out[where] = ERROR_COLORS[key]
    return out


def segmentation_cases(cases: dict[str, dict], arrays: dict[str, np.ndarray], path: Path) -> list[Path]:
    """One row per test image of ``cases`` (label -> {"name", "dice": the shown prediction's, "mean": over the
    seeds}, in the order of the arrays' rows): the image (``arrays["case_image"]``, RGB), the ground truth
    (``case_truth``), the first seed's prediction (``case_pred``) and its errors."""
    fig, axes = plt.subplots(len(cases), 4, figsize=(5.8, 1.25 * len(cases) + 0.3), squeeze=False)
    for k, (row, (what, case)) in enumerate(zip(axes, cases.items())):
        image, truth, p = arrays["case_image"][k], arrays["case_truth"][k], arrays["case_pred"][k]
        for ax, picture in zip(row, (image, truth, p, error_map(p, truth))):
            ax.imshow(picture, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
            ax.set(xticks=[], yticks=[])
            ax.grid(False)
        row[0].set_ylabel(f"{what}:\n{Path(case['name']).name}\nDice {case['mean']:.2f} (mean),\n{case['dice']:.2f} (shown)",
                          fontsize=8.5, rotation=0, ha="right", va="center")  # level: a row is too short for it
    for ax, title in zip(axes[0], ("image", "ground truth", "prediction", "errors")):
        ax.set_title(title)
    colours = {**ERROR_COLORS, "background found": (0.0, 0.0, 0.0)}  # error_map leaves it black
    handles = [plt.Rectangle((0, 0), 1, 1, facecolor=c, edgecolor="grey", linewidth=0.5) for c in colours.values()]
    fig.legend(handles, list(colours), loc="lower center", ncol=4)
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    return save(fig, path)


def boundary_crops(cases: dict[str, dict], arrays: dict[str, np.ndarray], labels: list[str], path: Path,
                   crop: int = 48) -> list[Path]:
    """Per case (label -> {"name", "boundary_f1_2px": per network, its mean over the seeds "boundary_f1_2px_mean",
    "hd95": per network}, in the order of the arrays' rows): the whole image (``arrays["case_image"]``) with the
    true boundary (``case_truth``), then a ``crop`` px window (where the two networks' predictions ``case_pred_0``
    and ``case_pred_1`` differ most) enlarged, with the true boundary (white) and each network's (its colour,
    ``labels``) drawn thick, and each network's boundary F1 (2 px) on the image, mean over the seeds and the first
    seed's. Predictions: the first seed's."""
    colors = [COLORS[4], COLORS[0]]
    fig, axes = plt.subplots(len(cases), 1 + len(labels), figsize=(4.2, 1.85 * len(cases) + 0.35), squeeze=False)
    for k, (row, (what, case)) in enumerate(zip(axes, cases.items())):
        image, truth = arrays["case_image"][k], arrays["case_truth"][k]
        masks = [arrays[f"case_pred_{n}"][k] for n in range(len(labels))]
        y, x = _window(masks[0] ^ masks[1], crop)
        row[0].imshow(image, interpolation="nearest")
        row[0].contour(truth, levels=[0.5], colors="white", linewidths=0.8)
        row[0].add_patch(plt.Rectangle((x - 0.5, y - 0.5), crop, crop, fill=False, edgecolor="yellow", linewidth=1.2))
        row[0].set_title(f"{what}:\n{Path(case['name']).name}", fontsize=8.5)
        for n, (ax, label, mask, color) in enumerate(zip(row[1:], labels, masks, colors)):
            window = (slice(y, y + crop), slice(x, x + crop))
            ax.imshow(image[window], interpolation="nearest")
            ax.contour(truth[window], levels=[0.5], colors="white", linewidths=2.4)
            ax.contour(mask[window], levels=[0.5], colors=[color], linewidths=2.0)
            ax.set_title(f"{label}\nF1 {case['boundary_f1_2px_mean'][n]:.2f} (mean),\n{case['boundary_f1_2px'][n]:.2f} (shown)",
                         fontsize=8.5)
        for ax in row:
            ax.set(xticks=[], yticks=[])
            ax.grid(False)
    outlined = [patheffects.withStroke(linewidth=4, foreground="black")]  # white on the white page
    handles = [plt.Line2D([], [], color="white", linewidth=2.5, path_effects=outlined),
               *[plt.Line2D([], [], color=c, linewidth=2.5) for c in colors]]
    fig.legend(handles, ["true boundary", *labels], loc="lower center", ncol=3)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    return save(fig, path)


def _window(changed: np.ndarray, size: int) -> tuple[int, int]:
    """Top-left corner of the ``size`` x ``size`` window holding the most ``changed`` pixels."""
    h, w = changed.shape
    integral = np.pad(changed.astype(int).cumsum(0).cumsum(1), ((1, 0), (1, 0)))
    counts = (integral[size:, size:] - integral[:-size, size:] - integral[size:, :-size] + integral[:-size, :-size])
    y, x = np.unravel_index(np.argmax(counts), counts.shape)
    return int(min(y, h - size)), int(min(x, w - size))


def residual_grid(groups: dict[str, list], path: Path) -> list[Path]:
    """One row per group (label -> [plain, residual]): the loss and the validation Dice (no training Dice: two
    pairs of curves with their ranges would hide each other) against epochs; plain grey, residual coloured. (Time
    per step is measured apart, in pairs: a run's recorded seconds shared the machine with another run.)"""
    fig, axes = plt.subplots(len(groups), 2, figsize=(6.4, 2.15 * len(groups) + 0.3), squeeze=False)
    for row, (group, pair) in zip(axes, groups.items()):
        drawn = []
        for runs, color in zip(pair, (GREY, COLORS[0])):
            drawn += _loss_lines(row[0], runs, color, None, "epoch")
            _score_lines(row[1], runs, color, training=False)
        _log_loss_axis(row[0], drawn, "epoch")
        row[1].set(xlabel="epoch", ylabel="validation Dice", ylim=(0, 1))
        _epoch_axis(row[1])
        row[0].set_title(f"{group}: loss")
        row[1].set_title(f"{group}: validation Dice")
    kinds = [plt.Line2D([], [], color=color, linewidth=1.1, label=runs["label"].split(", ")[1])
             for runs, color in zip(next(iter(groups.values())), (GREY, COLORS[0]))]
    seeds = plt.Rectangle((0, 0), 1, 1, facecolor=GREY, alpha=0.25, edgecolor=GREY, linewidth=0.5, label="seed range")
    fig.legend(handles=kinds + _style_handles() + [seeds], loc="lower center", ncol=5)  # below the curves, off them
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    return save(fig, path)
