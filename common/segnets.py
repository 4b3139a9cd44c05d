"""Encoder-decoder networks for semantic segmentation (Part 2). Every model returns logits
(N, num_classes, H, W); the softmax over the channel axis is applied by ``nn.CrossEntropyLoss``.

:class:`SegNet` re-purposes the Exercise 1.2 CNN (``common.models.MnistCNN``): the same
conv 3x3 / ReLU / max-pool encoder, no fully connected layer; the resolution is recovered by
transposed convolutions whose kernel size is an integer multiple of their stride (no
checkerboard artefacts), and a 1x1 convolution replaces the classifier. With the default
``channels=(8, 16, 32)`` (Ex 1.2's widths; Ex 2.1 adds a fourth level of 64 channels and uses
4x4 kernels, ``up_kernel=4``)::

    input (N, 2, 128, 128)
    enc1        conv 8 x 3x3, ReLU                  -> (N, 8, 128, 128)  --skip1--.
    pool        max pool 2x2/2                      -> (N, 8, 64, 64)             |
    enc2        conv 16 x 3x3, ReLU                 -> (N, 16, 64, 64)  --skip2-. |
    pool        max pool 2x2/2                      -> (N, 16, 32, 32)          | |
    bottleneck  conv 32 x 3x3, ReLU                 -> (N, 32, 32, 32)          | |
    up2         transposed conv 16 x 2x2/2, ReLU    -> (N, 16, 64, 64)          | |
    merge2      (concat or sum with skip2, if any)                          <---' |
    dec2        conv 16 x 3x3, ReLU                 -> (N, 16, 64, 64)            |
    up1         transposed conv 8 x 2x2/2, ReLU     -> (N, 8, 128, 128)           |
    merge1      (concat or sum with skip1, if any)                          <-----'
    dec1        conv 8 x 3x3, ReLU                  -> (N, 8, 128, 128)
    head        conv 2 x 1x1                        -> (N, 2, 128, 128) logits

Longer ``channels`` add levels (one more pool / up-sampling per entry). The options exist so that
Ex 2.2-2.4 flip one thing at a time on an otherwise identical network:

* ``skip``: None (Ex 2.1), "concat" (U-Net) or "sum" (FCN/LinkNet style) encoder -> decoder links;
* ``block_depth``: each "conv 3x3, ReLU" above becomes a stage of that many conv+ReLU pairs;
* ``residual``: a shortcut bridges each stage (identity, or 1x1 conv where channels change);
* ``batch_norm``: BatchNorm2d after every convolution (and transposed convolution) before ReLU;
* ``input_norm``: standardise each channel of each input image with its own mean and standard
  deviation (``InstanceNorm2d`` without learnt parameters) before the first convolution, so that a
  global change of a stain's contrast or brightness does not reach the network;
* ``dropout``: channel dropout (Dropout2d) with this probability after the bottleneck;
* ``init``: "default" (PyTorch's), "kaiming" (He normal for ReLU networks, zero biases) or "he"
  (the same, but transposed convolutions by their true fan-in), see ``INIT_SCHEMES``. PyTorch's default weight variance, 1/(3 fan_in), is a sixth of He's 2/fan_in, so
  its signal's standard deviation shrinks by about 1/sqrt(6) per conv + ReLU layer. The
  "kaiming" transposed convolutions get a quarter of He's variance (see the comment in
  :class:`SegNet`): irrelevant after batch norm, a 4x smaller variance per up-sampling without it;
  "he" corrects that (Ex 2.4 measures what it changes for its networks without batch norm).
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor, nn

from .models import make_activation

SKIP_MODES = (None, "concat", "sum")
# Each run records its scheme's description (hyperparameters "init", in the committed results), so
# the texts stay as they are.
# "kaiming" states the variances used; for a stride-2 transposed convolution 2/(in_channels*k*k) is a
# quarter of He's 2/fan_in, whose true fan-in there is in_channels*(k/2)^2 (see SegNet.__init__).
INIT_SCHEMES = {
    "default": "PyTorch defaults: kaiming_uniform_(a=sqrt(5)) weights, U(+-1/sqrt(fan_in)) biases",
    "kaiming": "He et al. (2015): weights N(0, 2/fan_in) (transposed convolutions: 2/(in_channels*k*k)), zero biases",
    "he": "He et al. (2015) with each layer's true fan-in: weights N(0, 2/fan_in), for a transposed convolution "
          "fan_in = in_channels*(k/stride)^2 (the inputs one output pixel sums), zero biases",
}


class ConvStage(nn.Module):
    """``depth`` x (conv 3x3 [+ BatchNorm] + activation); with ``residual`` the input is added
    (through a 1x1 convolution where the channel count changes) before the last activation:
    ``act(F(x) + shortcut(x))`` as in ResNet."""

    def __init__(self, in_channels: int, out_channels: int, *, depth: int = 1, residual: bool = False,
                 batch_norm: bool = False, activation: str = "relu") -> None:
        super().__init__()
        if depth < 1:
            raise ValueError(f"block depth must be at least 1, got {depth}")
        layers: list[nn.Module] = []
        for i in range(depth):
            layers.append(nn.Conv2d(in_channels if i == 0 else out_channels, out_channels, 3, padding=1,
                                    bias=not batch_norm))
            if batch_norm:
                layers.append(nn.BatchNorm2d(out_channels))
            if i < depth - 1:
                layers.append(make_activation(activation))
        self.body = nn.Sequential(*layers)
        self.shortcut: nn.Module | None = None
        if residual:
            self.shortcut = (nn.Identity() if in_channels == out_channels
                             else nn.Conv2d(in_channels, out_channels, 1, bias=not batch_norm))
            if batch_norm and in_channels != out_channels:
                self.shortcut = nn.Sequential(self.shortcut, nn.BatchNorm2d(out_channels))
        self.act = make_activation(activation)

    def forward(self, x: Tensor) -> Tensor:
        out = self.body(x)
        if self.shortcut is not None:
            out = out + self.shortcut(x)
        return self.act(out)


class UpSample(nn.Sequential):
    """Transposed convolution doubling the resolution (kernel = ``kernel`` = a multiple of the
    stride 2, padding chosen so the output is exactly twice the input) [+ BatchNorm] + activation."""

    def __init__(self, in_channels: int, out_channels: int, *, kernel: int = 2, batch_norm: bool = False,
                 activation: str = "relu") -> None:
        stride = 2
        if kernel % stride:
            raise ValueError(f"transposed convolution kernel {kernel} must be a multiple of its stride {stride}")
        layers: list[nn.Module] = [nn.ConvTranspose2d(in_channels, out_channels, kernel, stride=stride,
                                                      padding=(kernel - stride) // 2, bias=not batch_norm)]
        if batch_norm:
            layers.append(nn.BatchNorm2d(out_channels))
        layers.append(make_activation(activation))
        super().__init__(*layers)


class Merge(nn.Module):
    """Combine the up-sampled decoder features with the encoder features of the same resolution."""

    def __init__(self, mode: str | None) -> None:
        super().__init__()
        if mode not in SKIP_MODES:
            raise ValueError(f"unknown skip mode {mode!r}; choose one of {SKIP_MODES}")
        self.mode = mode

    def forward(self, up: Tensor, skip: Tensor) -> Tensor:
        if self.mode == "concat":
            return torch.cat([up, skip], dim=1)
        if self.mode == "sum":
            return up + skip
        return up

    def extra_repr(self) -> str:
        return f"mode={self.mode}"


def transposed_fan_in(conv: nn.ConvTranspose2d) -> int:
    """How many inputs one output pixel of ``conv`` sums: in_channels x (k/stride)^2 for a kernel
    that is a multiple of the stride (as :class:`UpSample`'s)."""
    (kh, kw), (sh, sw) = conv.kernel_size, conv.stride
    if kh % sh or kw % sw:
        raise ValueError(f"kernel {conv.kernel_size} is not a multiple of the stride {conv.stride}")
    return conv.in_channels // conv.groups * (kh // sh) * (kw // sw)


class SegNet(nn.Module):
    """Encoder-decoder segmentation network; see the module docstring for the diagram."""

    def __init__(self, in_channels: int = 2, num_classes: int = 2, channels: Sequence[int] = (8, 16, 32), *,
                 skip: str | None = None, block_depth: int = 1, residual: bool = False, batch_norm: bool = False,
                 input_norm: bool = False, dropout: float = 0.0, up_kernel: int = 2, activation: str = "relu",
                 init: str = "default") -> None:
        super().__init__()
        if len(channels) < 2:
            raise ValueError(f"need at least two levels of channels, got {tuple(channels)}")
        if not 0 <= dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        stage = dict(depth=block_depth, residual=residual, batch_norm=batch_norm, activation=activation)
        *enc, bottom = channels
        # a module only when used (None is not registered), so other configurations print and record as before
        self.input_norm = nn.InstanceNorm2d(in_channels) if input_norm else None
        self.encoder = nn.ModuleList(ConvStage(c_in, c_out, **stage)
                                     for c_in, c_out in zip([in_channels, *enc[:-1]], enc))
        self.pool = nn.MaxPool2d(2, stride=2)
        self.bottleneck = ConvStage(enc[-1], bottom, **stage)
        self.drop = nn.Dropout2d(dropout) if dropout > 0 else nn.Identity()
        # decoder, deepest level first: up-sample to the level's width, merge its skip, convolve
        widths = list(reversed(enc))
        self.ups = nn.ModuleList(UpSample(c_in, c_out, kernel=up_kernel, batch_norm=batch_norm, activation=activation)
                                 for c_in, c_out in zip([bottom, *widths[:-1]], widths))
        self.merges = nn.ModuleList(Merge(skip) for _ in widths)
        merged = 2 if skip == "concat" else 1
        self.decoder = nn.ModuleList(ConvStage(merged * c, c, **stage) for c in widths)
        self.head = nn.Conv2d(enc[0], num_classes, kernel_size=1)
        if init not in INIT_SCHEMES:
            raise ValueError(f"unknown init {init!r}; choose one of {', '.join(INIT_SCHEMES)}")
        if init in ("kaiming", "he"):
            for m in self.modules():
                if init == "he" and isinstance(m, nn.ConvTranspose2d):
                    nn.init.normal_(m.weight, std=(2.0 / transposed_fan_in(m)) ** 0.5)  # variance-preserving
                    if m.bias is not None:
                        nn.init.zeros_(m.bias)
                elif isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
                    # A transposed convolution's weight is (in, out, k, k), and PyTorch's "fan_out" of it is
                    # in*k^2: its weights get N(0, 2/(in*k^2)). Each output pixel of a stride-2 transposed
                    # convolution sums only in*(k/2)^2 inputs (k a multiple of 2), so that is a quarter of
                    # He's 2/(in*(k/2)^2). With batch norm, which follows every transposed convolution, the
                    # forward scale is irrelevant; without it the decoder signal's variance shrinks about 4x
                    # per up-sampling (tests/test_segnets.py measures it). Kept: the committed results use it.
                    nn.init.kaiming_normal_(m.weight, mode="fan_out" if isinstance(m, nn.ConvTranspose2d) else "fan_in",
                                            nonlinearity="relu")
                    if m.bias is not None:
                        nn.init.zeros_(m.bias)

    def forward(self, x: Tensor) -> Tensor:
        skips = []
        if self.input_norm is not None:
            x = self.input_norm(x)
        for stage in self.encoder:  # conv stage, keep its output for the decoder, halve the size
            x = stage(x)
            skips.append(x)
            x = self.pool(x)
        x = self.drop(self.bottleneck(x))
        for up, merge, stage, skip in zip(self.ups, self.merges, self.decoder, reversed(skips)):
            x = stage(merge(up(x), skip))  # double the size, bring in the encoder features, convolve
        return self.head(x)
