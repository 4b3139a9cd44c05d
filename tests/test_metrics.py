"""common.metrics: accuracy and Dice, the boundary metrics (hand-made shapes, and the real WARWICK
masks against independent implementations in scipy and scikit-learn), the fit verdict on synthetic
curves, and the statistics behind every comparison against scipy.stats."""
import math

import numpy as np
import pytest
import torch
from scipy import ndimage, stats
from torch.utils._python_dispatch import TorchDispatchMode

from common import metrics
from common.metrics import (DICE_EMPTY, boundary_distances, boundary_f1, boundary_map, dice_coefficient,
                            dice_per_sample, fit_verdict, hd95, segmentation_scores)
from helpers import epoch, history


# --- classification ------------------------------------------------------------------------------

def test_accuracy_per_sample():
    logits = torch.tensor([[2.0, 1.0], [0.0, 3.0], [1.0, 0.0]])
    assert metrics.accuracy_per_sample(logits, torch.tensor([0, 1, 1])).tolist() == [1.0, 1.0, 0.0]


def test_confusion_matrix_rows_are_true_classes():
    cm = metrics.confusion_matrix([0, 0, 1, 2, 2, 2], [0, 1, 1, 2, 0, 2], num_classes=4)
    assert cm.tolist() == [[1, 1, 0, 0], [0, 1, 0, 0], [1, 0, 2, 0], [0, 0, 0, 0]]  # class 3 never seen: zeros


def test_summarize_uses_sample_standard_deviation():
    assert metrics.summarize([1.0, 2.0, 3.0]) == {"mean": 2.0, "std": 1.0, "min": 1.0, "max": 3.0, "n": 3}
    assert metrics.summarize([4.0])["std"] == 0.0
    with pytest.raises(ValueError, match="empty"):
        metrics.summarize([])


# --- Dice ----------------------------------------------------------------------------------------

NUM_RANDOM_IMAGES, RANDOM_SIZE = 64, (9, 7)


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


def float64_dice(pred, target, empty=DICE_EMPTY):
    """The formula computed wholly on the masks' device in float64, as before the MPS fix."""
    a, b = pred.bool().flatten(1), target.bool().flatten(1)
    intersection = (a & b).sum(1).double()
    total = (a.sum(1) + b.sum(1)).double()
    return torch.where(total > 0, 2.0 * intersection / total.clamp(min=1), torch.full_like(total, empty)).float()


def test_equals_the_float64_formula_bit_for_bit_on_random_masks():
    g = torch.Generator().manual_seed(0)
    density = torch.rand(NUM_RANDOM_IMAGES, 1, 1, generator=g)  # from almost empty to almost full
    pred = torch.rand(NUM_RANDOM_IMAGES, *RANDOM_SIZE, generator=g) < density
    target = torch.rand(NUM_RANDOM_IMAGES, *RANDOM_SIZE, generator=g) < density.flip(0)
    pred[:2], target[:2] = False, False  # both empty
    pred[2], target[3] = False, False  # one empty
    for empty in (DICE_EMPTY, 0.0):
        dice = dice_coefficient(pred, target, empty)
        assert dice.dtype == torch.float32 and torch.equal(dice, float64_dice(pred, target, empty))


class NoFloat64On(TorchDispatchMode):
    """A device that, like Apple's MPS, cannot hold float64 tensors: every operation that makes
    one on ``device`` fails. Copies from it to the CPU (which a 'meta' tensor cannot make) give
    zeros of the right shape and type, since only types and devices are checked."""

    def __init__(self, device: str) -> None:
        super().__init__()
        self.device = device

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if (func is torch.ops.aten._to_copy.default and args[0].device.type == self.device
                and kwargs.get("device") == torch.device("cpu")):
            return torch.zeros(args[0].shape, dtype=kwargs.get("dtype") or args[0].dtype)
        out = func(*args, **kwargs)
        for t in out if isinstance(out, (tuple, list)) else [out]:
            if isinstance(t, torch.Tensor) and t.device.type == self.device and t.dtype == torch.float64:
                raise RuntimeError(f"{func} made a float64 tensor on {self.device}")
        return out


def test_makes_no_float64_tensor_on_the_masks_device():
    pred = torch.zeros(3, *RANDOM_SIZE, dtype=torch.bool, device="meta")
    with NoFloat64On("meta"):
        dice = dice_coefficient(pred, pred)
    assert dice.device.type == "meta" and dice.dtype == torch.float32 and dice.shape == (3,)


# --- boundary metrics on hand-made shapes -----------------------------------------------------


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


def test_segmentation_scores_per_image():
    preds = torch.stack([columns(5), columns(6)])
    targets = torch.stack([columns(5), columns(5)])
    scores = segmentation_scores(preds, targets, tolerances=(0.5, 1.0))
    assert set(scores) == {"dice", "boundary_f1_0.5px", "boundary_f1_1px", "hd95"}
    assert scores["boundary_f1_0.5px"].tolist() == [1.0, 0.0] and scores["boundary_f1_1px"].tolist() == [1.0, 1.0]
    assert scores["hd95"].tolist() == [0.0, 1.0]
    assert scores["dice"].tolist() == pytest.approx([1.0, 2 * 50 / (60 + 50)])  # 50 of 60 pixels shared
    with pytest.raises(ValueError, match="equal shape"):
        segmentation_scores(preds, targets[:1])


