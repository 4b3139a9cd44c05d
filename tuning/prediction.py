"""Ways of predicting that the post-processing and batch-norm rounds compared (tuning/selection.py) and
the final model does not use: a threshold other than 0.5 on the gland probability, filling enclosed
holes, and batch-norm statistics taken from the images predicted instead of the training images."""
from __future__ import annotations

import copy
import math

import numpy as np
import torch
from scipy import ndimage
from torch import Tensor, nn

BATCHNORM_SCOPES = ("image", "set")


class ImageStatisticsBatchNorm(nn.Module):
    """A trained ``BatchNorm2d`` that normalises each image of its input (N, C, H, W) with a blend of
    that image's own per-channel statistics (over H, W) and the training ones::

        mean = (1 - weight) * running_mean + weight * mean(image)
        var  = (1 - weight) * running_var  + weight * var(image)

    then applies the layer's learnt scale and shift (as Schneider et al., 2020, "Improving robustness
    against common corruptions by covariate shift adaptation", blend them; ``weight`` 1: instance
    normalisation with the layer's affine parameters). Each output depends on its own image only."""

    def __init__(self, bn: nn.BatchNorm2d, weight: float) -> None:
        super().__init__()
        if not 0.0 < weight <= 1.0:
            raise ValueError(f"weight of the image's statistics must lie in (0, 1], got {weight!r}")
        self.bn, self.weight = bn, weight

    def forward(self, x: Tensor) -> Tensor:
        shape = (1, -1, 1, 1)
        mean = (1 - self.weight) * self.bn.running_mean.view(shape) + self.weight * x.mean(dim=(2, 3), keepdim=True)
        var = ((1 - self.weight) * self.bn.running_var.view(shape)
               + self.weight * x.var(dim=(2, 3), unbiased=False, keepdim=True))
        return (x - mean) * torch.rsqrt(var + self.bn.eps) * self.bn.weight.view(shape) + self.bn.bias.view(shape)

    def extra_repr(self) -> str:
        return f"weight={self.weight}"


def adapt_batchnorm(model: nn.Module, scope: str | None, weight: float = 1.0, *,
                    inputs: Tensor | None = None) -> nn.Module:
    """``model`` (trained, in eval mode) predicting with batch-norm statistics of the images it
    predicts instead of those of its training data, to follow a shift of the input distribution
    (here: staining):

    * ``scope`` None: ``model`` itself, unchanged (the training statistics);
    * "image": a copy whose every ``BatchNorm2d`` is an :class:`ImageStatisticsBatchNorm` with
      ``weight`` (each image normalised with its own statistics, blended with the training ones);
    * "set": a copy whose ``BatchNorm2d`` running statistics are those of ``inputs`` (N, C, H, W), the
      whole set predicted, replacing the training ones (``weight`` must be 1): AdaBN (Li et al., 2016),
      one forward pass of all of ``inputs`` as a single batch (only the batch-norm layers in training
      mode), so each layer's statistics are those of its input as the adapted layers before it
      produce it (the variance with N*H*W in the denominator, as batch norm normalises in training).
      A prediction then depends on the other images of the set; predicting with
      :func:`dihedral_tta_logits` afterwards uses these statistics, of ``inputs`` as given, for
      every flipped and rotated copy.
    """
    if scope is None:
        return model
    if scope not in BATCHNORM_SCOPES:
        raise ValueError(f"unknown batch-norm scope {scope!r}; choose None or one of {BATCHNORM_SCOPES}")
    norms = [name for name, m in model.named_modules() if isinstance(m, nn.BatchNorm2d)]
    if not norms:
        raise ValueError(f"{type(model).__name__} has no BatchNorm2d layer to adapt")
    model = copy.deepcopy(model).eval()
    if scope == "image":
        for name in norms:
            model.set_submodule(name, ImageStatisticsBatchNorm(model.get_submodule(name), weight))
        return model
    if weight != 1.0:
        raise ValueError(f"set statistics replace the training ones: weight must be 1, got {weight!r}")
    if inputs is None or inputs.dim() != 4:
        raise ValueError(f"set statistics need the inputs (N, C, H, W), got "
                         f"{None if inputs is None else tuple(inputs.shape)}")
    counts, hooks = {}, []
    for name in norms:
        bn = model.get_submodule(name)
        bn.reset_running_stats()
        bn.momentum = 1.0  # the running statistics become this batch's
        bn.train()  # only the batch-norm layers: dropout, if any, stays off
        hooks.append(bn.register_forward_hook(
            lambda m, args, out, name=name: counts.__setitem__(name, args[0].numel() // args[0].shape[1])))
    with torch.no_grad():
        model(inputs)
        for name in norms:  # PyTorch keeps the unbiased variance; normalise as in the pass: the biased one
            model.get_submodule(name).running_var.mul_((counts[name] - 1) / counts[name])
    for hook in hooks:
        hook.remove()
    return model.eval()


def foreground_masks(logits: Tensor, threshold: float = 0.5, fill_holes: bool = False) -> Tensor:
    """(N, 2, H, W) logits -> (N, H, W) boolean gland masks on the CPU: the pixels whose softmax
    probability of the gland class (1) exceeds ``threshold`` (0.5: the arg-max class, as
    ``common.evaluation.gland_masks`` predicts). With ``fill_holes``, background regions that
    gland encloses completely (not touching the image border; 4-connected) become gland as well
    (``scipy.ndimage.binary_fill_holes``): the ground truth's glands include their lumen."""
    if logits.dim() != 4 or logits.shape[1] != 2:
        raise ValueError(f"expected logits of shape (N, 2, H, W), got {tuple(logits.shape)}")
    if not 0.0 < threshold < 1.0:
        raise ValueError(f"threshold must lie strictly between 0 and 1, got {threshold!r}")
    logits = logits.detach().cpu().double()
    # p(gland) > t  <=>  logit difference > log(t / (1 - t)); exactly the arg-max at t = 0.5
    masks = logits[:, 1] - logits[:, 0] > math.log(threshold / (1.0 - threshold))
    if fill_holes:
        masks = torch.from_numpy(np.stack([ndimage.binary_fill_holes(m) for m in masks.numpy()]))
    return masks


