"""common.models: hand-computed weight counts of every network and option, output shapes, the layer
descriptions recorded with each run, the Ex 1.3 pool-order property, and SegNet's initialisations."""
import pytest
import torch
from torch import nn

import ex2_5_best
from common import models, train
from common.models import ConvStage, SegNet, UpSample, count_weights, layer_list, transposed_fan_in


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


# --- Exercise 1.3: pooling commutes with non-decreasing activations ---------------------------

@pytest.mark.parametrize("activation", ["relu", "tanh"])
def test_pool_first_and_pool_after_give_identical_outputs_and_gradients(activation):
    torch.manual_seed(0)
    after = models.MnistCNN(activation=activation, pool_first=False)
    first = models.MnistCNN(activation=activation, pool_first=True)
    first.load_state_dict(after.state_dict())  # same parameter names, only the layer order differs
    x = torch.randn(32, 1, 28, 28) * 3  # wide range: many negative and saturated pre-activations
    y = torch.randint(0, 10, (32,))
    outputs, grads = [], []
    for net in (after, first):
        out = net(x)
        torch.nn.functional.cross_entropy(out, y).backward()
        outputs.append(out.detach())
        grads.append({name: p.grad.clone() for name, p in net.named_parameters()})
    torch.testing.assert_close(outputs[0], outputs[1], rtol=0, atol=1e-6)
    assert grads[0].keys() == grads[1].keys()
    for name in grads[0]:
        torch.testing.assert_close(grads[0][name], grads[1][name], rtol=1e-5, atol=1e-7, msg=name)


def test_max_pooling_commutes_with_relu_and_tanh_but_not_with_a_non_monotonic_function():
    """The property behind the test above, and a check that it is not trivially true: for the
    non-monotonic x^2 the two orders differ."""
    torch.manual_seed(0)
    x = torch.randn(4, 1, 8, 8)
    pool = torch.nn.MaxPool2d(2)
    assert torch.equal(pool(torch.relu(x)), torch.relu(pool(x)))
    assert torch.equal(pool(torch.tanh(x)), torch.tanh(pool(x)))
    assert not torch.equal(pool(x ** 2), pool(x) ** 2)


# --- SegNet -------------------------------------------------------------------------------

# Default SegNet (channels 8-16-32), hand-computed:
# enc1 conv 2->8: 2*8*9+8 = 152; enc2 8->16: 1168; bottleneck 16->32: 4640;
# up2 transposed 32->16 2x2: 32*16*4+16 = 2064; dec2 16->16: 2320;
# up1 transposed 16->8 2x2: 16*8*4+8 = 520; dec1 8->8: 584; head 1x1 8->2: 18.   Sum 11,466.
BASE = 11_466
SEGNET_WEIGHT_COUNTS = [
    ({}, BASE),
    ({"skip": "sum"}, BASE),  # summation adds no weights
    ({"dropout": 0.3}, BASE),
    ({"input_norm": True}, BASE),  # per-image standardisation learns nothing
    # concat doubles the decoder convs' input: dec2 32->16 = 4624 (+2304), dec1 16->8 = 1160 (+576)
    ({"skip": "concat"}, BASE + 2304 + 576),
    # batch norm: convolution biases dropped, 2 parameters per channel of each of the 7 norms
    ({"batch_norm": True}, BASE + (8 + 16 + 32 + 16 + 16 + 8 + 8)),
    # block depth 2: one more conv c->c per stage: 8 (584), 16 (2320), 32 (9248), 16 (2320), 8 (584)
    ({"block_depth": 2}, BASE + 584 + 2320 + 9248 + 2320 + 584),
    # + residual: 1x1 projections where channels change: 2->8 (24), 8->16 (144), 16->32 (544)
    ({"block_depth": 2, "residual": True}, BASE + 15_056 + 24 + 144 + 544),
    # depth 3: two more convs per stage
    ({"block_depth": 3}, BASE + 2 * 15_056),
    # transposed convolutions 4x4/2: up2 32*16*16+16 = 8208 (+6144), up1 16*8*16+8 = 2056 (+1536)
    ({"up_kernel": 4}, BASE + 6144 + 1536),
]


