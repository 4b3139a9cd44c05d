"""common.evaluation: per-image segmentation metrics from stored runs, test-time augmentation (exact
for a pointwise model, equivariant for any), re-scored results, the speed of learning, the
numbers that describe a test case, and the classifier's errors, on hand-made numbers."""
import numpy as np
import pytest
import torch
from scipy import stats
from torch import nn

from common import evaluation, metrics
from common.models import SegNet
from common.train import Runs
from helpers import epoch, stored_runs, toy_runs


def logits_from_masks(masks: torch.Tensor) -> torch.Tensor:
    """(N, H, W) 0/1 masks -> (N, 2, H, W) logits whose arg-max is the mask."""
    return torch.stack([torch.zeros(masks.shape), masks.float() * 2 - 1], dim=1)


def test_gland_masks_are_the_argmax_on_the_cpu():
    logits = torch.tensor([[[[0.0, 1.0]], [[1.0, 0.0]]]])  # (1, 2, 1, 2): gland, background
    masks = evaluation.gland_masks(logits)
    assert masks.dtype == torch.bool and masks.tolist() == [[[True, False]]]


# --- per-image metrics -------------------------------------------------------------------------

def square(size=16, top=4, left=4, side=6) -> torch.Tensor:
    mask = torch.zeros(size, size, dtype=torch.long)
    mask[top:top + side, left:left + side] = 1
    return mask


@pytest.fixture
def two_seeds(tmp_path):
    """Two seeds predicting two images: seed 0 exactly, seed 1 with a square shifted by one pixel."""
    truth = torch.stack([square(), square(left=6)])
    preds = [truth, torch.stack([square(left=5), square(left=7)])]
    return stored_runs(tmp_path, test_logits=[logits_from_masks(p) for p in preds]), truth


def test_per_image_dice_from_the_stored_test_logits(two_seeds):
    runs, truth = two_seeds
    dice = evaluation.per_image(runs, truth)
    assert set(dice) == {"dice"} and dice["dice"].shape == (2, 2)
    # a 6x6 square shifted by a column: 30 of 36 pixels shared, 2*30/72
    np.testing.assert_allclose(dice["dice"], [[1.0, 1.0], [60 / 72, 60 / 72]], rtol=1e-6)
    other = evaluation.per_image(runs, truth, masks=[truth.bool(), truth.bool()])
    np.testing.assert_array_equal(other["dice"], np.ones((2, 2)))  # masks given: the stored logits are not used


def test_per_image_boundary_metrics(two_seeds):
    runs, truth = two_seeds
    scores = evaluation.per_image(runs, truth, boundary=True)
    assert set(scores) == {"dice", "boundary_f1_1px", "boundary_f1_2px", "hd95"}
    np.testing.assert_array_equal(scores["hd95"], [[0.0, 0.0], [1.0, 1.0]])  # one pixel off
    np.testing.assert_array_equal(scores["boundary_f1_1px"], np.ones((2, 2)))  # within 1 px everywhere
    summary = evaluation.summarize_per_image(scores)
    assert summary["hd95"]["mean"] == 0.5 and summary["hd95"]["n"] == 2  # over the seeds' means 0 and 1


def test_compare_configs_pairs_seeds_and_images_and_knows_lower_is_better():
    a = {"dice": np.array([[0.5, 0.7], [0.6, 0.8]]), "hd95": np.array([[4.0, 2.0], [4.0, 2.0]])}
    b = {"dice": np.array([[0.6, 0.6], [0.7, 0.9]]), "hd95": np.array([[3.0, 2.0], [5.0, 2.0]])}
    out = evaluation.compare_configs(a, b)
    assert out["dice"]["difference"] == pytest.approx(0.05)  # seed means 0.6/0.7 -> 0.6/0.8
    assert out["dice"]["per_pair"] == pytest.approx([0.0, 0.1])
    # each seed's pair over its images: seed 0 0.5/0.7 -> 0.6/0.6 (one higher, one lower), seed 1 both higher
    dice = out["dice"]["images"]
    assert (dice["seeds"], dice["images"]) == (2, 2)
    assert [(w["higher"], w["lower"]) for w in dice["per_seed"]] == [(1, 1), (2, 0)]
    assert [w["mean_difference"] for w in dice["per_seed"]] == pytest.approx([0.0, 0.1])
    assert dice["per_seed"] == [metrics.wilcoxon_images(a["dice"][k], b["dice"][k]) for k in (0, 1)]
    assert out["hd95"]["lower_is_better"] and not out["dice"]["lower_is_better"]
    # HD95: seed 0 4 -> 3 on image 0, seed 1 4 -> 5; image 1 ties (2 vs 2) in both
    hd95 = out["hd95"]["images"]
    assert [(w["higher"], w["lower"]) for w in hd95["per_seed"]] == [(0, 1), (1, 0)]
    assert (dice["agree"], dice["disagree"], hd95["agree"], hd95["disagree"]) == (0, 0, 0, 0)  # p = 1, 0.5: none
    assert {c["outcome"] for c in out.values()} == {"unresolved"}  # two seeds, two images: too few to tell


