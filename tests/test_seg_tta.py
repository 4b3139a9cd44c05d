"""Test-time augmentation over the 8 symmetries of the square: exact for a pointwise model,
equivariant for any model, and computed from a run's stored weights."""
import pytest
import torch
from torch import nn

from common import seg_eval
from common.segnets import SegNet


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


def test_non_square_images_are_rejected():
    with pytest.raises(ValueError, match="square"):
        seg_eval.dihedral_tta_logits(nn.Identity(), torch.zeros(1, 2, 8, 16))


def test_tta_logits_use_each_runs_stored_weights(tmp_path):
    class StoredRun:  # what common.experiment.RunResult offers
        def __init__(self, state):
            self.state = state

        def load_weights(self):
            return self.state

    torch.manual_seed(2)
    nets = [SegNet(channels=(4, 8)).eval() for _ in range(2)]
    config = {"_results": [StoredRun(n.state_dict()) for n in nets]}
    x = torch.randn(1, 2, 8, 8)
    logits = seg_eval.tta_logits(config, lambda: SegNet(channels=(4, 8)), x)
    assert len(logits) == 2
    for net, lg in zip(nets, logits):
        assert torch.allclose(lg, seg_eval.dihedral_tta_logits(net, x), atol=1e-6)
    assert not torch.allclose(logits[0], logits[1])
