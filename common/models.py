"""The networks. Every model returns logits; the loss (``nn.CrossEntropyLoss``) applies the softmax,
over the class axis for MNIST and over the channel axis, per pixel, for segmentation.

* :class:`MLP`: the fully connected network of Assignment 2 (Exercise 1.1);
* :class:`MnistCNN`: the network prescribed by Exercise 1.2, with the options of Ex 1.3 and 1.5;
* :class:`SegNet`: the encoder-decoder of Part 2, with the options of Ex 2.2-2.5.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor, nn

ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid, "gelu": nn.GELU}
INIT_SCHEMES = {
    "default": "PyTorch defaults: kaiming_uniform_(a=sqrt(5)) weights, i.e. U(+-1/sqrt(fan_in)); "
               "biases U(+-1/sqrt(fan_in))",
    "kaiming": "He et al. (2015): weights N(0, 2/fan_in) (transposed convolutions: 2/(in_channels*k*k)), "
               "zero biases",
    "he": "He et al. (2015) with each layer's true fan-in: weights N(0, 2/fan_in), for a transposed "
          "convolution fan_in = in_channels*(k/stride)^2 (the inputs one output pixel sums), zero biases",
}
# residual networks without batch norm (Ex 2.4): each block starts as its shortcut, the zero initialisation of Fixup
# (Zhang et al. 2019) without its rescaling of the other layers
INIT_SCHEMES["he_zero"] = INIT_SCHEMES["he"] + "; the last convolution of each residual block starts at zero"


def make_activation(name: str) -> nn.Module:
    if name not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; choose one of {', '.join(ACTIVATIONS)}")
    return ACTIVATIONS[name]()


def count_weights(model: nn.Module) -> int:
    """Number of learnable parameters (weights and biases)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def layer_list(model: nn.Module) -> list[str]:
    """The model's leaf layers in definition order, each in a few characters ("conv 1→8 3×3",
    "BN", "ReLU", "max pool 2", "linear 1568→10"); a layer used at several places (one MaxPool)
    appears once. Recorded with every run, so that the report reads the architecture as data."""
    out = []
    for module in model.modules():
        if next(module.children(), None) is not None or isinstance(module, nn.Identity):
            continue
        if isinstance(module, Merge):
            if module.mode is not None:
                out.append(f"{module.mode} skip")
        elif isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
            (kh, kw), (stride, _) = module.kernel_size, module.stride
            kind = "transposed conv" if isinstance(module, nn.ConvTranspose2d) else "conv"
            out.append(f"{kind} {module.in_channels}→{module.out_channels} {kh}×{kw}"
                       + (f"/{stride}" if stride != 1 else "") + ("" if module.bias is not None else " no bias"))
        elif isinstance(module, nn.Linear):
            out.append(f"linear {module.in_features}→{module.out_features}")
        elif isinstance(module, nn.BatchNorm2d):
            out.append("BN")
        elif isinstance(module, nn.MaxPool2d):
            out.append(f"max pool {module.kernel_size}")
        elif isinstance(module, (nn.Dropout, nn.Dropout2d)):
            out.append(f"{type(module).__name__.lower()} {module.p}")
        elif isinstance(module, nn.InstanceNorm2d):
            out.append("input standardisation")
        else:
            out.append(type(module).__name__)
    return out


class MLP(nn.Sequential):
    """Fully connected: flatten, Linear + activation per hidden layer, Linear.
    (N, 1, 28, 28) or (N, 784) -> (N, num_classes) logits."""

    def __init__(self, in_features: int = 28 * 28, hidden: Sequence[int] = (128, 64), num_classes: int = 10,
                 activation: str = "relu") -> None:
        layers: list[nn.Module] = [nn.Flatten()]
        sizes = [in_features, *hidden]
        for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
            layers += [nn.Linear(fan_in, fan_out), make_activation(activation)]
        layers.append(nn.Linear(sizes[-1], num_classes))
        super().__init__(*layers)


class ConvBlock(nn.Sequential):
    """3x3 convolution (stride 1, padding 1), [batch norm], activation, [2x2 max pooling].
    ``pool_first`` swaps activation and pooling (Exercise 1.3). With ``batch_norm`` the convolution
    has no bias: the batch norm's shift replaces it."""

    def __init__(self, in_channels: int, out_channels: int, activation: str = "relu", pool: bool = True,
                 pool_first: bool = False, batch_norm: bool = False) -> None:
        layers: list[nn.Module] = [nn.Conv2d(in_channels, out_channels, 3, stride=1, padding=1, bias=not batch_norm)]
        if batch_norm:
            layers.append(nn.BatchNorm2d(out_channels))
        act = make_activation(activation)
        if not pool:
            layers.append(act)
        elif pool_first:
            layers += [nn.MaxPool2d(2, stride=2), act]
        else:
            layers += [act, nn.MaxPool2d(2, stride=2)]
        super().__init__(*layers)