@pytest.mark.parametrize("options,expected", SEGNET_WEIGHT_COUNTS)
def test_segnet_weight_counts(options, expected):
    assert count_weights(SegNet(**options)) == expected


@pytest.mark.parametrize("options", [o for o, _ in SEGNET_WEIGHT_COUNTS] + [
    {"channels": (8, 16, 32, 64)}, {"channels": (4, 8)},
    {"skip": "concat", "block_depth": 3, "residual": True, "batch_norm": True, "dropout": 0.2}])
def test_segnet_output_is_logits_per_pixel(options):
    net = SegNet(**options)
    out = net(torch.randn(2, 2, 32, 32))  # small images keep the suite fast; the layers do not care
    assert out.shape == (2, 2, 32, 32)
    net.eval()
    assert net(torch.randn(1, 2, 16, 24)).shape == (1, 2, 16, 24)  # any size divisible by 2^pools


def test_intermediate_shapes_follow_the_diagram():
    net = SegNet()
    x = torch.randn(1, 2, 128, 128)
    e1 = net.encoder[0](x)
    e2 = net.encoder[1](net.pool(e1))
    b = net.bottleneck(net.pool(e2))
    assert (e1.shape, e2.shape, b.shape) == ((1, 8, 128, 128), (1, 16, 64, 64), (1, 32, 32, 32))
    d2 = net.decoder[0](net.ups[0](b))
    assert d2.shape == (1, 16, 64, 64)
    assert net.decoder[1](net.ups[1](d2)).shape == (1, 8, 128, 128)


def test_no_fully_connected_layer_and_only_allowed_transposed_kernels():
    net = SegNet(up_kernel=4)
    assert not any(isinstance(m, torch.nn.Linear) for m in net.modules())
    for m in net.modules():
        if isinstance(m, torch.nn.ConvTranspose2d):
            assert m.kernel_size[0] % m.stride[0] == 0
    with pytest.raises(ValueError, match="multiple of its stride"):
        UpSample(4, 2, kernel=3)


def test_residual_stage_adds_its_input():
    stage = ConvStage(4, 4, depth=2, residual=True)
    torch.nn.init.zeros_(stage.body[-1].weight)
    torch.nn.init.zeros_(stage.body[-1].bias)
    x = torch.randn(2, 4, 8, 8)
    assert torch.allclose(stage(x), torch.relu(x))  # F(x) = 0: only the identity shortcut remains
    assert isinstance(ConvStage(4, 6, residual=True).shortcut, torch.nn.Conv2d)  # 1x1 projection


def test_he_zero_starts_every_residual_block_as_its_shortcut():
    """Each stage of a "he_zero" network computes relu(shortcut(x)) at the start; everything else is drawn
    as "he" draws it (same seed, same weights)."""
    torch.manual_seed(0)
    zero = SegNet(channels=(8, 16, 32), block_depth=3, residual=True, init="he_zero")
    torch.manual_seed(0)
    he = SegNet(channels=(8, 16, 32), block_depth=3, residual=True, init="he")
    stages = [*zero.encoder, zero.bottleneck, *zero.decoder]
    x = torch.randn(2, 8, 8, 8)
    for stage in (stages[1], stages[-1]):  # encoder[1]: 8 -> 16 through a 1x1 projection; decoder[1]: 8 -> 8, identity
        shortcut = stage.shortcut(x[:, :stage.body[0].in_channels])
        assert torch.equal(stage(x[:, :stage.body[0].in_channels]), torch.relu(shortcut))
    zeroed = {f"{name}.body.4.{p}" for name in ("encoder.0", "encoder.1", "bottleneck", "decoder.0", "decoder.1")
              for p in ("weight", "bias")}  # body: conv, ReLU, conv, ReLU, conv
    for (name, a), b in zip(zero.state_dict().items(), he.state_dict().values()):
        assert (a.abs().sum() == 0) if name in zeroed else torch.equal(a, b), name
    with pytest.raises(ValueError, match="needs residual=True"):
        SegNet(init="he_zero")