# --- test-time augmentation --------------------------------------------------------------------

def test_pointwise_model_gives_its_own_log_probabilities():
    torch.manual_seed(0)
    model = nn.Conv2d(2, 3, kernel_size=1)  # commutes with every flip and rotation
    x = torch.randn(4, 2, 8, 8)
    expected = model(x).log_softmax(dim=1)
    assert torch.allclose(evaluation.dihedral_tta_logits(model, x), expected, atol=1e-5)


def test_tta_is_the_average_of_the_eight_mapped_back_predictions_and_equivariant():
    torch.manual_seed(1)
    model = SegNet(channels=(4, 8)).eval()
    x = torch.randn(2, 2, 16, 16)
    by_hand = torch.zeros(2, 2, 16, 16)
    with torch.no_grad():
        for image in (x, x.flip(3)):
            for k in range(4):
                p = torch.rot90(model(torch.rot90(image, k, (2, 3))).softmax(1), -k, (2, 3))
                by_hand += p.flip(3) if image is not x else p
        out = evaluation.dihedral_tta_logits(model, x, batch_size=1)
        assert torch.allclose(out.exp(), by_hand / 8, atol=1e-5)
        assert torch.allclose(out.exp().sum(1), torch.ones(2, 16, 16), atol=1e-5)
        # predicting a rotated image gives the rotated prediction (a single pass does not)
        rotated = evaluation.dihedral_tta_logits(model, torch.rot90(x, 1, (2, 3)))
        assert torch.allclose(rotated, torch.rot90(out, 1, (2, 3)), atol=1e-4)
        assert not torch.allclose(model(torch.rot90(x, 1, (2, 3))), torch.rot90(model(x), 1, (2, 3)), atol=1e-3)


def test_confident_predictions_stay_finite():
    model = nn.Conv2d(2, 2, kernel_size=1)
    with torch.no_grad():
        model.weight.fill_(0)
        model.bias.copy_(torch.tensor([0.0, 500.0]))  # the probability of class 0 underflows to 0
    out = evaluation.dihedral_tta_logits(model, torch.zeros(1, 2, 4, 4))
    assert torch.isfinite(out).all() and torch.allclose(out[:, 0], torch.full((1, 4, 4), -500.0), atol=1e-3)


def test_non_square_images_are_rejected():
    with pytest.raises(ValueError, match="square"):
        evaluation.dihedral_tta_logits(nn.Identity(), torch.zeros(1, 2, 8, 16))


def test_tta_logits_use_each_runs_stored_weights(tmp_path):
    torch.manual_seed(2)
    nets = [SegNet(channels=(4, 8), batch_norm=True) for _ in range(2)]
    for net in nets:
        net.train()(torch.randn(4, 2, 8, 8))  # running statistics unlike a fresh model's
    runs = stored_runs(tmp_path, models=nets, model={"class": "SegNet", "channels": (4, 8), "batch_norm": True})
    x = torch.randn(3, 2, 8, 8)
    logits = evaluation.tta_logits(runs, x)
    assert len(logits) == 2 and not torch.allclose(logits[0], logits[1])
    for net, lg in zip(nets, logits):
        assert torch.allclose(lg, evaluation.dihedral_tta_logits(net.eval(), x), atol=1e-6)