class MnistCNN(nn.Module):
    """The network of Exercise 1.2 (21,578 weights with the default arguments)::

        1-3   conv 8 x 3x3x1, ReLU, max pool 2x2/2       (N, 1, 28, 28) -> (N, 8, 14, 14)
        4-6   conv 16 x 3x3x8, ReLU, max pool 2x2/2      -> (N, 16, 7, 7)
        7-8   conv 32 x 3x3x16, ReLU                     -> (N, 32, 7, 7)
        9     fully connected, 10 outputs                -> (N, 10) logits
        10-11 softmax + cross-entropy: in the loss

    Options of Exercises 1.3 and 1.5, each off by default: ``channels`` (the three widths),
    ``activation``, ``pool_first``, ``batch_norm`` (after every convolution) and ``dropout`` (on the
    flattened features before the fully connected layer).
    """

    def __init__(self, channels: Sequence[int] = (8, 16, 32), activation: str = "relu", pool_first: bool = False,
                 batch_norm: bool = False, dropout: float = 0.0, num_classes: int = 10, image_size: int = 28) -> None:
        super().__init__()
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        c1, c2, c3 = channels
        self.block1 = ConvBlock(1, c1, activation, pool=True, pool_first=pool_first, batch_norm=batch_norm)
        self.block2 = ConvBlock(c1, c2, activation, pool=True, pool_first=pool_first, batch_norm=batch_norm)
        self.block3 = ConvBlock(c2, c3, activation, pool=False, batch_norm=batch_norm)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else None
        self.classifier = nn.Linear(c3 * (image_size // 4) ** 2, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        x = self.block3(self.block2(self.block1(x))).flatten(1)
        if self.dropout is not None:
            x = self.dropout(x)
        return self.classifier(x)


# --- segmentation ------------------------------------------------------------------------------

SKIP_MODES = (None, "concat", "sum")


class ConvStage(nn.Module):
    """``depth`` x (conv 3x3 [+ BN] + activation); with ``residual`` the input is added before the
    last activation, ``act(F(x) + shortcut(x))`` as in ResNet, through a 1x1 convolution where the
    channel count changes."""

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

    def start_as_shortcut(self) -> None:
        """Zero the body's last convolution: the block then computes act(shortcut(x)) until it learns more.
        Without batch norm a residual sum adds the body's variance to the shortcut's at every block; this
        keeps the signal's scale through the network at the start."""
        if self.shortcut is None:
            raise ValueError("start_as_shortcut needs a residual block (residual=True)")
        last = [m for m in self.body if isinstance(m, nn.Conv2d)][-1]
        nn.init.zeros_(last.weight)
        if last.bias is not None:
            nn.init.zeros_(last.bias)

    def forward(self, x: Tensor) -> Tensor:
        out = self.body(x)
        if self.shortcut is not None:
            out = out + self.shortcut(x)
        return self.act(out)


class UpSample(nn.Sequential):
    """Transposed convolution that doubles the resolution, [+ BN] + activation. Its kernel must be a
    multiple of the stride 2, so that every output pixel gets the same number of taps (no
    checkerboard artefacts); the padding makes the output exactly twice the input."""

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
    """Join the up-sampled decoder features with the encoder features of the same resolution."""

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
    """How many inputs one output pixel of ``conv`` sums: in_channels x (k/stride)^2."""
    (kh, kw), (sh, sw) = conv.kernel_size, conv.stride
    if kh % sh or kw % sw:
        raise ValueError(f"kernel {conv.kernel_size} is not a multiple of the stride {conv.stride}")
    return conv.in_channels // conv.groups * (kh // sh) * (kw // sw)


class SegNet(nn.Module):
    """Encoder-decoder for segmentation: the Ex 1.2 CNN's conv 3x3 / ReLU / max-pool encoder without
    its fully connected layer, transposed convolutions back up, a 1x1 convolution as classifier.
    With ``channels=(8, 16, 32)``::

        input (N, 2, 128, 128)
        encoder[0]  conv 8 x 3x3, ReLU                 -> (N, 8, 128, 128)  --skip--.
        pool        max pool 2x2/2                     -> (N, 8, 64, 64)            |
        encoder[1]  conv 16 x 3x3, ReLU                -> (N, 16, 64, 64)  --skip-. |
        pool        max pool 2x2/2                     -> (N, 16, 32, 32)         | |
        bottleneck  conv 32 x 3x3, ReLU                -> (N, 32, 32, 32)         | |
        ups[0]      transposed conv 16 x 2x2/2, ReLU   -> (N, 16, 64, 64)         | |
        merges[0]   (concat or sum with the skip)                            <----' |
        decoder[0]  conv 16 x 3x3, ReLU                -> (N, 16, 64, 64)           |
        ups[1]      transposed conv 8 x 2x2/2, ReLU    -> (N, 8, 128, 128)          |
        merges[1]   (concat or sum with the skip)                            <------'
        decoder[1]  conv 8 x 3x3, ReLU                 -> (N, 8, 128, 128)
        head        conv 2 x 1x1                       -> (N, 2, 128, 128) logits

    Each entry of ``channels`` after the second adds a level. The options flip one thing at a time:
    ``skip`` (None, "concat" as in U-Net, or "sum"); ``block_depth`` (each conv + ReLU becomes that
    many); ``residual`` (a shortcut over each stage); ``batch_norm`` (after every convolution and
    transposed convolution); ``input_norm`` (each input image standardised per channel); ``dropout``
    (Dropout2d after the bottleneck); ``up_kernel``; ``init`` (one of ``INIT_SCHEMES``).
    """

    def __init__(self, in_channels: int = 2, num_classes: int = 2, channels: Sequence[int] = (8, 16, 32), *,
                 skip: str | None = None, block_depth: int = 1, residual: bool = False, batch_norm: bool = False,
                 input_norm: bool = False, dropout: float = 0.0, up_kernel: int = 2, activation: str = "relu",
                 init: str = "default") -> None:
        super().__init__()
        if len(channels) < 2:
            raise ValueError(f"need at least two levels of channels, got {tuple(channels)}")
        if not 0 <= dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        if init not in INIT_SCHEMES:
            raise ValueError(f"unknown init {init!r}; choose one of {', '.join(INIT_SCHEMES)}")
        if init == "he_zero" and not residual:
            raise ValueError("init 'he_zero' zeroes each residual block's last convolution; it needs residual=True")
        stage = dict(depth=block_depth, residual=residual, batch_norm=batch_norm, activation=activation)
        *enc, bottom = channels
        self.input_norm = nn.InstanceNorm2d(in_channels) if input_norm else None
        self.encoder = nn.ModuleList(ConvStage(c_in, c_out, **stage) for c_in, c_out in zip([in_channels, *enc[:-1]], enc))
        self.pool = nn.MaxPool2d(2, stride=2)
        self.bottleneck = ConvStage(enc[-1], bottom, **stage)
        self.drop = nn.Dropout2d(dropout) if dropout > 0 else nn.Identity()
        widths = list(reversed(enc))  # the decoder, deepest level first
        self.ups = nn.ModuleList(UpSample(c_in, c_out, kernel=up_kernel, batch_norm=batch_norm, activation=activation)
                                 for c_in, c_out in zip([bottom, *widths[:-1]], widths))
        self.merges = nn.ModuleList(Merge(skip) for _ in widths)
        merged = 2 if skip == "concat" else 1
        self.decoder = nn.ModuleList(ConvStage(merged * c, c, **stage) for c in widths)
        self.head = nn.Conv2d(enc[0], num_classes, kernel_size=1)
        self.init_scheme = INIT_SCHEMES[init]  # recorded with every run
        if init != "default":
            self._init_he(transposed_by_fan_in=init != "kaiming")
        if init == "he_zero":
            for stage in (*self.encoder, self.bottleneck, *self.decoder):
                stage.start_as_shortcut()

    def _init_he(self, transposed_by_fan_in: bool) -> None:
        """He-normal weights and zero biases. A transposed convolution's weight is (in, out, k, k),
        and PyTorch's fan_out of it is in*k^2, a quarter of the in*(k/2)^2 inputs each output pixel
        of a stride-2 layer sums. "kaiming" uses that fan_out: a quarter of He's variance, irrelevant
        where batch norm follows, 4x less signal variance per up-sampling where none does; "he"
        uses the true fan-in."""
        for m in self.modules():
            if isinstance(m, nn.ConvTranspose2d) and transposed_by_fan_in:
                nn.init.normal_(m.weight, std=(2.0 / transposed_fan_in(m)) ** 0.5)
            elif isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
                nn.init.kaiming_normal_(m.weight, mode="fan_out" if isinstance(m, nn.ConvTranspose2d) else "fan_in",
                                        nonlinearity="relu")
            else:
                continue
            if m.bias is not None:
                nn.init.zeros_(m.bias)

    def forward(self, x: Tensor) -> Tensor:
        if self.input_norm is not None:
            x = self.input_norm(x)
        skips = []
        for stage in self.encoder:  # convolve, keep the features for the decoder, halve the size
            x = stage(x)
            skips.append(x)
            x = self.pool(x)
        x = self.drop(self.bottleneck(x))
        for up, merge, stage, skip in zip(self.ups, self.merges, self.decoder, reversed(skips)):
            x = stage(merge(up(x), skip))  # double the size, bring in the encoder features, convolve
        return self.head(x)
