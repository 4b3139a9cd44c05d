"""Joint image + mask augmentation for segmentation, on tensors already on the device.

A ``common.data.BatchTransform`` for ``RunSpec.train_transform`` (only training batches are
augmented). The same geometry is applied to an image and its mask: exact symmetries of the square
(random horizontal flip and rotation by a multiple of 90 degrees, i.e. the 8 elements of the
dihedral group) by index operations, then optionally a small random affine map (rotation, scale,
shear, translation) plus a smooth elastic displacement field, applied with one ``grid_sample``
call: bilinear for the image, nearest neighbour for the mask, reflection at the border for both.
:class:`StainJitter` changes the colours only (each stain channel's contrast and brightness), and
:class:`Compose` applies several such transforms in turn.

Each sample of a batch gets its own random transform, drawn from torch's global random number
generator on the batch's device, so a run is reproducible given ``torch.manual_seed`` (which
``common.experiment`` calls with the run's seed). The ``repr`` lists every setting, so it becomes
part of a run's recorded hyperparameters and cache key.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from .data import BatchTransform


@dataclass(frozen=True)
class SegmentationAugment:
    """``inputs`` (N, C, H, W) float, ``targets`` (N, H, W) class indices -> both transformed alike.

    ``dihedral``: random flip + 90-degree rotation (square images only). ``rotate_deg``,
    ``scale``, ``shear_deg``, ``translate`` (fraction of the image size): ranges of a uniform
    random affine map, applied to each sample with probability ``p_deform``. ``elastic_px``:
    largest displacement (pixels) of an elastic field interpolated (bicubic) from an
    ``elastic_grid`` x ``elastic_grid`` grid of random control-point offsets (0 = off).
    """

    dihedral: bool = True
    rotate_deg: float = 0.0
    scale: float = 0.0
    shear_deg: float = 0.0
    translate: float = 0.0
    elastic_px: float = 0.0
    elastic_grid: int = 4
    p_deform: float = 1.0

    def __post_init__(self) -> None:
        values = (self.rotate_deg, self.scale, self.shear_deg, self.translate, self.elastic_px)
        if min(values) < 0 or self.scale >= 1 or not 0 <= self.p_deform <= 1 or self.elastic_grid < 2:
            raise ValueError(f"invalid augmentation settings: {self}")

    @property
    def deforms(self) -> bool:
        return self.p_deform > 0 and any(v > 0 for v in (self.rotate_deg, self.scale, self.shear_deg,
                                                          self.translate, self.elastic_px))

    def __call__(self, inputs: Tensor, targets: Tensor) -> tuple[Tensor, Tensor]:
        if inputs.dim() != 4 or targets.shape != (inputs.shape[0], *inputs.shape[2:]):
            raise ValueError(f"expected inputs (N, C, H, W) and targets (N, H, W), got "
                             f"{tuple(inputs.shape)} and {tuple(targets.shape)}")
        if self.dihedral:
            inputs, targets = random_dihedral(inputs, targets)
        if self.deforms:
            inputs, targets = self._deform(inputs, targets)
        return inputs, targets

    def _deform(self, inputs: Tensor, targets: Tensor) -> tuple[Tensor, Tensor]:
        n, _, h, w = inputs.shape
        dev = inputs.device

        def uniform(limit: float) -> Tensor:  # U(-limit, limit), one value per sample
            return (torch.rand(n, device=dev) * 2 - 1) * limit

        on = (torch.rand(n, device=dev) < self.p_deform).float()
        angle = uniform(math.radians(self.rotate_deg)) * on
        shear = torch.tan(uniform(math.radians(self.shear_deg)) * on)
        scale = 1 + uniform(self.scale) * on
        tx, ty = uniform(2 * self.translate) * on, uniform(2 * self.translate) * on
        cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
        # affine_grid maps output to input coordinates in [-1, 1]: (rotation @ shear) / scale + shift
        theta = torch.stack([torch.stack([cos, cos * shear - sin, tx], 1),
                             torch.stack([sin, sin * shear + cos, ty], 1)], 1)
        grid = F.affine_grid(theta, [n, 1, h, w], align_corners=False)
        if self.elastic_px > 0:
            g = self.elastic_grid
            coarse = (torch.rand(n, 2, g, g, device=dev) * 2 - 1) * self.elastic_px * on[:, None, None, None]
            field = F.interpolate(coarse, size=(h, w), mode="bicubic", align_corners=True)  # pixels
            grid = grid + torch.stack([field[:, 0] * 2 / w, field[:, 1] * 2 / h], dim=-1)
        warped = F.grid_sample(inputs, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
        masks = F.grid_sample(targets[:, None].float(), grid, mode="nearest", padding_mode="reflection",
                              align_corners=False)
        return warped, masks[:, 0].round().to(targets.dtype)


def random_dihedral(inputs: Tensor, targets: Tensor) -> tuple[Tensor, Tensor]:
    """Flip each sample horizontally with probability 1/2, then rotate it by k x 90 degrees,
    k uniform in 0..3; exact (no interpolation) and without host-device synchronisation."""
    n, _, h, w = inputs.shape
    if h != w:
        raise ValueError(f"90-degree rotations need square images, got {h}x{w}")
    dev = inputs.device
    flip = torch.rand(n, device=dev) < 0.5
    k = torch.randint(0, 4, (n,), device=dev)
    inputs = torch.where(flip[:, None, None, None], inputs.flip(3), inputs)
    targets = torch.where(flip[:, None, None], targets.flip(2), targets)
    rows = torch.arange(n, device=dev)
    inputs = torch.stack([torch.rot90(inputs, r, dims=(2, 3)) for r in range(4)])[k, rows]
    targets = torch.stack([torch.rot90(targets, r, dims=(1, 2)) for r in range(4)])[k, rows]
    return inputs, targets


@dataclass(frozen=True)
class StainJitter:
    """Random stain intensity: each channel c of each sample becomes ``exp(u) * x + v`` with
    ``u ~ U(-log_gain, log_gain)`` and ``v ~ U(-shift, shift)`` drawn per sample and channel.

    For inputs normalised per channel (``common.warwick``: zero mean, unit standard deviation over the
    training pixels), this is a random change of that stain's contrast and brightness; drawn
    independently for the two channels, it also changes the balance between the stains, as a
    different staining batch or scanner would. Masks are returned unchanged.
    """

    log_gain: float = 0.25
    shift: float = 0.25

    def __post_init__(self) -> None:
        if self.log_gain < 0 or self.shift < 0:
            raise ValueError(f"invalid stain jitter settings: {self}")

    def __call__(self, inputs: Tensor, targets: Tensor) -> tuple[Tensor, Tensor]:
        """``inputs`` (N, C, H, W) jittered, ``targets`` (any shape) returned as they are."""
        if inputs.dim() != 4:
            raise ValueError(f"expected inputs (N, C, H, W), got {tuple(inputs.shape)}")
        n, c = inputs.shape[:2]
        dev = inputs.device
        gain = torch.exp((torch.rand(n, c, 1, 1, device=dev) * 2 - 1) * self.log_gain)
        shift = (torch.rand(n, c, 1, 1, device=dev) * 2 - 1) * self.shift
        return inputs * gain + shift, targets


@dataclass(frozen=True)
class Compose:
    """Apply ``transforms`` in order; each maps ``inputs`` (N, C, H, W) and ``targets`` (N, H, W) to
    a pair of the same shapes (``common.data.BatchTransform``)."""

    transforms: tuple[BatchTransform, ...]

    def __call__(self, inputs: Tensor, targets: Tensor) -> tuple[Tensor, Tensor]:
        for transform in self.transforms:
            inputs, targets = transform(inputs, targets)
        return inputs, targets