def test_with_test_prediction_replaces_the_test_scores_only(tmp_path):
    truth = torch.stack([square(), square(left=6), torch.zeros(16, 16, dtype=torch.long)])
    history = {"iter_loss": [0.7, 0.6], "initial_lr": 0.1, "epochs": [epoch(1, train_loss=0.6, val_score=0.5)]}
    records = [{"seed": k, "hyperparameters": {"num_weights": 7}, "history": history, "test": {"dice": 0.0, "n": 3},
                "train_time_per_epoch_s": {"mean": 1.0}} for k in range(2)]
    runs = stored_runs(tmp_path, records=records)
    logits = [logits_from_masks(truth) * 3.0,
              logits_from_masks(torch.stack([square(left=5), square(left=6), square()]))]
    out = evaluation.with_test_prediction(runs, logits, truth, "best", "best + TTA", "with TTA")
    assert (out["name"], out["label"]) == ("best", "best + TTA") and runs.name == "toy"
    # seed 0 exact (the empty image: both empty, Dice 1); seed 1: 60/72, 1, and 0 (gland where there is none)
    dice = [run["test"]["dice"] for run in out["runs"]]
    assert dice == pytest.approx([1.0, (60 / 72 + 1 + 0) / 3])
    for run, lg in zip(out["runs"], logits):
        assert run["test"]["loss"] == pytest.approx(nn.functional.cross_entropy(lg, truth).item())
        assert run["test"]["n"] == 3 and run["test"]["evaluation"] == "with TTA" and run["history"] == history
    assert out["summary"]["test_dice"]["mean"] == pytest.approx(np.mean(dice))
    assert runs.records[0]["test"] == {"dice": 0.0, "n": 3}  # the runs themselves are left as they were
    with pytest.raises(ValueError):
        evaluation.with_test_prediction(runs, logits[:1], truth, "x", "x", "y")  # one prediction per seed


# --- speed of learning, comparisons, curves ------------------------------------------------------

def _run(val_scores, seconds=2.0, test=0.9, losses=None):
    return {"history": {"iter_loss": losses or [1.0, 0.5],
                        "epochs": [{"epoch": k + 1, "val_score": v, "val_loss": 1 - v, "train_time_s": seconds}
                                   for k, v in enumerate(val_scores)]},
            "test": {"accuracy": test}}


def test_speed_of_learning_finds_the_first_epoch_reaching_the_threshold():
    runs = {"runs": [_run([0.3, 0.74, 0.76, 0.9]), _run([0.3, 0.8, 0.9, 0.95], seconds=3.0), _run([0.1, 0.2])]}
    speed = evaluation.speed_of_learning(runs, 0.75)
    assert speed["per_seed"] == [{"epoch": 3, "seconds": 6.0}, {"epoch": 2, "seconds": 6.0},
                                 {"epoch": None, "seconds": None}]
    assert (speed["seeds_reaching"], speed["seeds"], speed["mean_epoch"], speed["mean_seconds"]) == (2, 3, 2.5, 6.0)
    never = evaluation.speed_of_learning(runs, 0.99)
    assert never["seeds_reaching"] == 0 and never["mean_epoch"] is None and never["mean_seconds"] is None
    assert evaluation.speed_of_learning({"runs": [_run([0.75])]}, 0.75)["mean_epoch"] == 1.0  # reaching: >=


def test_late_swing_is_the_largest_change_between_consecutive_epochs_of_the_last_quarter():
    # 8 epochs: the last 2 and the step into them; the early jump of 0.5 does not count
    runs = toy_runs([_run([0.1, 0.6, 0.6, 0.6, 0.6, 0.7, 0.9, 0.8]), _run([0.5, 0.5, 0.5, 0.6, 0.6, 0.6, 0.6, 0.45])])
    assert evaluation.late_swing(runs) == pytest.approx(0.2)  # 0.7 -> 0.9 (seed 0); seed 1's fall is 0.15
    assert evaluation.late_swing(toy_runs([_run([0.7])])) == 0.0  # one epoch: nothing changes