@pytest.mark.parametrize("bad,match", [({"skip": "add"}, "unknown skip mode"), ({"block_depth": 0}, "at least 1"),
                                       ({"dropout": 1.0}, "dropout"), ({"channels": (8,)}, "two levels")])
def test_bad_options_are_rejected(bad, match):
    with pytest.raises(ValueError, match=match):
        SegNet(**bad)


def test_kaiming_init_keeps_the_architecture_and_zeroes_biases():
    torch.manual_seed(0)
    net = SegNet(init="kaiming")
    assert count_weights(net) == BASE
    assert all(m.bias.abs().sum() == 0 for m in net.modules() if isinstance(m, torch.nn.Conv2d))
    conv = net.encoder[1].body[0]  # fan_in 8*3*3 = 72: std sqrt(2/72) = 0.167
    assert conv.weight.std().item() == pytest.approx((2 / 72) ** 0.5, rel=0.15)
    with pytest.raises(ValueError, match="unknown init"):
        SegNet(init="xavier")


WIDTH, SIDE, BORDER = 64, 16, 2  # channels and size of the probe; border pixels (fewer taps) left out
TRANSPOSED_VARIANCE_RATIO = 0.25  # kaiming transposed convolutions: a quarter of He's variance
RATIO_TOLERANCE = 0.2  # relative; the sampling error is a few per cent with these widths and a fixed seed


@pytest.mark.parametrize("init, ratio", [("kaiming", TRANSPOSED_VARIANCE_RATIO), ("he", 1.0)])
@pytest.mark.parametrize("up_kernel", [2, 4])
def test_transposed_convolutions_keep_a_quarter_of_the_variance_with_kaiming_all_of_it_with_he(up_kernel, init, ratio):
    """He's scheme keeps the pre-activation variance: Var(W relu(z)) = Var(z) for unit-variance z.
    The "kaiming" transposed convolution (mode="fan_out") divides by in*k^2 while each output
    pixel sums in*(k/2)^2 inputs, so without batch norm the variance drops to about 1/4 per
    up-sampling; "he" divides by the true fan-in and keeps it, as the 3x3 convolutions (mode="fan_in")
    do (the check of the measurement)."""
    torch.manual_seed(0)
    net = SegNet(channels=(WIDTH, WIDTH), init=init, up_kernel=up_kernel)
    z = torch.randn(8, WIDTH, SIDE, SIDE)
    inner = (slice(None), slice(None), slice(BORDER, -BORDER), slice(BORDER, -BORDER))

    def variance_ratio(layer: torch.nn.Module) -> float:
        return (layer(torch.relu(z))[inner].var() / z.var()).item()

    assert variance_ratio(net.ups[0][0]) == pytest.approx(ratio, rel=RATIO_TOLERANCE)
    assert variance_ratio(net.decoder[0].body[0]) == pytest.approx(1.0, rel=RATIO_TOLERANCE)


def test_he_init_changes_only_the_transposed_convolutions_of_kaiming():
    torch.manual_seed(0)
    kaiming = SegNet(init="kaiming", up_kernel=4)
    torch.manual_seed(0)
    he = SegNet(init="he", up_kernel=4)
    for (name, a), b in zip(kaiming.state_dict().items(), he.state_dict().values()):
        if name.startswith("ups.") and name.endswith("0.weight"):  # (in, out, 4, 4), stride 2: fan-in in*4
            assert not torch.equal(a, b) and b.std().item() == pytest.approx((2 / (a.shape[0] * 4)) ** 0.5, rel=0.15)
        else:
            assert torch.equal(a, b), name
    with pytest.raises(ValueError, match="not a multiple of the stride"):
        transposed_fan_in(torch.nn.ConvTranspose2d(4, 4, 3, stride=2))


