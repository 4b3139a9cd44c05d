"""Figure helpers: value labels clear of error bars and inside the axes, per-panel label formats,
case labels that quote the Dice of the prediction shown."""
import numpy as np
import pytest

from common import boundary_plots, plotting, seg_plots


@pytest.fixture
def captured(monkeypatch):
    """The figures a plotting function would save, kept open for inspection."""
    figures = []
    monkeypatch.setattr(plotting, "save_figure", lambda fig, *args: figures.append(fig) or [])
    monkeypatch.setattr(boundary_plots, "save_figure", lambda fig, *args: figures.append(fig) or [])
    yield figures
    for fig in figures:
        plotting.plt.close(fig)


def labels_clear(ax, tops):
    """Each value label (annotation) starts above its top (data y) and ends inside the axes."""
    ax.figure.canvas.draw()
    box = ax.get_window_extent()
    texts = [t for t in ax.texts if t.get_text()]
    assert len(texts) == len(tops)
    for text, top in zip(texts, tops):
        extent = text.get_window_extent()
        assert extent.y0 > ax.transData.transform((0, top))[1], text.get_text()
        assert extent.y1 <= box.y1 + 0.5, text.get_text()


def test_bar_labels_sit_above_the_error_bars_and_inside_the_axes(captured, tmp_path):
    values = {"a": {"mean": 0.80, "min": 0.70, "max": 0.99}, "b": {"mean": 0.95, "min": 0.94, "max": 0.999}}
    plotting.plot_bars(values, tmp_path, "bars", ylabel="Dice", annotate="{:.3f}", ylim=(0.5, 1.0))
    plotting.plot_bars(values, tmp_path, "bars", ylabel="Dice", annotate="{:.3f}")  # automatic limits
    for fig in captured:
        labels_clear(fig.axes[0], [0.99, 0.999])


def test_metric_comparison_labels_one_format_per_panel_and_seed_counts(captured, tmp_path):
    values = {"a": {"dice": [0.55, 0.56, 0.54], "hd95": [20.0, 21.0, 21.1], "epoch": [4, 5, 9]},
              "b": {"dice": [0.605, 0.60, 0.61], "hd95": [19.5, 20.0, 20.5], "epoch": [np.nan, np.nan, 30]},
              "c": {"dice": [0.7, 0.7, 0.7], "hd95": [5.0, 5.0, 5.0], "epoch": [np.nan] * 3}}
    boundary_plots.plot_metric_comparison(values, tmp_path, "bars", lower_is_better=("hd95", "epoch"))
    dice, hd95, epoch = captured[0].axes
    assert [t.get_text() for t in dice.texts] == ["0.550", "0.605", "0.700"]
    assert [t.get_text() for t in hd95.texts] == ["20.7", "20.0", "5.0"]
    assert [t.get_text() for t in epoch.texts] == ["6.0", "30.0\nn=1/3", "never (0/3)"]
    assert dice.get_ylim() == (0.0, 1.0)  # a score: the whole unit interval
    assert hd95.get_ylim()[0] == epoch.get_ylim()[0] == 0.0
    tops = [max(np.mean(v) + np.std(v, ddof=1), max(v)) for v in ([20.0, 21.0, 21.1], [19.5, 20.0, 20.5], [5.0] * 3)]
    labels_clear(hd95, tops)


def test_value_format_follows_the_largest_value():
    assert boundary_plots.value_format([0.55, 0.605]) == "{:.3f}"
    assert boundary_plots.value_format([0.47, 1.15]) == "{:.2f}"
    assert boundary_plots.value_format([6, 8.33, 30, np.nan]) == "{:.1f}"
    assert boundary_plots.value_format([150.0]) == "{:.0f}"


def test_case_label_quotes_the_shown_seeds_dice_and_the_mean():
    text = seg_plots.case_label("worst", "Test/image_16.png", [0.45457, 0.65347, 0.58696], 0)
    assert text == "worst: Test/image_16.png\nseed 0: Dice 0.455\n(mean of 3 seeds 0.565)"


def _config(name: str, val_scores: list[list[float]]) -> dict:
    """A configuration whose seeds have the given per-epoch validation scores (train = val + 0.01)."""
    return {"name": name, "score_name": "accuracy", "runs": [
        {"history": {"iter_loss": [1.0] * (2 * len(scores)), "epochs": [
            {"val_score": v, "train_eval_score": v + 0.01} for v in scores]}} for scores in val_scores]}


def test_against_baseline_draws_each_variant_beside_the_grey_baseline(captured, tmp_path):
    base = _config("base", [[0.90, 0.95], [0.92, 0.97]])
    variants = [_config(f"v{k}", [[0.80 + k / 100, 0.99]]) for k in range(4)]
    plotting.plot_against_baseline([base, *variants], tmp_path, "grid", ncols=3, bottom=0.5)
    (fig,) = captured
    visible = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title() for ax in visible] == ["v0", "v1", "v2", "v3"]  # 2 x 3 grid, last two hidden
    assert len(fig.axes) == 6
    for k, ax in enumerate(visible):
        base_train, base_val, train, val = ax.get_lines()
        np.testing.assert_allclose(base_val.get_ydata(), [0.91, 0.96])  # mean over the baseline's seeds
        np.testing.assert_allclose(val.get_ydata(), [0.80 + k / 100, 0.99])
        np.testing.assert_allclose(train.get_ydata(), [0.81 + k / 100, 1.00])
        assert base_val.get_color() == "0.55" and val.get_color() == plotting.COLORS[k + 1]  # as in plot_bars
        assert ax.get_ylim()[0] == 0.5
    with pytest.raises(ValueError, match="got 1"):
        plotting.plot_against_baseline([base], tmp_path, "grid")