def test_paired_epochs_to_threshold_pairs_seed_k_with_seed_k():
    """Threshold 0.75; seed by seed, the first epochs of a and b: (3, 1), (2, 2), (never, 2), (3, never), (2, 1)."""
    a = toy_runs([_run([0.3, 0.74, 0.76, 0.9]), _run([0.3, 0.8, 0.9]), _run([0.1, 0.2]), _run([0.5, 0.6, 0.8]),
                  _run([0.5, 0.9])])
    b = {"runs": [_run([0.8, 0.9]), _run([0.3, 0.76]), _run([0.2, 0.8]), _run([0.1, 0.2, 0.3]), _run([0.76])]}
    out = evaluation.paired_epochs_to_threshold(a, b, 0.75)  # a Runs or its results-file form, as speed_of_learning
    assert (out["threshold"], out["both_reach"], out["a_epochs"], out["b_epochs"]) == (0.75, 3, [3, 2, None, 3, 2],
                                                                                    [1, 2, 2, None, 1])
    # b - a over the 3 pairs where both reach it: -2, 0, -1; mean -1, std 1, t(0.975, 2) = 4.303
    assert out["per_pair"] == [-2, 0, -1] and out["difference"] == pytest.approx(-1.0)
    half = stats.t.ppf(0.975, 2) / np.sqrt(3)
    assert (out["ci_low"], out["ci_high"]) == pytest.approx((-1 - half, -1 + half))
    assert out["outcome"] == "unresolved"  # the interval holds 0
    # no pair where both reach it: no difference
    never = evaluation.paired_epochs_to_threshold(toy_runs([_run([0.1, 0.2]), _run([0.8])]),
                                                  toy_runs([_run([0.9]), _run([0.3])]), 0.75)
    assert {k: v for k, v in never.items() if k not in ("difference", "ci_low", "ci_high")} == {
        "threshold": 0.75, "pairs": 2, "both_reach": 0, "a_epochs": [None, 1], "b_epochs": [1, None],
        "outcome": "unresolved"}
    assert all(np.isnan(never[k]) for k in ("difference", "ci_low", "ci_high"))  # no pair to take a difference of
    nobody = evaluation.paired_epochs_to_threshold(toy_runs([_run([0.1])]), toy_runs([_run([0.2])]), 0.75)
    assert nobody["both_reach"] == 0 and np.isnan(nobody["difference"]) and nobody["outcome"] == "unresolved"


def test_paired_epochs_to_threshold_counts_every_seed_pair():
    """5 seed pairs, 2 where both reach 0.75: "pairs" stays 5."""
    a = toy_runs([_run([0.8])] * 2 + [_run([0.1])] * 3)
    b = toy_runs([_run([0.1, 0.8])] * 2 + [_run([0.9])] * 3)
    out = evaluation.paired_epochs_to_threshold(a, b, 0.75)
    assert out["both_reach"] == 2
    assert out["pairs"] == 5


def test_paired_epochs_to_threshold_is_sooner_or_later_only_where_the_interval_excludes_0():
    """b reaches 0.75 at epochs 1, 2, 2 where a does at 3, 4, 5: b - a = -2, -2, -3, interval -3.8 to -0.9."""
    a = toy_runs([_run([0.1, 0.2, 0.8]), _run([0.1, 0.2, 0.3, 0.8]), _run([0.1, 0.2, 0.3, 0.4, 0.8])])
    b = toy_runs([_run([0.8]), _run([0.1, 0.8]), _run([0.1, 0.9])])
    out = evaluation.paired_epochs_to_threshold(a, b, 0.75)
    assert out["difference"] == pytest.approx(-7 / 3) and out["ci_high"] < 0 and out["outcome"] == "sooner"
    assert evaluation.paired_epochs_to_threshold(b, a, 0.75)["outcome"] == "later"


def one_hot_logits(predictions) -> torch.Tensor:
    """(N,) predicted classes -> (N, 3) logits whose arg-max they are."""
    return nn.functional.one_hot(torch.tensor(predictions), 3).float()


TARGETS = torch.tensor([0, 1, 2, 0, 1, 2])
# three seeds' predictions of the six test images: right on [1,1,1,0,0,0], [1,1,0,1,1,0], [1,0,1,1,1,0]
A_PREDICTIONS = [[0, 1, 2, 1, 2, 0], [0, 1, 0, 0, 1, 0], [0, 0, 2, 0, 1, 1]]
A_CORRECT = [[1, 1, 1, 0, 0, 0], [1, 1, 0, 1, 1, 0], [1, 0, 1, 1, 1, 0]]  # per seed: right on image k