def test_boundary_distances_of_a_shifted_square():
    def square(left: int) -> torch.Tensor:
        mask = torch.zeros(12, 12, dtype=torch.bool)
        mask[3:8, left:left + 5] = True
        return mask

    p, p_to_t, t, t_to_p = boundary_distances(square(4), square(3))  # one pixel to the right
    assert len(p) == len(t) == 16  # a 5x5 square's inner boundary: 25 - 9 interior pixels
    # the predicted right column (5 px) lies 1 px outside the true square, its left column's 3 middle
    # pixels 1 px inside it; the 8 top/bottom-row pixels in columns 4-7 lie on it. Symmetrically back.
    assert sorted(p_to_t.tolist()) == [0.0] * 8 + [1.0] * 8 and sorted(t_to_p.tolist()) == [0.0] * 8 + [1.0] * 8
    _, _, t, t_to_p = boundary_distances(torch.zeros(12, 12), square(3))
    assert len(t) == 16 and torch.isinf(t_to_p).all()  # an empty prediction: every true boundary pixel missed


def test_boundary_map_needs_one_mask():
    with pytest.raises(ValueError, match=r"expected an \(H, W\) mask"):
        boundary_map(torch.zeros(2, 4, 4))


# --- the real WARWICK masks against independent implementations --------------------------------

SHOWN_IMAGES = (0, 9, 23, 41, 58)  # a handful of test images: glands large and small, some cut by the border
CROSS = ndimage.generate_binary_structure(2, 1)  # the 4-connected neighbourhood


