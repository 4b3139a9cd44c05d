"""Joint augmentation keeps images and masks aligned, is reproducible and keeps masks binary."""
import math

import pytest
import torch

from common.seg_augment import Compose, SegmentationAugment, StainJitter, random_dihedral


def _batch(n=16, size=32):
    g = torch.Generator().manual_seed(0)
    masks = (torch.rand(n, size // 4, size // 4, generator=g) > 0.5).long()
    masks = masks.repeat_interleave(4, 1).repeat_interleave(4, 2)  # blocky shapes, not symmetric
    images = torch.stack([masks.float(), torch.rand(n, size, size, generator=g)], dim=1)
    return images, masks


def test_dihedral_is_exact_and_aligned():
    images, masks = _batch()
    torch.manual_seed(1)
    out_images, out_masks = random_dihedral(images, masks)
    assert torch.equal(out_images[:, 0], out_masks.float())  # channel 0 is the mask: still identical
    for i in range(len(images)):  # every output is one of the 8 symmetries of its own input
        candidates = [torch.rot90(m, k, (0, 1)) for m in (images[i, 1], images[i, 1].flip(1)) for k in range(4)]
        assert any(torch.equal(out_images[i, 1], c) for c in candidates)


def test_deformation_keeps_image_and_mask_aligned():
    images, masks = _batch()
    augment = SegmentationAugment(rotate_deg=15, scale=0.1, shear_deg=5, translate=0.05, elastic_px=3)
    torch.manual_seed(2)
    out_images, out_masks = augment(images, masks)
    assert out_masks.dtype == torch.int64 and set(out_masks.unique().tolist()) <= {0, 1}
    assert not torch.equal(out_masks, masks)
    agreement = ((out_images[:, 0] > 0.5).long() == out_masks).float().mean()
    assert agreement > 0.97  # bilinear image vs nearest-neighbour mask differ only on some edge pixels


def test_same_seed_same_augmentation():
    images, masks = _batch()
    augment = SegmentationAugment(rotate_deg=10, elastic_px=2)
    torch.manual_seed(3)
    first = augment(images, masks)
    torch.manual_seed(3)
    second = augment(images, masks)
    assert torch.equal(first[0], second[0]) and torch.equal(first[1], second[1])


def test_channels_last_batches_work():
    images, masks = _batch()
    out_images, out_masks = SegmentationAugment(rotate_deg=10)(images.contiguous(memory_format=torch.channels_last), masks)
    assert out_images.shape == images.shape and out_masks.shape == masks.shape


def test_stain_jitter_is_a_bounded_affine_map_per_sample_and_channel():
    images, masks = _batch()
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
    images, masks = _batch()
    steps = (SegmentationAugment(dihedral=True), StainJitter())
    torch.manual_seed(5)
    composed = Compose(steps)(images, masks)
    torch.manual_seed(5)
    by_hand = steps[1](*steps[0](images, masks))
    assert torch.equal(composed[0], by_hand[0]) and torch.equal(composed[1], by_hand[1])
    assert "StainJitter(log_gain=0.25, shift=0.25)" in repr(Compose(steps))  # recorded with the run
