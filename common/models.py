"""Networks for MNIST classification. Every model returns logits; the loss applies the softmax.

Weights use PyTorch's default initialisation (recorded as ``INIT_SCHEME``).
"""
from __future__ import annotations

from typing import Sequence

from torch import Tensor, nn

INIT_SCHEME = (
    "PyTorch defaults: Conv2d/Linear weights kaiming_uniform_(a=sqrt(5)), i.e. "
    "U(-1/sqrt(fan_in), 1/sqrt(fan_in)); biases U(-1/sqrt(fan_in), 1/sqrt(fan_in))"
)

ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid, "gelu": nn.GELU}


def make_activation(name: str) -> nn.Module:
    if name not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; choose one of {', '.join(ACTIVATIONS)}")
    return ACTIVATIONS[name]()


def count_weights(model: nn.Module) -> int:
    """Number of learnable parameters (weights and biases)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


class MLP(nn.Sequential):
    """Fully connected network: flatten, then Linear+activation for each hidden layer, Linear.

    (N, 1, 28, 28) or (N, 784) -> (N, num_classes) logits.
    """

    def __init__(
        self,
        in_features: int = 28 * 28,
        hidden: Sequence[int] = (128, 64),
        num_classes: int = 10,
        activation: str = "relu",
    ) -> None:
        layers: list[nn.Module] = [nn.Flatten()]
        sizes = [in_features, *hidden]
        for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
            layers += [nn.Linear(fan_in, fan_out), make_activation(activation)]
        layers.append(nn.Linear(sizes[-1], num_classes))
        super().__init__(*layers)


class ConvBlock(nn.Sequential):
    """3x3 convolution (stride 1, padding 1), [batch norm], activation and optional 2x2 max pooling.

    ``pool_first`` swaps activation and pooling (Exercise 1.3): conv, [batch norm], pool, activation.
    With ``batch_norm`` the convolution has no bias (the batch norm's shift replaces it).
    """

    def __init__(self, in_channels: int, out_channels: int, activation: str = "relu",
                 pool: bool = True, pool_first: bool = False, batch_norm: bool = False) -> None:
        layers: list[nn.Module] = [nn.Conv2d(in_channels, out_channels, kernel_size=3, stride=1, padding=1,
                                             bias=not batch_norm)]
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
    """The network prescribed by Exercise 1.2 (21,578 weights with the default arguments):

    1-3  conv 8 x 3x3x1, ReLU, max pool 2x2/2       (N, 1, 28, 28) -> (N, 8, 14, 14)
    4-6  conv 16 x 3x3x8, ReLU, max pool 2x2/2      -> (N, 16, 7, 7)
    7-8  conv 32 x 3x3x16, ReLU                     -> (N, 32, 7, 7)
    9    fully connected, 10 outputs                -> (N, 10) logits
    10-11 softmax + cross-entropy: in the loss (``nn.CrossEntropyLoss``)

    Options for the variants of Exercises 1.3 and 1.5 (each off by default): ``channels`` (widths
    of the three convolutions), ``activation``, ``pool_first`` (pool before the activation),
    ``batch_norm`` (after every convolution) and ``dropout`` (probability of dropping each of the
    flattened features before the fully connected layer).
    """

    def __init__(self, channels: Sequence[int] = (8, 16, 32), activation: str = "relu",
                 pool_first: bool = False, batch_norm: bool = False, dropout: float = 0.0,
                 num_classes: int = 10, image_size: int = 28) -> None:
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
        x = self.block1(x)
        x = self.block2(x)
        x = self.block3(x).flatten(1)
        if self.dropout is not None:
            x = self.dropout(x)
        return self.classifier(x)
