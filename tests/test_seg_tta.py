"""Test-time augmentation over the 8 symmetries of the square: exact for a pointwise model,
equivariant for any model, and computed from a run's stored weights."""
import pytest
import torch
from torch import nn

from common import seg_eval
from common.segnets import SegNet


class StoredRun:
    """What seg_eval needs of a common.experiment.RunResult: the run's stored weights."""

    def __init__(self, state: dict):
        self.state = state

    def load_weights(self) -> dict:
        return self.state


def test_pointwise_model_gives_its_own_log_probabilities():
    torch.manual_seed(0)
    model = nn.Conv2d(2, 3, kernel_size=1)  # commutes with every flip and rotation
    x = torch.randn(4, 2, 8, 8)
    expected = model(x).log_softmax(dim=1)
    assert torch.allclose(seg_eval.dihedral_tta_logits(model, x), expected, atol=1e-5)


def test_tta_is_the_average_of_the_eight_mapped_back_predictions_and_equivariant():
    torch.manual_seed(1)
    model = SegNet(channels=(4, 8)).eval()
    x = torch.randn(2, 2, 16, 16)
    by_hand = torch.zeros(2, 2, 16, 16)
    for image in (x, x.flip(3)):
        for k in range(4):
            p = torch.rot90(model(torch.rot90(image, k, (2, 3))).softmax(1), -k, (2, 3))
            by_hand += p.flip(3) if image is not x else p
    out = seg_eval.dihedral_tta_logits(model, x, batch_size=1)
    assert torch.allclose(out.exp(), by_hand / 8, atol=1e-5)
    assert torch.allclose(out.exp().sum(1), torch.ones(2, 16, 16), atol=1e-5)
    # predicting a rotated image gives the rotated prediction (a single pass does not)
    rotated = seg_eval.dihedral_tta_logits(model, torch.rot90(x, 1, (2, 3)))
    assert torch.allclose(rotated, torch.rot90(out, 1, (2, 3)), atol=1e-4)
    assert not torch.allclose(model(torch.rot90(x, 1, (2, 3))), torch.rot90(model(x), 1, (2, 3)), atol=1e-3)


def test_confident_predictions_stay_finite():
    model = nn.Conv2d(2, 2, kernel_size=1)
    with torch.no_grad():
        model.weight.fill_(0)
        model.bias.copy_(torch.tensor([0.0, 500.0]))  # probability of class 0 underflows to 0
    out = seg_eval.dihedral_tta_logits(model, torch.zeros(1, 2, 4, 4))
    assert torch.isfinite(out).all() and torch.allclose(out[:, 0], torch.full((1, 4, 4), -500.0), atol=1e-3)


def test_non_square_images_are_rejected():
    with pytest.raises(ValueError, match="square"):
        seg_eval.dihedral_tta_logits(nn.Identity(), torch.zeros(1, 2, 8, 16))


def test_tta_logits_use_each_runs_stored_weights(tmp_path):
    torch.manual_seed(2)
    nets = [SegNet(channels=(4, 8)).eval() for _ in range(2)]
    config = {"_results": [StoredRun(n.state_dict()) for n in nets]}
    x = torch.randn(1, 2, 8, 8)
    logits = seg_eval.tta_logits(config, lambda: SegNet(channels=(4, 8)), x)
    assert len(logits) == 2
    for net, lg in zip(nets, logits):
        assert torch.allclose(lg, seg_eval.dihedral_tta_logits(net, x), atol=1e-6)
    assert not torch.allclose(logits[0], logits[1])


def test_predicted_config_replaces_the_test_scores_only():
    torch.manual_seed(3)
    nets = [SegNet(channels=(4, 8)).eval() for _ in range(2)]
    x, y = torch.randn(3, 2, 8, 8), (torch.rand(3, 8, 8) > 0.5).long()
    history = {"epochs": [{"val_score": 0.5}]}
    config = {"name": "best", "summary": {"test_dice": {}, "final_val_dice": {"mean": 0.5}},
              "runs": [{"test": {"dice": 0.0}, "history": history} for _ in nets],
              "_results": [StoredRun(n.state_dict()) for n in nets]}
    logits = seg_eval.tta_logits(config, lambda: SegNet(channels=(4, 8)), x)
    masks = [seg_eval.foreground_masks(lg, 0.3, fill_holes=True) for lg in logits]
    out = seg_eval.predicted_config(config, logits, masks, y, "best + TTA", "how")
    assert out["name"] == "best + TTA" and "_results" not in out and config["name"] == "best"
    for run, lg, m in zip(out["runs"], logits, masks):
        assert run["test"]["n"] == 3 and run["history"] == history and run["test"]["evaluation"] == "how"
        assert run["test"]["loss"] == pytest.approx(nn.functional.nll_loss(lg, y).item())  # TTA: log-probabilities
        assert run["test"]["dice"] == pytest.approx(seg_eval.dice_coefficient(m, y == 1).mean().item())
    assert out["summary"]["test_dice"]["mean"] == pytest.approx(sum(r["test"]["dice"] for r in out["runs"]) / 2)
    assert config["runs"][0]["test"] == {"dice": 0.0}  # the original is left as it was
    raw = [lg * 3.0 + 1.0 for lg in logits]  # any logits, not log-probabilities: the loss applies the softmax
    out = seg_eval.predicted_config(config, raw, masks, y, "plain", "how")
    assert out["runs"][0]["test"]["loss"] == pytest.approx(nn.functional.cross_entropy(raw[0], y).item())


def test_run_logits_single_pass_is_the_model_in_eval_mode():
    torch.manual_seed(4)
    net = SegNet(channels=(4, 8), batch_norm=True)
    net.train()(torch.randn(4, 2, 8, 8))  # running statistics differ from a fresh model's
    config = {"_results": [StoredRun(net.state_dict())]}
    x = torch.randn(70, 2, 8, 8)  # more than one batch of 64
    (logits,) = seg_eval.run_logits(config, lambda: SegNet(channels=(4, 8), batch_norm=True), x, tta=False)
    assert torch.allclose(logits, net.eval()(x), atol=1e-6)