def _shift(mask: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """``mask`` moved by (dy, dx) pixels, background entering at the edge (no wrap-around)."""
    return ndimage.shift(mask.astype(np.uint8), (dy, dx), order=0, mode="constant", cval=0).astype(bool)


def _perturbed(mask: np.ndarray) -> dict[str, np.ndarray]:
    flips = np.random.default_rng(0).random(mask.shape) < 0.02  # 2 % of the pixels flipped, fixed seed
    return {"identical": mask, "shifted (3, -2)": _shift(mask, 3, -2),
            "eroded 2": ndimage.binary_erosion(mask, iterations=2),
            "dilated 3": ndimage.binary_dilation(mask, iterations=3), "2 % flipped": mask ^ flips,
            "eroded and shifted": _shift(ndimage.binary_erosion(mask, iterations=4), -5, 1)}


@pytest.fixture(scope="module")
def real_masks(warwick_dir) -> list[np.ndarray]:
    from common.warwick import load_warwick

    masks = load_warwick(warwick_dir)["test"][1]
    return [masks[i].numpy().astype(bool) for i in SHOWN_IMAGES]


def _reference_boundary(mask: np.ndarray) -> np.ndarray:
    """Foreground pixels that erosion by the 4-connected cross removes; outside the image counts as
    foreground (border_value=1), so the image border is not a boundary."""
    return mask & ~ndimage.binary_erosion(mask, structure=CROSS, border_value=1)


def _reference_distances(pred: np.ndarray, truth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per boundary pixel of each mask, the Euclidean distance to the other's boundary: the distance
    transform of the other boundary's complement, read at the pixel."""
    bp, bt = _reference_boundary(pred), _reference_boundary(truth)
    return ndimage.distance_transform_edt(~bt)[bp], ndimage.distance_transform_edt(~bp)[bt]


def test_real_masks_are_not_trivial(real_masks):
    for mask in real_masks:
        assert 0.05 < mask.mean() < 0.95 and _reference_boundary(mask).sum() > 50


def test_dice_equals_scikit_learns_f1_on_real_masks(real_masks):
    from sklearn.metrics import f1_score

    for mask in real_masks:
        perturbed = _perturbed(mask)
        preds = torch.from_numpy(np.stack(list(perturbed.values())))
        truth = torch.from_numpy(np.stack([mask] * len(perturbed)))
        dice = dice_coefficient(preds, truth)
        expected = [f1_score(mask.ravel(), p.ravel()) for p in perturbed.values()]
        assert dice.tolist() == pytest.approx(expected, abs=1e-6), list(perturbed)
        assert dice[0] == 1.0 and dice[1:].max() < 1.0  # the check is not trivially satisfied


def test_boundary_map_equals_scipy_erosion_on_real_masks(real_masks):
    for mask in real_masks:
        for name, pred in _perturbed(mask).items():
            ours = boundary_map(torch.from_numpy(pred)).numpy()
            np.testing.assert_array_equal(ours, _reference_boundary(pred), err_msg=name)


@pytest.mark.parametrize("tolerance", [1.0, 2.0])
def test_hd95_and_boundary_f1_equal_a_distance_transform_implementation(real_masks, tolerance):
    """HD95: the larger of the two directed 95th percentiles (both linear interpolation, torch.quantile
    and np.percentile); boundary F1: precision and recall within ``tolerance`` pixels."""
    checked = 0
    for mask in real_masks:
        for name, pred in _perturbed(mask).items():
            pred_to_true, true_to_pred = _reference_distances(pred, mask)
            expected_hd95 = max(np.percentile(pred_to_true, 95), np.percentile(true_to_pred, 95))
            precision, recall = (pred_to_true <= tolerance).mean(), (true_to_pred <= tolerance).mean()
            expected_f1 = 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)
            p, t = torch.from_numpy(pred), torch.from_numpy(mask)
            assert hd95(p, t) == pytest.approx(expected_hd95, abs=1e-5), name
            assert boundary_f1(p, t, tolerance) == pytest.approx(expected_f1, abs=1e-6), name
            checked += expected_hd95 > tolerance  # cases where the tolerance matters
    assert checked >= len(real_masks)  # perturbations large enough to move the boundary past the tolerance


def test_segmentation_scores_of_real_masks_are_the_single_image_metrics(real_masks):
    preds = torch.from_numpy(np.stack([_perturbed(m)["shifted (3, -2)"] for m in real_masks]))
    truth = torch.from_numpy(np.stack(real_masks))
    scores = segmentation_scores(preds, truth)
    for i, (p, t) in enumerate(zip(preds, truth)):
        assert scores["hd95"][i] == hd95(p, t) and scores["boundary_f1_2px"][i] == boundary_f1(p, t, 2.0)
        assert scores["boundary_f1_1px"][i] == boundary_f1(p, t, 1.0)
    assert scores["dice"].tolist() == dice_coefficient(preds, truth).tolist()


# --- statistics, against scipy.stats -------------------------------------------------------------

A_SEEDS = [0.812, 0.804, 0.829, 0.817, 0.801]
B_SEEDS = [0.829, 0.811, 0.842, 0.826, 0.824]  # seed k paired with seed k of A


def test_mean_interval_is_scipys_t_interval():
    values = np.array(B_SEEDS)
    out = metrics.mean_interval(values)
    low, high = stats.t.interval(0.95, len(values) - 1, loc=values.mean(), scale=stats.sem(values))
    assert (out["ci_low"], out["ci_high"]) == pytest.approx((low, high), rel=1e-12)
    assert out["mean"] == pytest.approx(values.mean()) and out["n"] == 5
    low90, high90 = stats.t.interval(0.90, 4, loc=values.mean(), scale=stats.sem(values))
    assert metrics.mean_interval(values, 0.90)["ci_low"] == pytest.approx(low90, rel=1e-12)
    single = metrics.mean_interval([0.7])
    assert single["mean"] == 0.7 and math.isnan(single["ci_low"]) and math.isnan(single["ci_high"])


def test_paired_difference_is_b_minus_a_with_the_paired_t_interval():
    out = metrics.paired_difference(A_SEEDS, B_SEEDS)
    reference = stats.ttest_rel(B_SEEDS, A_SEEDS).confidence_interval(0.95)
    assert out["difference"] == pytest.approx(np.mean(np.subtract(B_SEEDS, A_SEEDS)), rel=1e-12)
    assert (out["ci_low"], out["ci_high"]) == pytest.approx((reference.low, reference.high), rel=1e-10)
    assert out["pairs"] == 5 and out["per_pair"] == pytest.approx([0.017, 0.007, 0.013, 0.009, 0.023])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_wilcoxon_over_images_is_scipys_signed_rank_test(seed):
    rng = np.random.default_rng(seed)
    a = rng.uniform(0.5, 0.9, 30)
    b = a + rng.normal(0.02, 0.05, 30)
    assert metrics.wilcoxon_images(a, b)["p"] == pytest.approx(stats.wilcoxon(b, a).pvalue, rel=1e-10)
    b[:3] = a[:3]  # three images unchanged: dropped (zero_method "wilcox"), the rest tested exactly
    out = metrics.wilcoxon_images(a, b)
    reference = stats.wilcoxon(b, a, zero_method="wilcox", method="exact").pvalue
    assert out["p"] == pytest.approx(reference, rel=1e-10)
    assert out["images"] == 30 and out["higher"] == int((b > a).sum()) and out["lower"] == int((b < a).sum())
    assert out["higher"] + out["lower"] == 27 and out["mean_difference"] == pytest.approx(np.mean(b - a))
    assert set(out) == {"p", "images", "higher", "lower", "mean_difference", "signed_rank_sum"}  # no median any more
    nonzero = (b - a)[np.abs(b - a) > 1e-12]
    ranks = stats.rankdata(np.abs(nonzero))
    assert out["signed_rank_sum"] == pytest.approx(ranks[nonzero > 0].sum() - ranks[nonzero < 0].sum())


def test_wilcoxon_of_identical_scores_is_no_evidence():
    out = metrics.wilcoxon_images([0.5, 0.6], [0.5, 0.6])
    assert out["p"] == 1.0 and out["higher"] == out["lower"] == 0


@pytest.mark.parametrize("wins,n", [(7, 7), (6, 7), (3, 7), (0, 5), (4, 8)])
def test_sign_test_is_the_two_sided_binomial_test(wins, n):
    assert metrics.sign_test(wins, n) == pytest.approx(stats.binomtest(wins, n, 0.5).pvalue, rel=1e-12)


def test_sign_test_by_hand():
    assert metrics.sign_test(7, 7) == pytest.approx(2 * 0.5 ** 7)  # 0.0156: all 7 repeats one way
    assert metrics.sign_test(6, 7) == pytest.approx(2 * 8 * 0.5 ** 7)  # P(>= 6 of 7) = 8/128, both tails


# --- compare: the outcome rule -------------------------------------------------------------------

def test_compare_calls_a_difference_only_when_the_interval_excludes_zero():
    better = metrics.compare(A_SEEDS, B_SEEDS, score="dice")  # every pair higher: interval 0.006 to 0.021
    assert better["ci_low"] > 0 and better["outcome"] == "better"
    assert metrics.compare(B_SEEDS, A_SEEDS, score="dice")["outcome"] == "worse"
    noisy = [a + d for a, d in zip(A_SEEDS, [0.02, -0.015, 0.01, -0.01, 0.001])]  # mean +0.0012, spread 0.015
    unresolved = metrics.compare(A_SEEDS, noisy, score="dice")
    assert unresolved["ci_low"] < 0 < unresolved["ci_high"] and unresolved["outcome"] == "unresolved"
    one_pair = metrics.compare([0.5], [0.9], score="dice")  # a single seed: no interval, no verdict
    assert one_pair["pairs"] == 1 and one_pair["outcome"] == "unresolved"


def test_compare_with_lower_is_better_turns_the_sign():
    """HD95 falling by 2 px in every pair is better, rising is worse."""
    a, b = [10.0, 12.0, 11.0], [8.0, 10.1, 8.9]
    assert metrics.compare(a, b, score="hd95", lower_is_better=True)["outcome"] == "better"
    assert metrics.compare(b, a, score="hd95", lower_is_better=True)["outcome"] == "worse"
    out = metrics.compare(a, b, score="hd95", lower_is_better=True)
    assert out["difference"] == pytest.approx(-2.0) and out["score"] == "hd95" and out["lower_is_better"] is True


A_IMAGES = np.linspace(0.5, 0.9, 20)
NOISY = [a + d for a, d in zip(A_SEEDS, [0.02, -0.015, 0.01, -0.01, 0.001])]  # the seeds' interval covers 0
# b - a on the 20 images of one seed's pair, and its Wilcoxon p-value (all 20 differences nonzero):
HIGHER = np.full(20, 0.01)  # b higher on every image: p < 0.001 (scipy: 7.7e-6)
LOWER = -HIGHER  # b lower on every image: p < 0.001
B_IMAGES_HIGHER = A_IMAGES + HIGHER
MIXED = np.where(np.arange(20) % 2 == 0, 0.02, -0.018)  # higher on half, lower on half: p = 0.0545, not significant


def seeds_images(*differences) -> tuple[np.ndarray, np.ndarray]:
    """(seeds, images) scores of a and b: every seed's a is A_IMAGES, its b A_IMAGES + that seed's differences."""
    a = np.tile(A_IMAGES, (len(differences), 1))
    return a, a + np.array(differences)


def test_compare_with_images_keeps_the_seeds_verdict_unless_the_images_contradict_it():
    """The seeds' interval excludes 0 (b better); each seed's pair is also tested over the 20 images."""
    consistent = metrics.compare(A_SEEDS, B_SEEDS, *seeds_images(*[HIGHER] * 5), score="dice")
    assert consistent["outcome"] == "better" and consistent["ci_low"] > 0
    images = consistent["images"]
    assert (images["seeds"], images["images"], images["agree"], images["disagree"]) == (5, 20, 5, 0)
    assert [w["p"] for w in images["per_seed"]] == pytest.approx([stats.wilcoxon(B_IMAGES_HIGHER - A_IMAGES).pvalue] * 5)
    assert images["per_seed"][0]["p"] < 0.001
    assert [w["higher"] for w in images["per_seed"]] == [20] * 5 and "wilcoxon" not in consistent
    # images that decide nothing (p = 0.0545 in every seed) leave the seeds' verdict as it is
    undecided = metrics.compare(A_SEEDS, B_SEEDS, *seeds_images(*[MIXED] * 5), score="dice")
    assert undecided["images"]["per_seed"][0]["p"] == pytest.approx(0.0545, abs=1e-4)
    assert undecided["outcome"] == "better" and (undecided["images"]["agree"], undecided["images"]["disagree"]) == (0, 0)
    # every seed's images significantly the other way: seeds and images disagree, no verdict
    contradicted = metrics.compare(A_SEEDS, B_SEEDS, *seeds_images(*[LOWER] * 5), score="dice")
    assert contradicted["ci_low"] > 0 and contradicted["outcome"] == "unresolved"
    assert (contradicted["images"]["agree"], contradicted["images"]["disagree"]) == (0, 5)
    # "more than half of the seeds": 2 of 5 the other way (3 undecided) keep the direction, 3 of 5 do not
    two = metrics.compare(A_SEEDS, B_SEEDS, *seeds_images(LOWER, LOWER, MIXED, MIXED, HIGHER), score="dice")
    assert two["outcome"] == "better" and (two["images"]["agree"], two["images"]["disagree"]) == (1, 2)
    three = metrics.compare(A_SEEDS, B_SEEDS, *seeds_images(LOWER, LOWER, LOWER, HIGHER, HIGHER), score="dice")
    assert three["outcome"] == "unresolved" and (three["images"]["agree"], three["images"]["disagree"]) == (2, 3)


def test_an_interval_containing_zero_is_unresolved_even_if_every_seeds_images_are_significant():
    """The images never make a direction of their own: the test images say these trained networks
    differ on this test set, the seeds' interval whether that holds across trainings."""
    for difference, agree in ((HIGHER, 5), (LOWER, 0)):
        out = metrics.compare(A_SEEDS, NOISY, *seeds_images(*[difference] * 5), score="dice")
        assert out["ci_low"] < 0 < out["ci_high"] and out["outcome"] == "unresolved"
        assert all(w["p"] < 0.05 for w in out["images"]["per_seed"])
        # the mean over seeds rose (+0.0012): the images agree with that direction where b is higher on them
        assert (out["images"]["agree"], out["images"]["disagree"]) == (agree, 5 - agree)
    # a single seed pair has no interval: unresolved, however clear its images
    single = metrics.compare([0.5], [0.9], *seeds_images(HIGHER), score="dice")
    assert single["pairs"] == 1 and single["outcome"] == "unresolved" and single["images"]["agree"] == 1
    assert metrics.compare([0.5], [0.9], score="dice")["outcome"] == "unresolved"


@pytest.mark.parametrize("seed", [0, 1])
def test_each_seeds_image_test_is_scipys_wilcoxon_on_that_seeds_differences(seed):
    rng = np.random.default_rng(seed)
    a = rng.uniform(0.5, 0.9, (4, 25))
    b = a + rng.normal(0.01, 0.03, (4, 25)) * rng.integers(0, 2, (4, 25))  # some images tie
    out = metrics.compare(a.mean(1), b.mean(1), a, b, score="dice")
    assert out["images"]["seeds"] == 4 and out["images"]["images"] == 25
    for k, w in enumerate(out["images"]["per_seed"]):
        d = b[k] - a[k]
        assert w["p"] == pytest.approx(stats.wilcoxon(d[d != 0]).pvalue, rel=1e-10)
        assert w == pytest.approx(metrics.wilcoxon_images(a[k], b[k]))
        assert (w["higher"], w["lower"]) == (int((d > 0).sum()), int((d < 0).sum()))


def test_the_direction_over_images_knows_lower_is_better_and_ties():
    """11 of 20 images tie, b is higher on the other 9 (Wilcoxon p = 2/2^9): for Dice that is b better,
    for HD95 (lower is better) b worse."""
    ties = np.where(np.arange(20) < 11, 0.0, 0.01)
    dice = metrics.compare(A_SEEDS, B_SEEDS, *seeds_images(*[ties] * 5), score="dice")
    w = dice["images"]["per_seed"][0]
    assert (w["higher"], w["lower"], w["p"]) == (9, 0, pytest.approx(2 / 2 ** 9))
    assert w["mean_difference"] == pytest.approx(0.0045)
    assert dice["outcome"] == "better" and (dice["images"]["agree"], dice["images"]["disagree"]) == (5, 0)
    # HD95 falling in every seed pair (better), but higher on the images in every seed: contradicted
    a, b = [10.0, 12.0, 11.0], [8.0, 10.1, 8.9]
    hd95 = metrics.compare(a, b, *seeds_images(*[ties] * 3), score="hd95", lower_is_better=True)
    assert hd95["outcome"] == "unresolved" and (hd95["images"]["agree"], hd95["images"]["disagree"]) == (0, 3)
    # HD95 lower on every image and in every seed pair: better by both
    images = np.tile(A_IMAGES * 10, (3, 1))
    lower = metrics.compare(a, b, images, images - 1, score="hd95", lower_is_better=True)
    assert lower["outcome"] == "better" and (lower["images"]["agree"], lower["images"]["disagree"]) == (3, 0)
    assert [w["lower"] for w in lower["images"]["per_seed"]] == [20] * 3


def test_the_direction_of_a_significant_image_test_is_that_of_its_ranks():
    """b higher on 19 of 20 images by 0.01, lower on one by 0.5: the signed-rank test finds b higher
    (W+ = 190 of 210, p < 0.001), while the mean difference (-0.0155) is negative."""
    d = np.array([0.01] * 19 + [-0.5])
    out = metrics.compare([0.5, 0.6, 0.7], [0.52, 0.61, 0.72], *seeds_images(d, d, d), score="dice")
    assert out["images"]["per_seed"][0]["p"] < 0.001 and stats.wilcoxon(d, alternative="greater").pvalue < 0.001
    assert out["outcome"] == "better" and out["images"]["agree"] == 3


@pytest.mark.parametrize("a_events,b_events,a_runs,b_runs", [(4, 0, 4, 4), (3, 1, 4, 4), (0, 0, 3, 3), (1, 0, 1, 1),
                                                             (2, 7, 10, 12), (5, 0, 6, 3)])
def test_compare_counts_is_scipys_fisher_exact_test(a_events, b_events, a_runs, b_runs):
    out = metrics.compare_counts(a_events, b_events, a_runs, b_runs)
    table = [[a_events, a_runs - a_events], [b_events, b_runs - b_events]]
    assert out == {"a": a_events, "a_runs": a_runs, "b": b_events, "b_runs": b_runs,
                   "p": pytest.approx(stats.fisher_exact(table).pvalue, rel=1e-12)}


def test_compare_counts_by_hand():
    # 4 of 4 runs against 0 of 4: the one table this extreme of C(8, 4) = 70 equally likely ones, both tails
    assert metrics.compare_counts(4, 0, 4, 4)["p"] == pytest.approx(2 / 70)
    assert metrics.compare_counts(1, 0, 1, 1)["p"] == pytest.approx(1.0)  # one run each: no evidence


# --- fit verdict on synthetic histories ------------------------------------------------------------

def good_epochs(n: int = 8, **changes) -> list[dict]:
    """Curves of a good fit: losses level, train and validation scores equal, level and well above the floor."""
    fields = {"train_loss": 0.30, "val_loss": 0.30, "val_score": 0.98, "train_eval_score": 0.98, **changes}
    return [epoch(k, **fields) for k in range(1, n + 1)]


def rising(n: int = 8, lrs=None, gap: float = 0.0) -> list[dict]:
    """Validation score still climbing by 0.02 an epoch (to 0.96), training ``gap`` above it, validation loss falling."""
    lrs = lrs or [0.1] * n
    return [epoch(k, train_loss=1.0 - 0.05 * k, val_loss=1.0 - 0.05 * k, val_score=0.80 + 0.02 * k,
                  train_eval_score=0.80 + 0.02 * k + gap, lr=lr) for k, lr in zip(range(1, n + 1), lrs)]


COSINE = [0.1 * (1 + math.cos(math.pi * k / 8)) / 2 for k in range(1, 9)]  # annealed: ends at 0


def test_late_gain_is_the_best_of_the_last_quarter_above_the_best_before():
    # 8 epochs: the last quarter is epochs 7-8 (best 0.69), the best before it 0.70 (epoch 2)
    assert metrics.late_gain([0.5, 0.7, 0.6, 0.65, 0.62, 0.66, 0.64, 0.69]) == pytest.approx(-0.01)
    assert metrics.late_gain([0.5, 0.6, 0.6, 0.6, 0.6, 0.6, 0.6, 0.63]) == pytest.approx(0.03)  # its best, not its last
    assert metrics.late_gain([0.1, 0.2, 0.3, 0.4, 0.5]) == pytest.approx(0.1)  # 5 epochs: a quarter is the last one
    assert metrics.late_gain([0.8] * 9 + [0.81, 0.83, 0.82]) == pytest.approx(0.03)  # 12 epochs: the last 3
    assert metrics.late_gain([0.9, 0.8]) == pytest.approx(-0.1)  # 2 epochs: the last against the first
    assert metrics.late_gain([0.5, float("nan"), 0.6, 0.7]) == pytest.approx(0.1)  # NaN ignored: 0.7 - 0.6
    assert math.isnan(metrics.late_gain([0.9]))  # one epoch: nothing before the last quarter


def test_a_level_run_is_a_good_fit():
    verdict = fit_verdict(history(good_epochs()), score="accuracy")
    assert verdict["verdict"] == "good fit" and verdict["borderline"] == []
    assert (verdict["gap"], verdict["rise"], verdict["late_gain"], verdict["train_late_gain"]) == pytest.approx(
        (0.0, 0.0, 0.0, 0.0))
    assert verdict["floor"] == 0.98 and set(verdict["states"].values()) == {"clear"}
    assert set(verdict["states"]) == {"late_gain", "gap", "rise", "floor"} == set(metrics.THRESHOLDS["accuracy"])
    assert verdict["why"] == ("training score 98.00 % at the end; "
                              "last quarter: validation +0.00 points, training +0.00 points; training above validation "
                              "by +0.00 points; validation loss +0% above its minimum")


def test_a_validation_loss_risen_from_its_minimum_is_over_fitting():
    epochs = good_epochs(4)
    for e, loss in zip(epochs, [0.40, 0.30, 0.32, 0.36]):  # minimum at epoch 2, final 20 % above it
        e["val_loss"] = loss
    verdict = fit_verdict(history(epochs), score="accuracy")
    assert verdict["verdict"] == "over-fitting" and verdict["best_val_loss_epoch"] == 2
    assert verdict["rise"] == pytest.approx(0.2) and verdict["states"]["rise"] == "exceeded"
    assert verdict["why"].endswith("validation loss +20% above its minimum")
    # rise threshold 10 %, margin 2.5 %: 6.7 % is clear, 11.7 % borderline, 13.3 % exceeded
    for final, expected in ((0.32, "good fit"), (0.335, "borderline"), (0.34, "over-fitting")):
        epochs[-1]["val_loss"] = final
        assert fit_verdict(history(epochs), score="accuracy")["verdict"] == expected, final


def test_a_train_validation_gap_is_over_fitting_by_the_scores_own_threshold():
    epochs = good_epochs(train_eval_score=0.99, val_score=0.97)  # 0.02 above validation
    assert fit_verdict(history(epochs), score="accuracy")["verdict"] == "over-fitting"  # accuracy: 0.01 +- 0.0025
    assert fit_verdict(history(epochs), score="dice")["verdict"] == "good fit"  # Dice: 0.03 +- 0.0075
    dice = fit_verdict(history(good_epochs(train_eval_score=0.99, val_score=0.95)), score="dice")
    assert dice["verdict"] == "over-fitting" and dice["gap"] == pytest.approx(0.04)
    assert dice["why"] == ("training score 0.990 at the end; "
                           "last quarter: validation +0.000, training +0.000; training above validation by +0.040; "
                           "validation loss +0% above its minimum")  # Dice: 3 decimals
    accuracy = fit_verdict(history(epochs), score="accuracy")
    assert accuracy["gap"] == pytest.approx(0.02) and "training above validation by +2.00 points" in accuracy["why"]
    near = fit_verdict(history(good_epochs(train_eval_score=0.981, val_score=0.97)), score="accuracy")
    assert near["verdict"] == "borderline" and near["borderline"] == ["gap"]  # 0.011: within 0.0025 of 0.01


def test_a_validation_score_still_rising_in_the_last_quarter_is_not_converged():
    verdict = fit_verdict(history(rising()), score="accuracy")
    # last quarter: epochs 7-8, best 0.96; the best before it 0.92 (epoch 6)
    assert verdict["verdict"] == "not converged" and verdict["late_gain"] == pytest.approx(0.04)
    assert verdict["train_late_gain"] == pytest.approx(0.04) and verdict["states"]["late_gain"] == "exceeded"
    assert verdict["why"].startswith("training score 96.00 % at the end; last quarter: validation +4.00 points, "
                                     "training +4.00 points; ")
    # checked before over-fitting: training 0.02 above validation as well
    both = fit_verdict(history(rising(gap=0.02)), score="accuracy")
    assert both["verdict"] == "not converged" and both["states"]["gap"] == "exceeded"


def test_an_annealed_schedule_still_improving_at_the_end_is_not_converged():
    """No exemption for a schedule annealed to 0 (cosine, one-cycle): a validation score still rising
    in the last quarter says the run has not converged, whatever the learning rate did."""
    assert COSINE[-1] == pytest.approx(0.0, abs=1e-12)
    cosine = fit_verdict(history(rising(lrs=COSINE)), score="accuracy")
    assert cosine["verdict"] == "not converged" and cosine["late_gain"] == pytest.approx(0.04)
    one_cycle = [0.04, 0.1, 0.09, 0.07, 0.05, 0.03, 0.01, 0.0]
    assert fit_verdict(history(rising(lrs=one_cycle), initial_lr=0.004), score="accuracy")["verdict"] == "not converged"
    assert "annealed" not in cosine and cosine == fit_verdict(history(rising()), score="accuracy")  # the lr is not read


def test_a_late_gain_within_the_margin_is_borderline_and_names_its_criterion():
    """Accuracy's late gain: threshold 0.15 points, margin 0.05: a gain of 0.17 points is borderline."""
    scores = [0.97] * 6 + [0.9717, 0.971]
    epochs = [epoch(k, train_loss=0.3, val_loss=0.3, val_score=v, train_eval_score=v) for k, v in enumerate(scores, 1)]
    verdict = fit_verdict(history(epochs), score="accuracy")
    assert verdict["late_gain"] == pytest.approx(0.0017) and verdict["verdict"] == "borderline"
    assert verdict["borderline"] == ["late_gain"] and verdict["states"]["late_gain"] == "borderline"
    assert "last quarter: validation +0.17 points, training +0.17 points" in verdict["why"]
    epochs[6]["val_score"] = epochs[6]["train_eval_score"] = 0.9725  # 0.25 points: beyond the margin
    assert fit_verdict(history(epochs), score="accuracy")["verdict"] == "not converged"
    for e in epochs[6:]:
        e["val_score"] = e["train_eval_score"] = 0.9705  # 0.05 points: clear of it
    assert fit_verdict(history(epochs), score="accuracy")["verdict"] == "good fit"
    # two criteria near their thresholds: both named, in THRESHOLDS' order
    both = fit_verdict(history(good_epochs(train_eval_score=0.952, val_score=0.941)), score="accuracy")
    assert both["verdict"] == "borderline" and both["borderline"] == ["gap", "floor"]


def test_a_training_score_below_the_floor_is_under_fitting_before_anything_else_but_a_trivial_run():
    """A network that does not fit even its training data (accuracy below 95 %, Dice below 0.70, beyond
    the margin) under-fits, whatever its curves; its train-validation gap means little then."""
    low = fit_verdict(history(good_epochs(train_eval_score=0.94, val_score=0.90)), score="accuracy")
    assert low["verdict"] == "under-fitting" and low["floor"] == 0.94 and low["states"]["floor"] == "exceeded"
    assert low["gap"] == pytest.approx(0.04) and low["states"]["gap"] == "exceeded"  # over-fitting too, by the gap
    at_floor = fit_verdict(history(good_epochs(train_eval_score=0.95, val_score=0.95)), score="accuracy")
    assert at_floor["verdict"] == "borderline" and at_floor["borderline"] == ["floor"]  # 0.95 +- 0.005
    assert fit_verdict(history(good_epochs(train_eval_score=0.96, val_score=0.96)), score="accuracy")["verdict"] == \
        "good fit"
    dice = fit_verdict(history(good_epochs(train_eval_score=0.65, val_score=0.65)), score="dice")
    assert dice["verdict"] == "under-fitting" and dice["floor"] == 0.65
    assert fit_verdict(history(good_epochs(train_eval_score=0.69, val_score=0.69)), score="dice")["borderline"] == \
        ["floor"]  # 0.70 +- 0.02
    assert fit_verdict(history(good_epochs(train_eval_score=0.75, val_score=0.75)), score="dice")["verdict"] == \
        "good fit"
    # before "not converged": still rising, but far below the floor
    low_rising = [dict(e, train_eval_score=e["val_score"] - 0.1) for e in rising(lrs=COSINE)]
    assert fit_verdict(history(low_rising), score="accuracy")["verdict"] == "under-fitting"
    trivial = fit_verdict(history(good_epochs(train_eval_score=0.5, share=0.995)), score="dice")
    assert trivial["verdict"] == "one class"  # a trivial solution is named as such


def test_the_configuration_verdict_counts_each_verdict_most_frequent_first():
    assert metrics.configuration_verdict(["good fit"] * 5) == "good fit"  # all seeds agree: no count
    assert metrics.configuration_verdict(["good fit", "borderline", "good fit", "borderline", "good fit"]) == \
        "good fit 3, borderline 2"
    assert metrics.configuration_verdict(["not converged", "over-fitting", "not converged", "good fit"]) == \
        "not converged 2, over-fitting 1, good fit 1"
    assert metrics.configuration_verdict(["over-fitting", "good fit"]) == "over-fitting 1, good fit 1"  # a tie
    # the same verdict alone
    assert metrics.most_frequent(["good fit", "borderline", "good fit"]) == "good fit"
    assert metrics.most_frequent(["over-fitting", "good fit"]) == "over-fitting"  # a tie: the first


def test_a_network_predicting_one_class_is_one_class_whatever_its_curves():
    verdict = fit_verdict(history(good_epochs(share=0.995)), score="dice")
    assert verdict["verdict"] == "one class" and verdict["majority_share"] == 0.995
    assert "99.5% of the validation predictions" in verdict["why"]
    assert fit_verdict(history(good_epochs(share=0.98)), score="dice")["verdict"] == "good fit"  # below 99 %


@pytest.mark.parametrize("train_losses,first_loss", [
    ([2.2, 40.0, 23782.0], None),  # rose far above the first epoch's
    ([2.2, 1.0, float("nan")], None),  # ends at NaN
    ([0.9, float("inf")], 2.3),  # ends at infinity
    ([23782.0], 2.3),  # one epoch (--quick): judged against the first iteration's loss
    ([0.5, 1.1], 0.7),  # 2.2 x the start (the smaller of the first iteration's and the first epoch's)
])
def test_a_diverged_run_is_called_diverged(train_losses, first_loss):
    epochs = [epoch(k + 1, train_loss=loss, share=1.0) for k, loss in enumerate(train_losses)]  # and one class
    verdict = fit_verdict(history(epochs, first_loss=first_loss), score="accuracy")
    assert verdict["verdict"] == "diverged" and "training loss" in verdict["why"]  # diverged comes first


@pytest.mark.parametrize("train_losses,first_loss", [
    ([0.6560, 0.6562], 0.6931),  # stuck at a trivial prediction: level
    ([0.5, 0.9], 0.7),  # 1.8 x the start: worse, but not the DIVERGED_FACTOR (2 x) of a divergence
])
def test_a_flat_or_merely_worse_run_is_not_called_diverged(train_losses, first_loss):
    epochs = [epoch(k + 1, train_loss=loss, train_eval_score=0.97, val_score=0.97) for k, loss in enumerate(train_losses)]
    assert fit_verdict(history(epochs, first_loss=first_loss), score="accuracy")["verdict"] == "good fit"
