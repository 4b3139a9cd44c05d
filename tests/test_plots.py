"""common.plots: each figure is drawn from a results file's configurations (and the arrays saved beside
it) as stated (means over seeds, the baseline grey, the panels it promises) and saved as PDF and PNG that
a rerun writes identically."""
import numpy as np
import pytest
import torch

from common import evaluation, plots
from common.data import Splits


@pytest.fixture
def captured(monkeypatch):
    """The figures a plotting function would save, kept open for inspection."""
    figures = []
    monkeypatch.setattr(plots, "save", lambda fig, path: figures.append(fig) or [])
    yield figures
    for fig in figures:
        plots.plt.close(fig)


def record(val_scores, *, val_losses=None, iters_per_epoch=4, seconds=2.0, seed=0) -> dict:
    n = len(val_scores)
    val_losses = val_losses or [1.0 - v for v in val_scores]
    return {"seed": seed, "history": {
        "iter_loss": list(np.linspace(1.0, 0.2, n * iters_per_epoch)),
        "epochs": [{"epoch": k + 1, "val_score": v, "val_loss": l, "train_eval_score": v + 0.01,
                    "train_time_s": seconds} for k, (v, l) in enumerate(zip(val_scores, val_losses))]}}


def config(name, scores_per_seed, score="accuracy", **extra) -> dict:
    return {"name": name, "label": name.upper(), "score_name": score,
            "runs": [record(s, **extra) for s in scores_per_seed]}


def test_smooth_is_a_trailing_mean():
    assert plots.smooth([1, 2, 3, 4], 2).tolist() == [1.0, 1.5, 2.5, 3.5]
    assert plots.smooth([1, 2, 3, 4], 3).tolist() == [1.0, 1.5, 2.0, 3.0]
    assert plots.smooth([5.0], 10).tolist() == [5.0]


def test_save_writes_pdf_and_png_identically_on_a_rerun(tmp_path):
    paths = []
    for _ in range(2):
        fig, ax = plots.plt.subplots()
        ax.plot([0, 1], [1, 0])
        paths.append([p.read_bytes() for p in plots.save(fig, tmp_path / "sub" / "figure")])
    assert sorted(p.name for p in (tmp_path / "sub").iterdir()) == ["figure.pdf", "figure.png"]
    assert paths[0] == paths[1]  # no time stamps: a rerun leaves git nothing to commit


def test_curves_draw_the_mean_over_seeds(captured):
    a = config("a", [[0.5, 0.7], [0.7, 0.9]])
    b = config("b", [[0.6, 0.8]])
    plots.curves([a, b], None)
    (fig,) = captured
    loss, score = fig.axes
    assert loss.get_yscale() == "log" and loss.get_legend() is None  # the legend is the figure's, below the panels
    [legend] = fig.legends
    assert [text.get_text() for text in legend.get_texts()] == ["A", "B", "training", "validation"]
    # score panel: per configuration the training subset (solid, as the training loss), the validation mean
    # (dashed, as the validation loss), and with several seeds the two edges of their range (thin)
    train_a, val_a, low_a, high_a, train_b, val_b = score.get_lines()
    np.testing.assert_allclose(low_a.get_ydata(), [0.5, 0.7])
    np.testing.assert_allclose(high_a.get_ydata(), [0.7, 0.9])
    assert low_a.get_linewidth() < val_a.get_linewidth()
    np.testing.assert_allclose(val_a.get_ydata(), [0.6, 0.8])
    np.testing.assert_allclose(train_a.get_ydata(), [0.61, 0.81])
    np.testing.assert_allclose(val_b.get_ydata(), [0.6, 0.8])
    assert train_a.get_linestyle() == "-" and val_a.get_linestyle() == "--"
    assert val_a.get_color() == plots.COLORS[0] and val_b.get_color() == plots.COLORS[1]
    assert score.get_ylabel() == "accuracy (%)" and score.yaxis.get_major_formatter()(0.985, 0) == "98.5"
    low, high = score.get_ylim()  # from the mean curves after the first epoch, the seeds' range may leave it
    assert 0.7 < low < 0.8 and 0.81 < high < 0.9  # epoch 2: means 0.8 (validation) and 0.81 (training)
    # validation loss, dashed with circles, mean over the seeds: (0.5 + 0.3) / 2, (0.3 + 0.1) / 2
    val_loss = [line for line in loss.get_lines() if line.get_marker() == "o"][0]
    np.testing.assert_allclose(val_loss.get_ydata(), [0.4, 0.2])


