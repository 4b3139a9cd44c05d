"""The Ex 2.3-2.5 networks (skip connections, residual blocks, the best model): output shapes,
hand-computed weight counts, and that a residual block really bridges its convolutions."""
import argparse

import pytest
import torch
from torch import nn

import ex2_5_best
from common.models import count_weights
from common.segnets import ConvStage, SegNet

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

    assert tuple(ex2_1_segnet.CHANNELS) == EX21_OPTIONS["channels"] and ex2_1_segnet.UP_KERNEL == 4
    spec = ex2_1_segnet.segnet_spec(argparse.Namespace(lr=1e-3, epochs=1, batch_size=1))
    batch_norm = getattr(ex2_1_segnet, "BATCH_NORM", False)
    assert count_weights(spec.build_model()) == EX21 + (232 if batch_norm else 0)
    assert count_weights(SegNet(**EX21_OPTIONS, batch_norm=True)) == EX21 + 232


@pytest.mark.parametrize("options,expected", EX21_WEIGHTS)
def test_ex2_1_variants_weight_counts(options, expected):
    assert count_weights(SegNet(**EX21_OPTIONS, **options)) == expected


@pytest.mark.parametrize("options", [o for o, _ in EX21_WEIGHTS])
def test_ex2_1_variants_output_shapes(options):
    net = SegNet(**EX21_OPTIONS, **options)
    assert net(torch.randn(2, 2, 128, 128)).shape == (2, 2, 128, 128)
    net.eval()
    assert net(torch.randn(1, 2, 32, 64)).shape == (1, 2, 32, 64)


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
    net = ex2_5_best.best_spec(argparse.Namespace(lr=1e-2, epochs=1, batch_size=10)).build_model()
    assert count_weights(net) == expected
    assert net(torch.randn(2, 2, 128, 128)).shape == (2, 2, 128, 128)


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


def test_residual_projection_where_channels_change():
    stage = ConvStage(4, 8, depth=2, residual=True)
    assert isinstance(stage.shortcut, nn.Conv2d) and stage.shortcut.kernel_size == (1, 1)
    assert isinstance(ConvStage(8, 8, depth=2, residual=True).shortcut, nn.Identity)
    assert stage(torch.randn(1, 4, 8, 8)).shape == (1, 8, 8, 8)