def test_input_norm_ignores_each_images_stain_contrast_and_brightness():
    torch.manual_seed(0)
    net = SegNet(input_norm=True, init="kaiming").eval()  # He init: outputs that depend clearly on inputs
    x = torch.randn(3, 2, 32, 32)
    gain = torch.tensor([0.5, 2.0]).view(1, 2, 1, 1) * torch.tensor([1.0, 1.5, 0.8]).view(3, 1, 1, 1)
    shift = torch.randn(3, 2, 1, 1)
    assert torch.allclose(net(x * gain + shift), net(x), atol=1e-4)
    plain = SegNet(init="kaiming").eval()
    plain.load_state_dict(net.state_dict())  # the same weights: input_norm adds none
    assert (plain(x * gain + shift) - plain(x)).abs().max() > 0.1


# --- the Ex 2.1-2.5 networks -----------------------------------------------------------------

# The Ex 2.1 network (see test_ex2_1_network_is_the_one_tabulated): channels 8-16-32-64, 4x4/2
# transposed convolutions, 2 input channels, 2 classes; hand-computed:
#   enc1 conv 2->8 3x3: 2*8*9+8 = 152          enc2 8->16: 8*16*9+16 = 1,168
#   enc3 16->32: 16*32*9+32 = 4,640            bottleneck 32->64: 32*64*9+64 = 18,496
#   up3 transposed 64->32 4x4: 64*32*16+32 = 32,800    dec3 32->32: 32*32*9+32 = 9,248
#   up2 transposed 32->16 4x4: 32*16*16+16 = 8,208     dec2 16->16: 16*16*9+16 = 2,320
#   up1 transposed 16->8 4x4: 16*8*16+8 = 2,056        dec1 8->8: 8*8*9+8 = 584
#   head 1x1 8->2: 8*2+2 = 18                                                  sum 79,690
EX21_OPTIONS = {"channels": (8, 16, 32, 64), "up_kernel": 4}
EX21 = 79_690
# Ex 2.3, concat: the decoder convs see twice the channels: dec3 64->32 = 18,464 (+9,216),
# dec2 32->16 = 4,624 (+2,304), dec1 16->8 = 1,160 (+576); sum: no weights.
CONCAT = EX21 + 9_216 + 2_304 + 576  # 91,786
# Ex 2.4, each block one more conv c->c: 8 (584), 16 (2,320), 32 (9,248), 64 (36,928), 32, 16, 8
EXTRA_PAIR = 584 + 2_320 + 9_248 + 36_928 + 9_248 + 2_320 + 584  # 61,232
# residual: 1x1 projections where a block changes the channel count: 2->8 (24), 8->16 (144),
# 16->32 (544), 32->64 (2,112); the decoder blocks keep their width (identity shortcuts, no weights)
PROJECTIONS = 24 + 144 + 544 + 2_112  # 2,824
EX21_WEIGHTS = [
    ({}, EX21),
    ({"skip": "concat"}, CONCAT),
    ({"skip": "sum"}, EX21),
    ({"block_depth": 2}, EX21 + EXTRA_PAIR),  # 140,922
    ({"block_depth": 2, "residual": True}, EX21 + EXTRA_PAIR + PROJECTIONS),  # 143,746
    ({"block_depth": 3}, EX21 + 2 * EXTRA_PAIR),  # 202,154
    ({"block_depth": 3, "residual": True}, EX21 + 2 * EXTRA_PAIR + PROJECTIONS),  # 204,978
    # concat + residual: the decoder blocks now change width too, 64->32 (2,080), 32->16 (528), 16->8 (136)
    ({"skip": "concat", "block_depth": 2, "residual": True}, CONCAT + EXTRA_PAIR + PROJECTIONS + 2_080 + 528 + 136),
    # concat + batch norm: conv biases dropped (the norm's shift replaces them), 2 per channel per norm:
    # enc 144+16, 1,152+32, 4,608+64; bottleneck 18,432+128; up3 32,768+64, dec3 18,432+64;
    # up2 8,192+32, dec2 4,608+32; up1 2,048+16, dec1 1,152+16; head 18
    ({"skip": "concat", "batch_norm": True}, 92_018),
]


