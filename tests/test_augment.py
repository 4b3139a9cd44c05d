"""common.augment: the MNIST affine augmentation of Exercise 1.5, and the joint image/mask augmentation
of Part 2, which keeps images and masks aligned, is reproducible and keeps masks binary."""
import math

import pytest
import torch

from common.augment import Compose, RandomAffine, SegmentationAugment, StainJitter, random_dihedral


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


# --- segmentation ---------------------------------------------------------------------------

def _seg_batch(n=16, size=32):
    g = torch.Generator().manual_seed(0)
    masks = (torch.rand(n, size // 4, size // 4, generator=g) > 0.5).long()
    masks = masks.repeat_interleave(4, 1).repeat_interleave(4, 2)  # blocky shapes, not symmetric
    images = torch.stack([masks.float(), torch.rand(n, size, size, generator=g)], dim=1)
    return images, masks


def test_dihedral_is_exact_and_aligned():
    images, masks = _seg_batch()
    torch.manual_seed(1)
    out_images, out_masks = random_dihedral(images, masks)
    assert torch.equal(out_images[:, 0], out_masks.float())  # channel 0 is the mask: still identical
    for i in range(len(images)):  # every output is one of the 8 symmetries of its own input
        candidates = [torch.rot90(m, k, (0, 1)) for m in (images[i, 1], images[i, 1].flip(1)) for k in range(4)]
        assert any(torch.equal(out_images[i, 1], c) for c in candidates)


def test_deformation_keeps_image_and_mask_aligned():
    images, masks = _seg_batch()
    augment = SegmentationAugment(rotate_deg=15, scale=0.1, shear_deg=5, translate=0.05, elastic_px=3)
    torch.manual_seed(2)
    out_images, out_masks = augment(images, masks)
    assert out_masks.dtype == torch.int64 and set(out_masks.unique().tolist()) <= {0, 1}
    assert not torch.equal(out_masks, masks)
    agreement = ((out_images[:, 0] > 0.5).long() == out_masks).float().mean()
    assert agreement > 0.97  # bilinear image vs nearest-neighbour mask differ only on some edge pixels


def test_same_seed_same_augmentation():
    images, masks = _seg_batch()
    augment = SegmentationAugment(rotate_deg=10, elastic_px=2)
    torch.manual_seed(3)
    first = augment(images, masks)
    torch.manual_seed(3)
    second = augment(images, masks)
    assert torch.equal(first[0], second[0]) and torch.equal(first[1], second[1])


def test_channels_last_batches_work():
    images, masks = _seg_batch()
    out_images, out_masks = SegmentationAugment(rotate_deg=10)(images.contiguous(memory_format=torch.channels_last), masks)
    assert out_images.shape == images.shape and out_masks.shape == masks.shape


def test_stain_jitter_is_a_bounded_affine_map_per_sample_and_channel():
    images, masks = _seg_batch()
    jitter = StainJitter(log_gain=0.3, shift=0.5)
    torch.manual_seed(4)
    out, out_masks = jitter(images, masks)
    assert torch.equal(out_masks, masks)
    for i in range(len(images)):
        for c in range(images.shape[1]):
            x, y = images[i, c].flatten(), out[i, c].flatten()
            gain = (y[1:] - y[0]) / (x[1:] - x[0])  # the same gain for every pixel of the channel
            gain = gain[(x[1:] - x[0]).abs() > 0.1]
            assert torch.allclose(gain, gain[0], atol=1e-4)
            assert math.exp(-0.3) - 1e-6 <= gain[0] <= math.exp(0.3) + 1e-6
            assert abs(y[0] - gain[0] * x[0]) <= 0.5 + 1e-6
    # drawn per sample and per channel: the stain balance changes too, and shifts differ between samples
    flat_in, flat_out = images.flatten(2), out.flatten(2)
    dx = flat_in[..., 1:] - flat_in[..., :1]
    gains = ((flat_out[..., 1:] - flat_out[..., :1]) * dx).sum(-1) / (dx * dx).sum(-1)  # (N, C) least squares
    shifts = flat_out[..., 0] - gains * flat_in[..., 0]
    assert gains[:, 1].std() > 0.05 and (gains[:, 0] - gains[:, 1]).abs().min() > 1e-4
    assert shifts[:, 0].std() > 0.05 and (shifts[:, 0] - shifts[:, 1]).abs().min() > 1e-4
    assert torch.equal(StainJitter(0, 0)(images, masks)[0], images)
    with pytest.raises(ValueError, match="invalid stain jitter"):
        StainJitter(log_gain=-1)


def test_compose_applies_in_order():
    images, masks = _seg_batch()
    steps = (SegmentationAugment(dihedral=True), StainJitter())
    torch.manual_seed(5)
    composed = Compose(steps)(images, masks)
    torch.manual_seed(5)
    by_hand = steps[1](*steps[0](images, masks))
    assert torch.equal(composed[0], by_hand[0]) and torch.equal(composed[1], by_hand[1])
    assert "StainJitter(log_gain=0.25, shift=0.25)" in repr(Compose(steps))  # every setting shown


def test_random_affine_matches_affine_grid():
    """The einsum shortcut for the sampling grid is F.affine_grid: recompute it with the same draws."""
    import torch.nn.functional as F

    x = torch.randn(5, 1, 28, 28)
    augment = RandomAffine(max_rotation_deg=20, max_shift=3, max_scale=0.2,
                           generator=torch.Generator().manual_seed(11))
    out, _ = augment(x, torch.zeros(5))
    g = torch.Generator().manual_seed(11)  # the same draws, in the order __call__ makes them
    draws = [(2 * torch.rand(5, generator=g) - 1) * limit for limit in (math.radians(20), 0.2, 3, 3)]
    angle, scale, shift_x, shift_y = draws[0], 1 + draws[1], draws[2] * 2 / 28, draws[3] * 2 / 28
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack([torch.stack([cos, -sin, shift_x], 1), torch.stack([sin, cos, shift_y], 1)], 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    expected = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-5)


def test_segmentation_augment_settings_are_validated_and_recorded():
    assert not SegmentationAugment().deforms and SegmentationAugment(elastic_px=2).deforms
    assert not SegmentationAugment(rotate_deg=10, p_deform=0).deforms
    assert "rotate_deg=10" in repr(SegmentationAugment(rotate_deg=10))  # every setting shown
    for bad in ({"scale": 1.0}, {"p_deform": 1.5}, {"rotate_deg": -1}, {"elastic_grid": 1}):
        with pytest.raises(ValueError, match="invalid augmentation settings"):
            SegmentationAugment(**bad)
    with pytest.raises(ValueError, match="square"):
        random_dihedral(torch.zeros(1, 1, 4, 6), torch.zeros(1, 4, 6))
    with pytest.raises(ValueError, match=r"expected inputs \(N, C, H, W\) and targets \(N, H, W\)"):
        SegmentationAugment()(torch.zeros(2, 1, 4, 4), torch.zeros(2, 4, 5))