def test_curves_against_time_and_without_a_hold_out(captured):
    plots.curves([config("a", [[0.5, 0.7]])], None, against_time=True)
    assert len(captured[-1].axes) == 3 and captured[-1].axes[1].get_xlabel() == "training time (s)"
    refit = config("a", [[0.5, 0.7]], score="dice")
    refit["runs"][0]["validation_held_out"] = False
    plots.curves([refit], None)
    (ax,) = captured[-1].axes  # the validation images were trained on: no validation curves at all
    assert ax.get_title() == "training loss" and all(line.get_marker() != "o" for line in ax.get_lines())


def test_variant_grid_draws_each_variant_beside_the_grey_baseline(captured):
    base = config("base", [[0.9, 0.95], [0.92, 0.97]])
    variants = [config(f"v{k}", [[0.8, 0.99]]) for k in range(4)]
    plots.variant_grid([base, *variants], None, ncols=3)
    (fig,) = captured
    visible = [ax for ax in fig.axes if ax.get_visible()]
    assert len(fig.axes) == 6 and [ax.get_title() for ax in visible] == ["V0", "V1", "V2", "V3"]
    for k, ax in enumerate(visible):
        base_train, base_val, train, val = ax.get_lines()
        assert base_train.get_color() == base_val.get_color() == plots.GREY
        assert base_train.get_linewidth() > train.get_linewidth()  # beneath, wide: a halo where the two coincide
        assert val.get_color() == plots.COLORS[k % len(plots.COLORS)]
        np.testing.assert_allclose(base_val.get_ydata(), [(0.1 + 0.08) / 2, (0.05 + 0.03) / 2])
    assert fig._suptitle is None  # the caption names the lines


def test_pool_order_dots_the_pool_first_curves_and_shows_the_time_ratios_of_each_paired_repeat(captured):
    configs = [{"name": n, "label": n, "score_name": "accuracy", "runs": [record([0.5, 0.6])]}
               for n in ("relu_pool_after", "relu_pool_first", "tanh_pool_after", "tanh_pool_first")]
    repeats = {"relu_pool_after": [0.010, 0.012, 0.011], "relu_pool_first": [0.005, 0.004, 0.011],
               "tanh_pool_after": [0.020, 0.030, 0.024], "tanh_pool_first": [0.010, 0.020, 0.030]}
    timings = {name: {"per_batch_repeats_s": r} for name, r in repeats.items()}
    plots.pool_order(configs, timings, None)
    loss, ratios = captured[0].axes
    styles = [line.get_linestyle() for line in loss.get_lines()]
    assert styles.count("-") == 2 and len(styles) == 4  # the two pool-first curves are dotted
    # repeat by repeat, the speed-up of pool first over activation first, with ReLU and with tanh
    points = [line.get_ydata() for line in ratios.get_lines() if line.get_marker() == "o"]
    assert len(points) == 2
    np.testing.assert_allclose(points[0], [2.0, 3.0, 1.0])
    np.testing.assert_allclose(points[1], [2.0, 1.5, 0.8])
    medians = [line.get_ydata()[0] for line in ratios.get_lines() if line.get_marker() != "o" and
               line.get_color() == "black"]
    assert medians == pytest.approx([2.0, 1.5])  # each group's median, a black bar
    assert 1.0 in [line.get_ydata()[0] for line in ratios.get_lines() if line.get_linestyle() == "--"]  # the line at 1


def test_confusion_and_errors_shows_the_matrix_and_the_most_confident_errors(captured):
    errors = {"confusion_matrix": [[5, 1], [2, 7]], "errors": 3, "images": 15,  # the 2 shown of the 3
              "misclassified": [{"index": i, "true": 1, "predicted": 0, "probability": 0.9 - i / 10} for i in range(2)]}
    images = np.random.default_rng(0).random((2, 28, 28)).astype(np.float16)  # those two images, as saved
    plots.confusion_and_errors(errors, images, None, title="best")
    fig = captured[0]
    assert len(fig.axes) == 1 + 2 and fig.axes[0].get_title() == "best: 3 errors in 15 test images"
    cells = [t.get_text() for t in fig.axes[0].texts]
    assert sorted(cells) == ["1", "2", "5", "7", "correct"]  # the errors in their cells, the diagonal beside them
    assert [ax.get_title() for ax in fig.axes[1:]] == ["1 → 0\n(0.90)", "1 → 0\n(0.80)"]
    np.testing.assert_array_equal(fig.axes[2].get_images()[0].get_array(), images[1])


