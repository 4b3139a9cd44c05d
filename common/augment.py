"""Data augmentation of whole training batches on the device (``common.data.BatchTransform``:
``(inputs, targets) -> (inputs, targets)``), built from a configuration's ``augment`` entry
(``common.train.build_augment``) and applied to training batches only. Random numbers come from
torch's global generator on the batch's device, which ``common.train`` seeds with the run's seed.

* MNIST: :class:`RandomAffine`, a small random rotation, scaling and shift of each digit;
* segmentation: :class:`SegmentationAugment`, the same random geometry for an image and its mask
  (flips and 90-degree rotations, optionally an affine map and an elastic warp), and
  :class:`StainJitter`, a random contrast and brightness per stain channel; :class:`Compose`
  chains them.
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor

from .data import BatchTransform


@functools.lru_cache(maxsize=8)
def _base_grid(height: int, width: int, device: torch.device, dtype: torch.dtype) -> Tensor:
    """(H*W, 3) rows (x, y, 1) of pixel centres in the [-1, 1] coordinates of ``F.grid_sample``
    (align_corners=False), x along the width."""
    xs = (torch.arange(width, device=device, dtype=dtype) * 2 + 1) / width - 1
    ys = (torch.arange(height, device=device, dtype=dtype) * 2 + 1) / height - 1
    grid = torch.stack([xs.expand(height, width), ys[:, None].expand(height, width),
                        torch.ones(height, width, device=device, dtype=dtype)], dim=-1)
    return grid.reshape(-1, 3)


@dataclass
class RandomAffine:
    """A random rotation, scaling and translation of every image, drawn independently per image.

    Angle ~ U(-``max_rotation_deg``, +``max_rotation_deg``) degrees, scale ~ U(1 - ``max_scale``,
    1 + ``max_scale``), shift ~ U(-``max_shift``, +``max_shift``) pixels along each axis; resampled
    bilinearly, pixels from outside the image repeating the border (MNIST's border is background,
    whatever the normalisation). Random numbers come from ``generator`` (on the inputs' device), by
    default from torch's global one.
    """

    max_rotation_deg: float = 10.0
    max_shift: float = 2.0
    max_scale: float = 0.1
    generator: torch.Generator | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if min(self.max_rotation_deg, self.max_shift, self.max_scale) < 0 or self.max_scale >= 1:
            raise ValueError(f"magnitudes must be >= 0 (and max_scale < 1), got {self}")

    def __call__(self, inputs: Tensor, targets: Tensor) -> tuple[Tensor, Tensor]:
        if inputs.dim() != 4:
            raise ValueError(f"expected images of shape (N, C, H, W), got {tuple(inputs.shape)}")
        n, _, height, width = inputs.shape

        def uniform(limit: float) -> Tensor:  # U(-limit, limit), one value per image
            draw = torch.rand(n, device=inputs.device, dtype=inputs.dtype, generator=self.generator)
            return (2 * draw - 1) * limit

        angle = uniform(math.radians(self.max_rotation_deg))
        scale = 1 + uniform(self.max_scale)
        # affine_grid maps output coordinates in [-1, 1] to input coordinates: the inverse map,
        # so a zoom by `scale` divides and a shift by s pixels is 2 s / size in these units.
        shift_x = uniform(self.max_shift) * 2 / width
        shift_y = uniform(self.max_shift) * 2 / height
        cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
        theta = torch.stack([torch.stack([cos, -sin, shift_x], dim=1),
                             torch.stack([sin, cos, shift_y], dim=1)], dim=1)
        # = F.affine_grid(theta, inputs.shape, align_corners=False), ten times faster on the CPU
        grid = torch.einsum("pk,njk->npj", _base_grid(height, width, inputs.device, inputs.dtype), theta)
        grid = grid.reshape(n, height, width, 2)
        out = F.grid_sample(inputs, grid, mode="bilinear", padding_mode="border", align_corners=False)
        return out, targets


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
