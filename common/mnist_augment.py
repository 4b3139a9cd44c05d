"""Data augmentation applied to whole training batches on the training device.

The transforms follow ``common.data.BatchTransform``: ``(inputs, targets) -> (inputs, targets)``
and are passed to ``RunSpec.train_transform``, so only training batches are augmented; validation
and test images are never touched. Their ``repr`` lists every setting, which therefore becomes
part of a run's recorded hyperparameters and cache key.
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor


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
    1 + ``max_scale``), shift ~ U(-``max_shift``, +``max_shift``) pixels along each axis. The image
    is resampled bilinearly with ``F.affine_grid``/``F.grid_sample``; pixels from outside the
    image repeat the border (MNIST's border is background, whatever the normalisation).
    Random numbers come from ``generator`` (on the inputs' device) or, by default, from torch's
    global generator, which ``common.experiment`` seeds with the run's seed.
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
