"""The on-device batch augmentation of Exercise 1.5."""
import pytest
import torch

from common.mnist_augment import RandomAffine


def _batch(n=16, channels_last=False):
    torch.manual_seed(123)
    x = torch.randn(n, 1, 28, 28)
    return (x.contiguous(memory_format=torch.channels_last) if channels_last else x), torch.arange(n)


@pytest.mark.parametrize("channels_last", [False, True])
def test_shapes_and_targets_are_kept(channels_last):
    x, y = _batch(channels_last=channels_last)
    out, targets = RandomAffine()(x, y)
    assert out.shape == x.shape and out.dtype == x.dtype and torch.equal(targets, y)
    assert not torch.allclose(out, x)  # something happened


def test_identity_at_zero_magnitude():
    x, y = _batch()
    out, _ = RandomAffine(max_rotation_deg=0, max_shift=0, max_scale=0)(x, y)
    torch.testing.assert_close(out, x, rtol=0, atol=1e-4)


def test_deterministic_under_a_seed_and_different_per_image():
    x, y = _batch()
    augment = RandomAffine()
    torch.manual_seed(7)
    a, _ = augment(x, y)
    torch.manual_seed(7)
    b, _ = augment(x, y)
    c, _ = augment(x, y)  # the generator moved on
    assert torch.equal(a, b) and not torch.equal(a, c)
    own = [RandomAffine(generator=torch.Generator().manual_seed(3))(x, y)[0] for _ in range(2)]
    assert torch.equal(own[0], own[1])
    same = torch.zeros(4, 1, 28, 28)
    same[:, :, 10:18, 12:16] = 1.0
    varied, _ = augment(same, torch.zeros(4))
    assert not torch.equal(varied[0], varied[1])  # parameters are drawn per image


def test_a_pure_shift_moves_the_image_by_that_many_pixels():
    """The coordinate convention: a shift of +2 pixels in x moves content 2 pixels left or right."""
    x = torch.zeros(1, 1, 28, 28)
    x[0, 0, 10:14, 10:14] = 1.0
    gen = torch.Generator().manual_seed(0)
    out, _ = RandomAffine(max_rotation_deg=0, max_shift=2, max_scale=0, generator=gen)(x, torch.zeros(1))
    assert out.sum().item() == pytest.approx(16.0, abs=1e-3)  # content moved, not lost (bilinear)
    assert (out > 0.01).any(dim=1).any(dim=1).sum() >= 4


def test_settings_are_in_the_repr_and_are_validated():
    assert repr(RandomAffine(5, 1, 0.05)) == "RandomAffine(max_rotation_deg=5, max_shift=1, max_scale=0.05)"
    with pytest.raises(ValueError, match="magnitudes"):
        RandomAffine(max_shift=-1)
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        RandomAffine()(torch.zeros(28, 28), torch.zeros(1))