def test_error_map_colours():
    pred = np.array([[1, 1], [0, 0]], bool)
    truth = np.array([[1, 0], [1, 0]], bool)
    out = plots.error_map(pred, truth)
    assert out[0, 0].tolist() == list(plots.ERROR_COLORS["gland found"])
    assert out[0, 1].tolist() == list(plots.ERROR_COLORS["false gland"])
    assert out[1, 0].tolist() == list(plots.ERROR_COLORS["missed gland"]) and out[1, 1].tolist() == [0, 0, 0]


def test_window_finds_the_square_with_the_most_changed_pixels():
    changed = np.zeros((20, 20), bool)
    changed[12:16, 3:7] = True
    changed[0, 19] = True
    # every 5x5 window with its corner at rows 11-12, columns 2-3 holds the 16 pixels; the first is taken
    assert plots._window(changed, 5) == (11, 2)
    assert plots._window(np.ones((8, 8), bool), 8) == (0, 0)


# --- segmentation figures, written to disk -------------------------------------------------------

@pytest.fixture
def seg():
    """Three test images, the truth a rectangle; two networks' predictions: shifted 2 px, and exact."""
    g = torch.Generator().manual_seed(0)
    truth = torch.zeros(3, 64, 64, dtype=torch.long)
    truth[:, 10:40, 12:44] = 1
    splits = Splits(train=(None, None), val=(None, None),
                    test=(torch.randn(3, 2, 64, 64, generator=g), truth),
                    info={"names": {"test": ["Test/image_01.png", "Test/image_02.png", "Test/image_03.png"]},
                          "normalisation": {"mean": [0.5, 0.4], "std": [0.2, 0.2]}})
    return splits, [torch.roll(truth, 2, dims=2).bool(), truth.bool()]


def test_case_arrays_hold_the_shown_images_compactly(seg):
    splits, preds = seg
    one = evaluation.case_arrays(splits, [2, 1], preds[:1])
    assert set(one) == {"case_image", "case_truth", "case_pred"}
    assert one["case_image"].shape == (2, 64, 64, 3) and one["case_image"].dtype == np.uint8
    np.testing.assert_array_equal(one["case_truth"], splits.test[1][[2, 1]].numpy())
    np.testing.assert_array_equal(one["case_pred"], preds[0][[2, 1]].numpy())
    expected = (255 * evaluation.display_images(splits.test[0][[2, 1]], splits.info["normalisation"]).clip(0, 1))
    np.testing.assert_array_equal(one["case_image"], expected.round().astype(np.uint8))
    two = evaluation.case_arrays(splits, [0], preds)
    assert set(two) == {"case_image", "case_truth", "case_pred_0", "case_pred_1"}


def test_segmentation_and_boundary_figures_are_written(seg, tmp_path):
    splits, preds = seg
    cases = {"worst": {"name": "Test/image_03.png", "dice": 0.7, "mean": 0.65},
             "median": {"name": "Test/image_02.png", "dice": 0.8, "mean": 0.85}}
    paths = plots.segmentation_cases(cases, evaluation.case_arrays(splits, [2, 1], preds[:1]),
                                     tmp_path / "figures" / "cases")
    crops = {"largest gain": {"name": "Test/image_01.png", "boundary_f1_2px": [0.5, 0.6], "hd95": [2.0, 2.0],
                              "boundary_f1_2px_mean": [0.55, 0.7]}}
    paths += plots.boundary_crops(crops, evaluation.case_arrays(splits, [0], preds), ["plain", "skips"],
                                  tmp_path / "figures" / "crops")
    for path in paths:
        assert path.stat().st_size > 1000
    assert sorted(p.name for p in (tmp_path / "figures").iterdir()) == ["cases.pdf", "cases.png", "crops.pdf",
                                                                       "crops.png"]


