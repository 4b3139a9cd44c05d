"""Boundary error maps (hand-made shapes) and the Ex 2.3-2.5 comparison figures (smoke)."""
import numpy as np
import pytest
import torch

from common import boundary_plots, seg_eval


def square(size=12, top=3, left=3, side=5):
    mask = np.zeros((size, size), bool)
    mask[top:top + side, left:left + side] = True
    return mask


def test_boundary_distances_of_a_shifted_square():
    truth, pred = square(), square(left=4)  # the same 5x5 square, one pixel to the right
    p, p_to_t, t, t_to_p = boundary_plots.boundary_distances(pred, truth)
    assert len(p) == len(t) == 16  # a 5x5 square's inner boundary: 25 - 9 interior pixels
    # predicted right column (5 px) lies 1 px outside the true square, its left column's 3 middle
    # pixels 1 px inside it (true interior); the 8 top/bottom-row pixels in columns 4-7 lie on it.
    # Symmetrically for the true boundary (its left column, and its right column's middle).
    assert sorted(p_to_t.tolist()) == [0.0] * 8 + [1.0] * 8
    assert sorted(t_to_p.tolist()) == [0.0] * 8 + [1.0] * 8


def test_boundary_error_image_colours_missed_and_far_boundaries():
    truth, pred = square(), np.zeros((12, 12), bool)
    pred[0, 0] = True  # a single-pixel prediction far from the square
    image = np.zeros((12, 12, 3))
    out = boundary_plots.boundary_error_image(image, pred, truth, tolerance=1, max_dist=4)  # 4.24 px away
    missed = boundary_plots.boundary_map(torch.as_tensor(truth)).numpy()
    assert np.allclose(out[missed], boundary_plots.MISSED_COLOR)  # every true boundary pixel is missed
    far = np.array(boundary_plots.plt.get_cmap(boundary_plots.DISTANCE_CMAP)(1.0)[:3])
    assert np.allclose(out[0, 0], far)  # beyond max_dist: the far end of the colour map
    perfect = boundary_plots.boundary_error_image(image, truth, truth, tolerance=1, max_dist=5)
    near = np.array(boundary_plots.plt.get_cmap(boundary_plots.DISTANCE_CMAP)(0.0)[:3])
    assert np.allclose(perfect[missed], near) and not np.allclose(perfect[missed], boundary_plots.MISSED_COLOR)


def test_boundary_colours_are_not_error_map_colours():
    """The predicted boundaries' colours must not be read as a distance of the error maps."""
    cmap = boundary_plots.plt.get_cmap(boundary_plots.DISTANCE_CMAP)(np.linspace(0, 1, 256))[:, :3]
    others = np.array([boundary_plots.MISSED_COLOR, boundary_plots.TRUTH_COLOR])
    for color in boundary_plots.BOUNDARY_COLORS:
        assert np.abs(cmap - color).sum(axis=1).min() > 0.5, color
        assert np.abs(others - color).sum(axis=1).min() > 0.5, color


def test_empty_prediction_marks_the_whole_true_boundary_missed():
    truth = square()
    _, _, t, t_to_p = boundary_plots.boundary_distances(np.zeros_like(truth), truth)
    assert len(t) == 16 and np.isinf(t_to_p).all()


def test_figures_are_written(tmp_path):
    rng = np.random.default_rng(0)
    truth, a, b = square(32, 8, 8, 12), square(32, 9, 8, 12), square(32, 8, 8, 13)
    rows = [{"image": rng.random((32, 32, 3)), "truth": truth, "preds": [a, b], "label": "case",
             "captions": ["x", "y"]}] * 2
    paths = boundary_plots.plot_boundary_cases(rows, ["no skips", "skips"], tmp_path, "cases", title="t")
    values = {"a": {"dice": [0.8, 0.82], "hd95": [5.0, 6.0]}, "b": {"dice": [0.9, 0.91], "hd95": [np.nan, np.nan]}}
    paths += boundary_plots.plot_metric_comparison(values, tmp_path, "bars", lower_is_better=("hd95",),
                                                   metric_labels=seg_eval.METRIC_LABELS)
    per_image = {"dice": rng.random(10), "hd95": rng.random(10) * 10}
    paths += boundary_plots.plot_paired_per_image(per_image, {k: v + 0.1 for k, v in per_image.items()}, ("a", "b"),
                                                  ["dice", "hd95"], tmp_path, "paired")
    assert len(paths) == 6 and all(p.stat().st_size > 1000 for p in paths)


def test_paired_difference_and_speed_of_learning():
    a = {"dice": np.array([[0.5, 0.7], [0.6, 0.8]]), "hd95": np.array([[4.0, 2.0], [4.0, 2.0]])}
    b = {"dice": np.array([[0.6, 0.6], [0.7, 0.9]]), "hd95": np.array([[3.0, 2.0], [5.0, 2.0]])}
    d = seg_eval.paired_difference(a, b)
    assert d["dice"]["difference"] == pytest.approx(0.05)  # seed means 0.6/0.7 -> 0.6/0.8
    assert d["dice"]["seed_pairs_better"] == 1 and d["dice"]["images_better"] == 1  # image means 0.65 vs 0.55
    assert d["hd95"]["images_better"] == 0 and d["hd95"]["images_worse"] == 0  # lower is better; image 0 ties
    run = {"history": {"epochs": [{"epoch": k + 1, "val_score": v, "train_time_s": 2.0}
                                  for k, v in enumerate([0.3, 0.74, 0.76, 0.9])]}}
    assert seg_eval.first_reaching(run, 0.75) == {"epoch": 3, "train_seconds": 6.0}
    assert seg_eval.first_reaching(run, 0.95) == {"epoch": None, "train_seconds": None}
    speed = seg_eval.speed_of_learning({"runs": [run, run]}, 0.75)
    assert speed["seeds_reaching"] == 2 and speed["mean_epoch"] == 3.0
