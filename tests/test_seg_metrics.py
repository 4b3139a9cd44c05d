"""Dice coefficient: hand-computed cases, the empty-mask convention and the logits adapter."""
import pytest
import torch

from common.metrics import DICE_EMPTY, dice_coefficient, dice_per_sample


def masks(*rows):
    return torch.tensor(rows, dtype=torch.bool)[None]  # one (1, H, W) image


def test_hand_computed_overlap():
    # A has 4 pixels, B has 6, they share 3: DSC = 2*3 / (4+6) = 0.6
    a = masks([1, 1, 0, 0], [1, 1, 0, 0], [0, 0, 0, 0])
    b = masks([0, 1, 1, 0], [1, 1, 1, 0], [0, 0, 1, 0])
    assert dice_coefficient(a, b).item() == pytest.approx(0.6)
    assert dice_coefficient(b, a).item() == pytest.approx(0.6)  # symmetric


def test_identical_disjoint_and_empty():
    a = masks([1, 0], [0, 1])
    assert dice_coefficient(a, a).item() == 1.0
    assert dice_coefficient(a, ~a).item() == 0.0
    empty = masks([0, 0], [0, 0])
    assert dice_coefficient(empty, a).item() == 0.0 and dice_coefficient(a, empty).item() == 0.0
    assert dice_coefficient(empty, empty).item() == DICE_EMPTY == 1.0  # the stated convention
    assert dice_coefficient(empty, empty, empty=0.0).item() == 0.0


def test_per_image_not_pooled():
    # image 1: perfect (1 pixel each); image 2: 1 predicted of 3 true pixels -> 2*1/(1+3) = 0.5
    pred = torch.tensor([[[1, 0], [0, 0]], [[1, 0], [0, 0]]])
    truth = torch.tensor([[[1, 0], [0, 0]], [[1, 1], [1, 0]]])
    assert dice_coefficient(pred, truth).tolist() == [1.0, 0.5]  # pooled would be 2*2/(2+4) = 0.667


def test_logits_adapter_uses_the_argmax_class():
    truth = torch.tensor([[[1, 1], [0, 0]]])
    logits = torch.zeros(1, 2, 2, 2)
    logits[0, 1] = torch.tensor([[2.0, -1.0], [3.0, -2.0]])  # gland predicted at (0,0) and (1,0)
    # A = {(0,0), (1,0)}, B = {(0,0), (0,1)}: 2*1 / (2+2) = 0.5
    assert dice_per_sample(logits, truth).tolist() == [0.5]


def test_shape_mismatch_is_an_error():
    with pytest.raises(ValueError, match="differ in shape"):
        dice_coefficient(torch.zeros(1, 2, 2), torch.zeros(1, 2, 3))