def test_segmentation_cases_label_each_row_and_show_the_errors(seg, captured):
    splits, preds = seg
    cases = {"worst": {"name": "Test/image_03.png", "dice": 0.7, "mean": 0.65},
             "median": {"name": "Test/image_02.png", "dice": 0.8, "mean": 0.85}}
    arrays = evaluation.case_arrays(splits, [2, 1], preds[:1])
    plots.segmentation_cases(cases, arrays, None)
    axes = captured[0].axes
    assert [axes[k].get_ylabel() for k in (0, 4)] == ["worst:\nimage_03.png\nDice 0.65 (mean),\n0.70 (shown)",
                                                      "median:\nimage_02.png\nDice 0.85 (mean),\n0.80 (shown)"]
    np.testing.assert_array_equal(axes[3].get_images()[0].get_array(),
                                  plots.error_map(arrays["case_pred"][0], arrays["case_truth"][0]))
    # every colour of the error map in the legend, the black background too
    assert [t.get_text() for t in captured[0].legends[0].get_texts()] == [*plots.ERROR_COLORS, "background found"]


def test_boundary_crops_title_each_network_with_its_scores(seg, captured):
    splits, preds = seg
    crops = {"best for skips": {"name": "Test/image_01.png", "boundary_f1_2px": [0.5, 0.6], "hd95": [2.0, 3.0],
                                "boundary_f1_2px_mean": [0.45, 0.7]}}
    plots.boundary_crops(crops, evaluation.case_arrays(splits, [0], preds), ["plain", "skips"], None)
    axes = captured[0].axes
    assert axes[0].get_title() == "best for skips:\nimage_01.png"
    assert [ax.get_title() for ax in axes[1:]] == ["plain\nF1 0.45 (mean),\n0.50 (shown)",
                                                    "skips\nF1 0.70 (mean),\n0.60 (shown)"]


def test_residual_grid_draws_one_row_per_group(captured):
    def runs(name, seed):
        return {"name": name, "label": f"depth 2, {name}", "score_name": "dice", "runs": [record([0.5, 0.8], seed=seed)]}

    groups = {"depth 2": [runs("plain", 0), runs("residual", 0)], "depth 3": [runs("plain", 1), runs("residual", 1)]}
    plots.residual_grid(groups, None)
    fig = captured[0]
    assert len(fig.axes) == 4 and fig.axes[0].get_title() == "depth 2: loss"  # loss and Dice per group
    assert fig.axes[1].get_ylim() == (0.0, 1.0) and fig.axes[2].get_title() == "depth 3: loss"
    # the Dice panel: validation only (dashed), one curve per kind
    assert [line.get_linestyle() for line in fig.axes[1].get_lines()] == ["--", "--"]
    # one legend below the panels, off the curves: the two kinds, then the line styles
    assert fig.axes[0].get_legend() is None
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["plain", "residual", "training", "validation",
                                                                  "seed range"]


def test_log_loss_axis_ticks_are_plain_numbers_inside_the_drawn_range():
    fig, ax = plots.plt.subplots()
    try:
        ax.plot([0.05, 2.0])
        plots._log_loss_axis(ax, [0.05, 2.0, 0.0, float("nan")], "epoch")  # zero and nan are not drawable on a log axis
        low, high = ax.get_ylim()
        assert (low, high) == pytest.approx((0.035, 2.6)) and ax.get_yscale() == "log"
        fig.canvas.draw()
        labels = [t.get_text() for t in ax.get_yticklabels() if low <= t.get_position()[1] <= high]
        assert labels == ["0.05", "0.1", "0.2", "0.5", "1", "2"]  # plain, no 10^-1 notation
    finally:
        plots.plt.close(fig)


def test_a_lone_loss_spike_leaves_the_axis_and_ordinary_values_do_not():
    fig, ax = plots.plt.subplots()
    try:
        curve = list(np.linspace(1.0, 0.2, 300))  # a training loss, and one validation spike of 500
        plots._log_loss_axis(ax, curve + [500.0], "epoch")
        # the top: 1.3 x (5 x the 99th percentile of what is drawn), not 1.3 x 500
        assert ax.get_ylim()[1] == pytest.approx(1.3 * 5 * np.quantile(curve + [500.0], 0.99))
        plots._log_loss_axis(ax, curve + [3.0], "epoch")  # 3 x the rest: inside 5 x, kept
        assert ax.get_ylim()[1] == pytest.approx(1.3 * 3.0)
    finally:
        plots.plt.close(fig)