def classification_runs(folder, predictions, tests):
    return stored_runs(folder, test_logits=[one_hot_logits(p) for p in predictions], score="accuracy",
                       records=[_run([0.5, v], test=t) for v, t in zip((0.8, 0.7, 0.75), tests)])


def test_per_image_scores_of_a_classifier_are_its_correctness_per_seed(tmp_path):
    runs = classification_runs(tmp_path, A_PREDICTIONS, (0.5, 4 / 6, 4 / 6))
    scores = evaluation.per_image_scores(runs, TARGETS)
    assert scores.shape == (3, 6) and scores.tolist() == A_CORRECT  # (seeds, images), no mean over the seeds
    assert evaluation.per_image_scores(runs, torch.tensor([0, 1, 2, 1, 2, 0])).tolist() == [
        [1, 1, 1, 1, 1, 1], [1, 1, 0, 0, 0, 1], [1, 0, 1, 0, 0, 0]]  # other targets: seed 0 right everywhere


def test_per_image_scores_of_a_segmentation_are_the_dice_per_seed(two_seeds):
    runs, truth = two_seeds
    scores = evaluation.per_image_scores(runs, truth)
    assert scores.shape == (2, 2)  # (seeds, images)
    np.testing.assert_allclose(scores, [[1.0, 1.0], [60 / 72, 60 / 72]], rtol=1e-6)


def test_compare_runs_pairs_test_scores_by_seed_and_each_seeds_test_images_by_image(tmp_path):
    a = classification_runs(tmp_path / "a", A_PREDICTIONS, (0.90, 0.91, 0.92))
    b = classification_runs(tmp_path / "b", [TARGETS.tolist()] * 3, (0.93, 0.95, 0.945))  # b: every image right
    on_test = evaluation.compare_runs(a, b, TARGETS)
    assert on_test["difference"] == pytest.approx(0.095 / 3) and on_test["outcome"] == "better"  # +0.03, 0.04, 0.025
    assert on_test["score"] == "accuracy" and on_test["pairs"] == 3
    # each seed's pair image by image: b right everywhere, a wrong on 3, 2 and 2 of the 6 images
    images = on_test["images"]
    assert images["per_seed"] == [metrics.wilcoxon_images(correct, [1.0] * 6) for correct in A_CORRECT]
    assert [(w["images"], w["higher"], w["lower"]) for w in images["per_seed"]] == [(6, 3, 0), (6, 2, 0), (6, 2, 0)]
    # exact two-sided p of 3 (2) differences all one way: 2/2^3 (2/2^2), none significant
    assert [w["p"] for w in images["per_seed"]] == pytest.approx([0.25, 0.5, 0.5])
    assert (images["seeds"], images["images"], images["agree"], images["disagree"]) == (3, 6, 0, 0)
    on_val = evaluation.compare_runs(a, b, on="validation")  # final validation scores 0.80, 0.70, 0.75 both
    assert on_val["difference"] == pytest.approx(0.0) and on_val["outcome"] == "unresolved"
    assert "images" not in on_val and on_val["per_pair"] == pytest.approx([0.0] * 3)
    lower = classification_runs(tmp_path / "c", A_PREDICTIONS, (0.85, 0.86, 0.87))
    worse_val = evaluation.compare_runs(a, stored_runs(tmp_path / "d", score="accuracy", records=[
        _run([0.5, v], test=0.9) for v in (0.70, 0.61, 0.66)]), on="validation")
    assert worse_val["difference"] == pytest.approx(-0.0933333, abs=1e-6) and worse_val["outcome"] == "worse"
    assert evaluation.compare_runs(a, lower, TARGETS)["outcome"] == "worse"  # same images: the seeds decide


