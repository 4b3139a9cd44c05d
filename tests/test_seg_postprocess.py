"""From gland probabilities to masks (common.seg_eval.foreground_masks): the threshold on hand-made
logits, the arg-max at 0.5 exactly, and hole filling on hand-drawn shapes."""
import math

import pytest
import torch

from common import seg_eval


def logits_for(p_gland: torch.Tensor) -> torch.Tensor:
    """(N, H, W) gland probabilities -> (N, 2, H, W) logits with exactly those probabilities."""
    return torch.stack([torch.zeros_like(p_gland), torch.logit(p_gland.double())], dim=1)


def test_threshold_keeps_the_pixels_above_it():
    p = torch.tensor([[[0.25, 0.35], [0.45, 0.55]], [[0.65, 0.75], [0.05, 0.95]]])
    expected = {0.3: [[[0, 1], [1, 1]], [[1, 1], [0, 1]]], 0.5: [[[0, 0], [0, 1]], [[1, 1], [0, 1]]],
                0.7: [[[0, 0], [0, 0]], [[0, 1], [0, 1]]]}
    for threshold, mask in expected.items():
        assert seg_eval.foreground_masks(logits_for(p), threshold).tolist() == torch.tensor(mask).bool().tolist()


def test_half_is_exactly_the_argmax_ties_included():
    torch.manual_seed(0)
    logits = torch.randn(3, 2, 16, 16)
    logits[0, 1, :4] = logits[0, 0, :4]  # ties: the arg-max takes class 0
    logits[1, 1, :4] = logits[1, 0, :4] + 1e-7  # a difference float32 softmax would round away
    assert torch.equal(seg_eval.foreground_masks(logits), logits.argmax(dim=1) == 1)


def test_threshold_is_on_the_probability_of_the_logits():
    logits = torch.tensor([0.0, math.log(0.4 / 0.6)]).view(1, 2, 1, 1) + 3.0  # p(gland) = 0.4, shifted logits
    assert seg_eval.foreground_masks(logits, 0.39).item() and not seg_eval.foreground_masks(logits, 0.41).item()


def test_fill_holes_fills_enclosed_background_only():
    ring = torch.zeros(7, 7)
    ring[1:6, 1:6] = 1
    ring[2:5, 2:5] = 0  # a gland with a 3x3 lumen
    open_ring = ring.clone()
    open_ring[3, 5] = 0  # the lumen reaches the background through a gap: not a hole
    border = torch.zeros(7, 7)
    border[:4, :4] = 1
    border[0, 1] = 0  # a notch on the image border: not enclosed
    p = torch.stack([ring, open_ring, border]) * 0.98 + 0.01
    filled = seg_eval.foreground_masks(logits_for(p), fill_holes=True)
    expected_ring = torch.zeros(7, 7, dtype=torch.bool)
    expected_ring[1:6, 1:6] = True
    assert torch.equal(filled[0], expected_ring)
    assert torch.equal(filled[1], open_ring.bool())
    assert torch.equal(filled[2], border.bool())
    assert torch.equal(seg_eval.foreground_masks(logits_for(p))[0], ring.bool())  # without: unchanged


def test_a_diagonal_gap_does_not_open_a_hole():
    ring = torch.ones(5, 5)
    ring[1:4, 1:4] = 0
    ring[0, 0] = 0  # the corner touches the lumen only diagonally: background counts as 4-connected
    filled = seg_eval.foreground_masks(logits_for((ring * 0.98 + 0.01)[None]), fill_holes=True)[0]
    expected = torch.ones(5, 5, dtype=torch.bool)
    expected[0, 0] = False
    assert torch.equal(filled, expected)


@pytest.mark.parametrize("threshold", [0.0, 1.0, -0.1, 1.5])
def test_threshold_outside_zero_one_is_refused(threshold):
    with pytest.raises(ValueError, match=f"threshold must lie strictly between 0 and 1, got {threshold}"):
        seg_eval.foreground_masks(torch.zeros(1, 2, 4, 4), threshold)


def test_logits_of_the_wrong_shape_are_refused():
    with pytest.raises(ValueError, match=r"expected logits of shape \(N, 2, H, W\), got \(1, 3, 4, 4\)"):
        seg_eval.foreground_masks(torch.zeros(1, 3, 4, 4))


def test_mean_dice_per_seed():
    target = torch.tensor([[[1, 1], [0, 0]], [[0, 0], [0, 0]]])
    masks = [torch.tensor([[[1, 0], [0, 0]], [[0, 0], [0, 0]]]).bool(), target.bool()]
    # seed 0: image 1 Dice 2*1/(1+2) = 2/3, image 2 both empty -> 1; seed 1: perfect
    assert seg_eval.mean_dice(masks, target) == pytest.approx([(2 / 3 + 1) / 2, 1.0])