def test_ex2_1_network_is_the_one_tabulated():
    """ex2_1_segnet builds the tabulated network; with its batch norm, every convolution (7) and
    transposed convolution (3) loses its bias and gains 2 weights per channel: +1 per channel,
    8+16+32+64+32+16+8 + 32+16+8 = 232."""
    import ex2_1_segnet

    network = ex2_1_segnet.SEGNET
    assert tuple(network["channels"]) == EX21_OPTIONS["channels"] and network["up_kernel"] == 4
    model = train.build_model({"model": network})
    assert count_weights(model) == EX21 + (232 if network.get("batch_norm") else 0)
    assert count_weights(SegNet(**EX21_OPTIONS, batch_norm=True)) == EX21 + 232


@pytest.mark.parametrize("options,expected", EX21_WEIGHTS)
def test_ex2_1_variants_weight_counts(options, expected):
    assert count_weights(SegNet(**EX21_OPTIONS, **options)) == expected


@pytest.mark.parametrize("options", [o for o, _ in EX21_WEIGHTS])
def test_ex2_1_variants_output_shapes(options):
    net = SegNet(**EX21_OPTIONS, **options)
    assert net(torch.randn(2, 2, 32, 32)).shape == (2, 2, 32, 32)
    net.eval()
    assert net(torch.randn(1, 2, 16, 24)).shape == (1, 2, 16, 24)  # three poolings: multiples of 8


def test_best_model_weight_count_and_shape():
    # channels 8-16-32-64, concat skips, batch norm (no conv biases; 2 weights per channel per norm),
    # blocks of 2 conv+ReLU pairs with residual 1x1 projections (+ norm) where the width changes.
    # A block cin->cout: 9*cin*cout + 2*cout + 9*cout*cout + 2*cout [+ cin*cout + 2*cout].
    blocks = {"enc 2->8": 144 + 16 + 576 + 16 + 16 + 16,  # 784
              "enc 8->16": 1_152 + 32 + 2_304 + 32 + 128 + 32,  # 3,680
              "enc 16->32": 4_608 + 64 + 9_216 + 64 + 512 + 64,  # 14,528
              "bottleneck 32->64": 18_432 + 128 + 36_864 + 128 + 2_048 + 128,  # 57,728
              "dec 64->32 (concat)": 18_432 + 64 + 9_216 + 64 + 2_048 + 64,  # 29,888
              "dec 32->16 (concat)": 4_608 + 32 + 2_304 + 32 + 512 + 32,  # 7,520
              "dec 16->8 (concat)": 1_152 + 16 + 576 + 16 + 128 + 16}  # 1,904
    ups = (64 * 32 * 4 + 64) + (32 * 16 * 4 + 32) + (16 * 8 * 4 + 16)  # transposed 2x2 + norm: 10,864
    head = 8 * 2 + 2
    expected = sum(blocks.values()) + ups + head
    assert expected == 126_914
    net = train.build_model({"model": ex2_5_best.UNET})
    assert count_weights(net) == expected
    assert net(torch.randn(2, 2, 32, 32)).shape == (2, 2, 32, 32)


