import pytest
import torch

from common import models

# (model, learnable weights): hand-computed.
# CNN: conv1 8*9+8=80, conv2 16*72+16=1168, conv3 32*144+32=4640, fc 32*7*7*10+10=15690 -> 21578
# MLP 784-128-64-10: 784*128+128 + 128*64+64 + 64*10+10 = 109386
WEIGHT_COUNTS = [
    (lambda: models.MnistCNN(), 21_578),
    (lambda: models.MnistCNN(pool_first=True), 21_578),
    (lambda: models.MnistCNN(activation="tanh"), 21_578),
    # Ex 1.5 options. Batch norm: conv biases dropped (8+16+32=56), gamma and beta added (2*56) -> 21634
    (lambda: models.MnistCNN(batch_norm=True), 21_578 - 56 + 2 * 56),
    (lambda: models.MnistCNN(dropout=0.25), 21_578),
    # channels 16-32-64: 16*9+16 + 32*144+32 + 64*288+64 + 64*7*7*10+10 = 160+4640+18496+31370
    (lambda: models.MnistCNN(channels=(16, 32, 64)), 54_666),
    (lambda: models.MnistCNN(channels=(16, 32, 64), batch_norm=True, dropout=0.1), 54_666 - 112 + 224),
    # Ex 1.5's best: 16*9+2*16 + 32*144+2*32 + 128*288+2*128 + 128*49*10+10 = 176+4672+37120+62730
    (lambda: models.MnistCNN(channels=(16, 32, 128), batch_norm=True), 104_698),
    (lambda: models.MLP(hidden=(128, 64)), 109_386),
    (lambda: models.MLP(hidden=(10,)), 784 * 10 + 10 + 10 * 10 + 10),
]


@pytest.mark.parametrize("build,expected", WEIGHT_COUNTS)
def test_weight_counts(build, expected):
    assert models.count_weights(build()) == expected


@pytest.mark.parametrize("build", [b for b, _ in WEIGHT_COUNTS])
def test_output_is_logits_of_shape_batch_by_10(build):
    out = build()(torch.randn(5, 1, 28, 28))
    assert out.shape == (5, 10)
    assert not torch.allclose(out.softmax(1).sum(1), out.sum(1))  # raw logits, not probabilities


def test_cnn_intermediate_shapes_follow_the_exercise_table():
    net = models.MnistCNN()
    x = torch.randn(2, 1, 28, 28)
    assert net.block1(x).shape == (2, 8, 14, 14)
    assert net.block2(net.block1(x)).shape == (2, 16, 7, 7)
    assert net.block3(net.block2(net.block1(x))).shape == (2, 32, 7, 7)


def test_cnn_layer_order():
    relu_first = [type(m).__name__ for m in models.MnistCNN().block1]
    pool_first = [type(m).__name__ for m in models.MnistCNN(pool_first=True).block1]
    assert relu_first == ["Conv2d", "ReLU", "MaxPool2d"]
    assert pool_first == ["Conv2d", "MaxPool2d", "ReLU"]


def test_unknown_activation_is_rejected_with_its_name():
    with pytest.raises(ValueError, match="'swish'"):
        models.MnistCNN(activation="swish")


def test_default_cnn_has_no_optional_layers_and_options_add_them():
    plain = [type(m).__name__ for m in models.MnistCNN().modules()]
    assert "BatchNorm2d" not in plain and "Dropout" not in plain
    net = models.MnistCNN(batch_norm=True, dropout=0.5)
    assert [type(m).__name__ for m in net.block1] == ["Conv2d", "BatchNorm2d", "ReLU", "MaxPool2d"]
    assert net.block1[0].bias is None
    x = torch.randn(8, 1, 28, 28)
    net.eval()
    assert torch.equal(net(x), net(x))  # dropout off in evaluation mode
    net.train()
    assert not torch.equal(net(x), net(x))
    with pytest.raises(ValueError, match="dropout"):
        models.MnistCNN(dropout=1.0)