def test_compare_runs_adds_each_seeds_wilcoxon_test_over_test_images(tmp_path):
    truth = torch.stack([square(left=k % 8) for k in range(8)])
    good = [logits_from_masks(truth)] * 2
    shifted = [logits_from_masks(torch.roll(truth, 1, dims=2))] * 2  # every image one column off: Dice 5/6
    records = [{"seed": k, "hyperparameters": {"num_weights": 1}, "history": {"epochs": [{"val_score": 0.5}]},
                "test": {"dice": d}, "train_time_per_epoch_s": {"mean": 1.0}} for k, d in enumerate((0.8, 0.81))]
    a = stored_runs(tmp_path / "a", test_logits=shifted, records=records)
    b = stored_runs(tmp_path / "b", test_logits=good, records=[{**r, "test": {"dice": 1.0}} for r in records])
    out = evaluation.compare_runs(a, b, truth)
    assert [(w["higher"], w["lower"]) for w in out["images"]["per_seed"]] == [(8, 0)] * 2
    assert [w["p"] for w in out["images"]["per_seed"]] == pytest.approx([2 / 2 ** 8] * 2)  # significant in both seeds
    assert [w["mean_difference"] for w in out["images"]["per_seed"]] == pytest.approx([1 - 60 / 72] * 2, rel=1e-6)
    # seeds: +0.2 and +0.19, interval above 0; both seeds' images agree
    assert out["outcome"] == "better" and (out["images"]["agree"], out["images"]["disagree"]) == (2, 0)


def test_curve_differences_are_the_largest_seed_by_seed():
    a = stored_runs_records([_run([0.5, 0.6], test=0.9, losses=[1.0, 0.5]), _run([0.5, 0.7], test=0.8)])
    b = stored_runs_records([_run([0.5, 0.65], test=0.9, losses=[1.0, 0.4]), _run([0.5, 0.7], test=0.85)])
    out = evaluation.curve_differences(a, b)
    assert out == pytest.approx({"iter_loss": 0.1, "val_loss": 0.05, "val_score": 0.05, "test_score": 0.05})


def stored_runs_records(records) -> Runs:
    return toy_runs(records)


# --- describing a test case and the classifier's errors ------------------------------------------

NORM = {"mean": [0.5, 0.5], "std": [0.25, 0.25]}


def test_display_images_are_the_stains_in_red_and_green():
    inputs = torch.tensor([[[[2.0]], [[-2.0]]]])  # normalised: raw 0.5 + 0.25 x = 1.0 and 0.0
    shown = evaluation.display_images(inputs, NORM)
    assert shown.shape == (1, 1, 1, 3) and shown[0, 0, 0].tolist() == [1.0, 0.0, 0.0]  # blue is always 0


def test_describe_case_by_hand():
    truth = torch.zeros(2, 4, 4, dtype=torch.long)
    truth[:, :2] = 1  # half the pixels are gland
    pred = truth.clone()
    pred[1] = 1  # image 1: everything predicted gland -> 8 false positives in 16 pixels
    inputs = torch.zeros(2, 2, 4, 4)
    inputs[:, :, :2] = 1.0
    inputs[1, 1] -= 1.0  # image 1: less green stain
    dice = np.array([[1.0, 2 * 8 / (8 + 16)]])
    case = evaluation.describe_case(1, dice, inputs, truth, pred, ["a.png", "b.png"], NORM)
    assert case["name"] == "b.png" and case["dice_mean"] == pytest.approx(2 / 3) and case["dice_per_seed"] == [2 / 3]
    assert case["median_dice"] == pytest.approx((1 + 2 / 3) / 2)
    assert case["stats"]["gland_fraction"] == 0.5 and case["stats"]["false_positive_fraction"] == 0.5
    assert case["stats"]["false_negative_fraction"] == 0.0 and case["stats"]["largest_gland_found"] == 1.0
    raw = inputs[1] * 0.25 + 0.5
    assert case["stats"]["red_share"] == pytest.approx((raw[0].mean() / raw.mean(dim=(1, 2)).sum()).item())
    assert set(case) == {"index", "name", "dice_mean", "dice_per_seed", "median_dice", "stats", "median_stats"}


