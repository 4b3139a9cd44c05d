"""Boundary metrics on hand-made shapes with hand-computed answers."""
import math

import pytest
import torch

from common.boundary import boundary_f1, boundary_map, boundary_scores, hd95


SIDE = 10  # the hand-made masks are SIDE x SIDE


def columns(width: int, rows: int = SIDE, cols: int = SIDE) -> torch.Tensor:
    """Foreground = the ``width`` leftmost columns: its only boundary is column ``width - 1``."""
    mask = torch.zeros(rows, cols, dtype=torch.long)
    mask[:, :width] = 1
    return mask


def staircase() -> torch.Tensor:
    """Columns 0..4 in rows 0..4 and columns 0..7 in rows 5..9 (10 x 10)."""
    mask = columns(5)
    mask[5:, :8] = 1
    return mask


def test_boundary_of_a_square_is_its_ring():
    mask = torch.zeros(7, 7)
    mask[2:5, 2:5] = 1
    b = boundary_map(mask)
    assert b.sum() == 8 and not b[3, 3] and b[2, 2]


def test_the_image_border_is_not_a_boundary():
    b = boundary_map(columns(5))
    assert b.sum() == 10 and b[:, 4].all()


def test_staircase_boundary_pixels():
    b = boundary_map(staircase())
    expected = {(r, 4) for r in range(5)} | {(5, 5), (5, 6)} | {(r, 7) for r in range(5, 10)}
    assert {tuple(p) for p in b.nonzero().tolist()} == expected


def test_identical_masks():
    assert boundary_f1(staircase(), staircase(), 1) == 1.0 and hd95(staircase(), staircase()) == 0.0


@pytest.mark.parametrize("shift", [1, 3])
def test_shifted_edge(shift):
    pred, target = columns(5 + shift), columns(5)
    assert hd95(pred, target) == pytest.approx(shift)
    assert boundary_f1(pred, target, tolerance=shift) == 1.0
    assert boundary_f1(pred, target, tolerance=shift - 0.5) == 0.0


def test_staircase_against_a_straight_edge():
    # pred boundary distances to column 4: 0 (x5), 1, 2, 3 (x5): precision@1 = 6/12
    # true boundary distances to pred: rows 0-4: 0, row 5: 1, row 6: sqrt 2, row 7: sqrt 5, rows 8-9: 3
    # recall@1 = 6/10, F1 = 2 * 0.5 * 0.6 / 1.1
    assert boundary_f1(staircase(), columns(5), 1) == pytest.approx(2 * 0.5 * 0.6 / 1.1)
    # recall@2 = 7/10 (sqrt 2 <= 2), precision@2 = 7/12
    assert boundary_f1(staircase(), columns(5), 2) == pytest.approx(2 * (7 / 12) * 0.7 / (7 / 12 + 0.7))
    assert hd95(staircase(), columns(5)) == pytest.approx(3.0)


def test_empty_masks_follow_the_stated_conventions():
    empty = torch.zeros(10, 10)
    assert boundary_f1(empty, empty) == 1.0 and hd95(empty, empty) == 0.0
    assert boundary_f1(columns(5), empty) == 0.0 and boundary_f1(empty, columns(5)) == 0.0
    assert hd95(columns(5), empty) == pytest.approx(math.hypot(10, 10))


@pytest.mark.parametrize("pred_full, target_full", [(True, False), (False, True), (True, True), (False, False)])
def test_masks_without_a_boundary_are_compared_whole(pred_full, target_full):
    """All gland or all background has no boundary pixel (the image edge does not count); then
    equal masks agree perfectly and unequal ones not at all."""
    pred, target = columns(SIDE if pred_full else 0), columns(SIDE if target_full else 0)
    assert not boundary_map(pred).any() and not boundary_map(target).any()
    agree = pred_full == target_full
    assert boundary_f1(pred, target) == (1.0 if agree else 0.0)
    assert hd95(pred, target) == (0.0 if agree else pytest.approx(math.hypot(SIDE, SIDE)))


def test_boundary_scores_per_image():
    preds = torch.stack([columns(5), columns(6)])
    targets = torch.stack([columns(5), columns(5)])
    scores = boundary_scores(preds, targets, tolerances=(0.5, 1.0))
    assert scores == {"boundary_f1_0.5px": [1.0, 0.0], "boundary_f1_1px": [1.0, 1.0], "hd95": [0.0, 1.0]}
    with pytest.raises(ValueError, match="equal shape"):
        boundary_scores(preds, targets[:1])