@pytest.mark.parametrize("depth", [1, 2, 3])
def test_residual_block_bridges_the_whole_block(depth):
    """With the block's convolutions zeroed, a residual block passes relu(shortcut(x)); a plain one 0."""
    x = torch.randn(2, 8, 16, 16)
    for residual in (False, True):
        stage = ConvStage(8, 8, depth=depth, residual=residual)
        for conv in stage.body:
            if isinstance(conv, nn.Conv2d):
                nn.init.zeros_(conv.weight)
                nn.init.zeros_(conv.bias)
        expected = torch.relu(x) if residual else torch.zeros_like(x)
        torch.testing.assert_close(stage(x), expected)
    body = [m for m in ConvStage(8, 8, depth=depth).body if isinstance(m, nn.Conv2d)]
    assert len(body) == depth  # "a block of two or three conv+activation pairs"


def test_residual_projection_where_channels_change_or_not():
    stage = ConvStage(4, 8, depth=2, residual=True)
    assert isinstance(stage.shortcut, nn.Conv2d) and stage.shortcut.kernel_size == (1, 1)
    assert isinstance(ConvStage(8, 8, depth=2, residual=True).shortcut, nn.Identity)
    assert stage(torch.randn(1, 4, 8, 8)).shape == (1, 8, 8, 8)


# --- layer_list: the architecture as the report reads it ---------------------------------------

CNN_LAYERS = ["conv 1→8 3×3", "ReLU", "max pool 2", "conv 8→16 3×3", "ReLU", "max pool 2", "conv 16→32 3×3",
              "ReLU", "linear 1568→10"]  # 32 channels x 7 x 7 = 1568 features


def test_layer_list_of_the_exercise_1_2_network():
    assert layer_list(models.MnistCNN()) == CNN_LAYERS


def test_layer_list_of_the_cnn_options():
    assert layer_list(models.MnistCNN(pool_first=True))[:3] == ["conv 1→8 3×3", "max pool 2", "ReLU"]
    assert layer_list(models.MnistCNN(activation="tanh")).count("Tanh") == 3
    # batch norm: the convolutions lose their biases; dropout sits before the classifier
    assert layer_list(models.MnistCNN(batch_norm=True, dropout=0.25)) == [
        "conv 1→8 3×3 no bias", "BN", "ReLU", "max pool 2", "conv 8→16 3×3 no bias", "BN", "ReLU", "max pool 2",
        "conv 16→32 3×3 no bias", "BN", "ReLU", "dropout 0.25", "linear 1568→10"]
    assert layer_list(models.MLP()) == ["Flatten", "linear 784→128", "ReLU", "linear 128→64", "ReLU",
                                        "linear 64→10"]


def test_layer_list_of_segnet_names_each_layer_once():
    """The shared max pooling appears once although the encoder uses it at every level; the merges
    of a network without skips and the identity dropout leave no entry."""
    assert layer_list(SegNet()) == [
        "conv 2→8 3×3", "ReLU", "conv 8→16 3×3", "ReLU", "max pool 2", "conv 16→32 3×3", "ReLU",
        "transposed conv 32→16 2×2/2", "ReLU", "transposed conv 16→8 2×2/2", "ReLU",
        "conv 16→16 3×3", "ReLU", "conv 8→8 3×3", "ReLU", "conv 8→2 1×1"]


def test_layer_list_of_segnet_options():
    layers = layer_list(SegNet(channels=(4, 8), skip="concat", up_kernel=4, input_norm=True, dropout=0.2))
    assert layers == ["input standardisation", "conv 2→4 3×3", "ReLU", "max pool 2", "conv 4→8 3×3", "ReLU",
                      "dropout2d 0.2", "transposed conv 8→4 4×4/2", "ReLU", "concat skip", "conv 8→4 3×3", "ReLU",
                      "conv 4→2 1×1"]
    residual = layer_list(SegNet(channels=(4, 8), block_depth=2, residual=True, batch_norm=True))
    # a block that changes the width gets a 1x1 projection (with its norm); one that keeps it, none
    assert residual[:7] == ["conv 2→4 3×3 no bias", "BN", "ReLU", "conv 4→4 3×3 no bias", "BN",
                            "conv 2→4 1×1 no bias", "BN"]
    assert residual.count("conv 4→4 1×1 no bias") == 0