def test_describe_case_finds_the_largest_gland_and_how_much_of_it_is_found():
    truth = torch.zeros(2, 8, 8, dtype=torch.long)
    truth[0, :4, :4] = 1  # image 0: one gland of 16 pixels
    truth[1, :2, :4] = 1  # image 1: a gland of 8 pixels and one of 12
    truth[1, 4:7, 2:6] = 1
    pred = truth.clone()
    pred[1, 4:7, 4:6] = 0  # half of the larger gland missed: 6 of 64 pixels
    torch.manual_seed(0)
    case = evaluation.describe_case(1, np.array([[0.9, 0.8]]), torch.rand(2, 2, 8, 8), truth, pred,
                                    ["a.png", "b.png"], NORM)
    assert case["stats"]["gland_fraction"] == 20 / 64 and case["stats"]["largest_gland_fraction"] == 12 / 64
    assert case["stats"]["largest_gland_found"] == 0.5
    assert case["median_stats"]["gland_fraction"] == pytest.approx(18 / 64)  # the median of 16/64 and 20/64
    assert case["stats"]["false_negative_fraction"] == 6 / 64 and case["stats"]["false_positive_fraction"] == 0


def test_classification_errors_by_hand():
    logits = torch.tensor([[5.0, 0.0, 0.0], [0.0, 3.0, 0.0], [4.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, 0.1, 0.0],
                           [0.0, 0.0, 2.0]])
    targets = torch.tensor([0, 1, 2, 1, 2, 2])
    out = evaluation.classification_errors(logits, targets)
    assert out["errors"] == 3 and out["images"] == 6 and out["accuracy"] == pytest.approx(0.5)
    assert out["confusion_matrix"] == [[1, 0, 0], [0, 1, 1], [1, 1, 1]]
    assert [w["index"] for w in out["wrong"]] == [2, 3, 4]  # the most confident error first
    assert out["wrong"][0] == {"index": 2, "true": 2, "predicted": 0,
                               "probability": pytest.approx(np.exp(4) / (np.exp(4) + 2))}
    # the probabilities of the wrong predictions: e^4/(e^4+2) = 0.96, e/(e+2) = 0.58, e^0.1/(e^0.1+2) = 0.36
    assert [w["probability"] for w in out["wrong"]] == pytest.approx(
        [np.exp(4) / (np.exp(4) + 2), np.e / (np.e + 2), np.exp(0.1) / (np.exp(0.1) + 2)])
    assert out["errors_below_half_probability"] == 1
    assert out["top_confusions"] == [{"true": 2, "predicted": 1, "count": 1}, {"true": 2, "predicted": 0, "count": 1},
                                     {"true": 1, "predicted": 2, "count": 1}]
    assert out["top_confusions_text"] == "2→1 (1), 2→0 (1), 1→2 (1)"
    many = evaluation.classification_errors(torch.eye(3)[[1, 1, 1, 0, 2, 0]] * 5, torch.tensor([0, 0, 2, 1, 1, 1]))
    assert many["top_confusions_text"] == "1→0 (2), 0→1 (2), 2→1 (1), 1→2 (1)"  # the most frequent first


def test_red_share_summary_by_hand():
    """Training shares 0.25 and 0.5, test shares 0.4 and 0.75 (the second above every training image)."""
    from common.data import Splits

    def images(shares):  # constant images whose red share is ``share``: red = share, green = 1 - share
        return torch.stack([torch.stack([torch.full((4, 4), s), torch.full((4, 4), 1 - s)]) for s in shares])

    norm = {"mean": [0.0, 0.0], "std": [1.0, 1.0]}
    splits = Splits(train=(images([0.25, 0.5]), None), val=(images([0.3]), None), test=(images([0.4, 0.75]), None),
                    info={"normalisation": norm})
    summary = evaluation.red_share_summary(splits)
    assert summary["training"] == pytest.approx({"min": 0.25, "median": 0.375, "max": 0.5})
    beyond = summary["test"].pop("beyond_training")
    assert summary["test"] == pytest.approx({"min": 0.4, "median": 0.575, "max": 0.75, "above_training_max": 1})
    assert beyond == [1]  # the second test image


def test_score_std_at_init_is_the_mean_over_seeds_of_a_fresh_networks_output_std():
    from common import train
    config = {"model": {"class": "MLP", "in_features": 4, "hidden": (3,), "num_classes": 2, "activation": "relu"}}
    images = torch.arange(8.0).reshape(2, 4)
    stds = []
    for seed in (0, 1):  # by hand: each seed draws the weights, then one forward pass
        torch.manual_seed(seed)
        stds.append(train.build_model(config)(images).std().item())
    assert evaluation.score_std_at_init(config, images, [0, 1]) == pytest.approx(sum(stds) / 2)
    assert stds[0] != stds[1]  # the seeds matter
