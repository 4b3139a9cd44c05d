"""Per-image statistics behind the worst-case description."""
import numpy as np
import pytest
import torch

from common import seg_analysis


def test_image_statistics_and_description_by_hand():
    truth = torch.zeros(2, 4, 4, dtype=torch.long)
    truth[:, :2] = 1  # half the pixels are gland
    pred = truth.clone()
    pred[1] = 1  # image 1: everything predicted gland -> 8 false positives
    inputs = torch.zeros(2, 2, 4, 4)
    inputs[:, :, :2] = 1.0
    inputs[:, :, 2:, :2] = 0.5  # some variation outside, so the contrast is finite
    stats = seg_analysis.image_statistics(inputs, truth, pred, {"mean": [0.5, 0.5], "std": [0.25, 0.25]})
    assert stats["gland_fraction"].tolist() == [0.5, 0.5]
    assert stats["predicted_gland_fraction"].tolist() == [0.5, 1.0]
    assert stats["false_positive_fraction"].tolist() == [0.0, 0.5]
    assert stats["false_negative_fraction"].tolist() == [0.0, 0.0]
    # raw = 0.5 + 0.25 * x: gland pixels 0.75, background 0.5 and 0.625 -> no pixel is empty slide
    assert stats["no_tissue_fraction"].tolist() == [0.0, 0.0]
    assert np.isfinite(stats["contrast"]).all()
    dice = np.array([[1.0, 2 * 8 / (8 + 16)]])
    case = seg_analysis.describe_case(1, dice, stats, ["a.png", "b.png"])
    assert case["name"] == "b.png" and case["dice_mean"] == pytest.approx(2 / 3)
    assert "mostly false positives" in case["description"] and "b.png" in case["description"]
    # two seeds: the pixel statistics are the shown run's, and the text gives that run's own Dice
    two = np.array([[1.0, 0.25], [1.0, 0.75]])
    case = seg_analysis.describe_case(1, two, stats, ["a.png", "b.png"], seeds=[7, 8], stats_row=0)
    assert case["dice_mean"] == pytest.approx(0.5) and case["dice_shown"] == pytest.approx(0.25)
    assert case["statistics_from"] == "seed 7" and "seed 7's prediction (Dice 0.250)" in case["description"]
    assert "Dice 0.500 (mean over 2 seed(s)" in case["description"]


def test_describe_case_calls_a_nearly_right_prediction_one_with_few_errors():
    n = 10
    truth = torch.zeros(2, n, n, dtype=torch.long)
    truth[:, :5] = 1
    pred = truth.clone()
    pred[1, 5, 0] = 1  # one false positive pixel in 100: 1 % wrong, all of it false positive
    stats = seg_analysis.image_statistics(torch.rand(2, 2, n, n), truth, pred)
    assert stats["false_positive_fraction"][1] == pytest.approx(0.01) and stats["false_negative_fraction"][1] == 0
    case = seg_analysis.describe_case(1, np.array([[1.0, 0.99]]), stats, ["a.png", "b.png"])
    assert "few errors" in case["description"] and "over-segmentation" not in case["description"]
