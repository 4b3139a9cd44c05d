"""Segmentation networks: output shapes and hand-computed weight counts for every option."""
import pytest
import torch

from common.models import count_weights
from common.segnets import ConvStage, SegNet, UpSample, transposed_fan_in

# Default SegNet (channels 8-16-32), hand-computed:
# enc1 conv 2->8: 2*8*9+8 = 152; enc2 8->16: 1168; bottleneck 16->32: 4640;
# up2 transposed 32->16 2x2: 32*16*4+16 = 2064; dec2 16->16: 2320;
# up1 transposed 16->8 2x2: 16*8*4+8 = 520; dec1 8->8: 584; head 1x1 8->2: 18.   Sum 11,466.
BASE = 11_466
WEIGHT_COUNTS = [
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


@pytest.mark.parametrize("options,expected", WEIGHT_COUNTS)
def test_weight_counts(options, expected):
    assert count_weights(SegNet(**options)) == expected


@pytest.mark.parametrize("options", [o for o, _ in WEIGHT_COUNTS] + [
    {"channels": (8, 16, 32, 64)}, {"channels": (4, 8)},
    {"skip": "concat", "block_depth": 3, "residual": True, "batch_norm": True, "dropout": 0.2}])
def test_output_is_logits_per_pixel(options):
    net = SegNet(**options)
    out = net(torch.randn(3, 2, 128, 128))
    assert out.shape == (3, 2, 128, 128)
    net.eval()
    assert net(torch.randn(1, 2, 64, 96)).shape == (1, 2, 64, 96)  # any size divisible by 2^pools


def test_intermediate_shapes_follow_the_diagram():
    net = SegNet()
    x = torch.randn(2, 2, 128, 128)
    e1 = net.encoder[0](x)
    e2 = net.encoder[1](net.pool(e1))
    b = net.bottleneck(net.pool(e2))
    assert (e1.shape, e2.shape, b.shape) == ((2, 8, 128, 128), (2, 16, 64, 64), (2, 32, 32, 32))
    d2 = net.decoder[0](net.ups[0](b))
    assert d2.shape == (2, 16, 64, 64)
    assert net.decoder[1](net.ups[1](d2)).shape == (2, 8, 128, 128)


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
