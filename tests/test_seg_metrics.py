"""Dice coefficient: hand-computed cases, the empty-mask convention, the logits adapter, and a
device without float64 (Apple's MPS)."""
import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from common.metrics import DICE_EMPTY, dice_coefficient, dice_per_sample

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
