"""Batch norm with the statistics of the images predicted (common.seg_eval.adapt_batchnorm): the
blend per image computed by hand in NumPy, instance normalisation at weight 1, AdaBN's set
statistics layer by layer, and what each makes a prediction depend on."""
import numpy as np
import pytest
import torch
from torch import nn

from common import seg_eval
from common.segnets import SegNet


def trained_like(model: nn.Module, seed: int = 0) -> nn.Module:
    """``model`` with made-up running statistics and affine parameters, as after training, in eval mode."""
    gen = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=gen))
            m.running_var.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
            m.weight.data.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
            m.bias.data.copy_(torch.randn(m.num_features, generator=gen))
    return model.eval()


def single_bn(channels: int = 3) -> nn.Module:
    return trained_like(nn.Sequential(nn.BatchNorm2d(channels)))


def test_image_statistics_are_blended_with_the_training_ones_as_computed_by_hand():
    torch.manual_seed(0)
    model = single_bn()
    bn = model[0]
    x = torch.randn(2, 3, 5, 4) * 3 + 1
    w = 0.25
    out = seg_eval.adapt_batchnorm(model, "image", w)(x)
    xs = x.double().numpy()
    mean = (1 - w) * bn.running_mean.double().numpy()[None, :, None, None] + w * xs.mean(axis=(2, 3), keepdims=True)
    var = (1 - w) * bn.running_var.double().numpy()[None, :, None, None] + w * xs.var(axis=(2, 3), keepdims=True)
    expected = ((xs - mean) / np.sqrt(var + bn.eps) * bn.weight.detach().double().numpy()[None, :, None, None]
                + bn.bias.detach().double().numpy()[None, :, None, None])
    assert np.allclose(out.detach().numpy(), expected, atol=1e-5)


def test_weight_one_is_instance_normalisation_with_the_layers_scale_and_shift():
    torch.manual_seed(1)
    model = single_bn()
    bn = model[0]
    x = torch.randn(3, 3, 6, 6) * 2 - 1
    out = seg_eval.adapt_batchnorm(model, "image", 1.0)(x)
    expected = nn.functional.instance_norm(x, weight=bn.weight, bias=bn.bias, eps=bn.eps)
    assert torch.allclose(out, expected, atol=1e-5)


def test_a_constant_channel_gives_the_layers_shift():
    """An image whose channel is constant has variance 0: normalised with its own statistics alone
    (weight 1), eps keeps the result finite and equal to the layer's shift."""
    model = single_bn(2)
    x = torch.full((1, 2, 4, 4), 3.0)
    out = seg_eval.adapt_batchnorm(model, "image", 1.0)(x)
    assert torch.equal(out, model[0].bias.detach().view(1, 2, 1, 1).expand(1, 2, 4, 4))


def test_training_statistics_leave_the_model_as_it_is():
    model = trained_like(SegNet(channels=(4, 8), batch_norm=True))
    assert seg_eval.adapt_batchnorm(model, None) is model


def test_per_image_prediction_depends_on_its_own_image_only():
    torch.manual_seed(2)
    model = trained_like(SegNet(channels=(4, 8), batch_norm=True, skip="concat"))
    x = torch.randn(4, 2, 16, 16)
    with torch.no_grad():
        adapted = seg_eval.adapt_batchnorm(model, "image", 0.5)
        together, alone = adapted(x), torch.cat([adapted(x[i:i + 1]) for i in range(4)])
        assert torch.allclose(together, alone, atol=1e-5)
        assert not torch.allclose(adapted(x), model(x), atol=1e-3)  # it does change the prediction


def test_set_statistics_are_each_layers_input_statistics_over_the_set():
    """After AdaBN every batch-norm layer's running mean and variance are the mean and variance
    (biased, as batch norm normalises in training) over the set of its input, as the adapted layers
    before it produce it in eval mode."""
    torch.manual_seed(3)
    model = trained_like(SegNet(channels=(4, 8, 16), batch_norm=True, skip="concat", block_depth=2, residual=True))
    x = torch.randn(5, 2, 16, 16) * 2 + 0.5
    before = {k: v.clone() for k, v in model.state_dict().items()}
    adapted = seg_eval.adapt_batchnorm(model, "set", inputs=x)
    inputs_seen = {}
    hooks = [m.register_forward_hook(lambda mod, args, out, name=name: inputs_seen.__setitem__(name, args[0]))
             for name, m in adapted.named_modules() if isinstance(m, nn.BatchNorm2d)]
    with torch.no_grad():
        adapted(x)
    for h in hooks:
        h.remove()
    assert len(inputs_seen) == sum(isinstance(m, nn.BatchNorm2d) for m in model.modules()) > 5
    for name, seen in inputs_seen.items():
        bn = adapted.get_submodule(name)
        assert torch.allclose(bn.running_mean, seen.mean(dim=(0, 2, 3)), atol=1e-5), name
        assert torch.allclose(bn.running_var, seen.var(dim=(0, 2, 3), unbiased=False), rtol=1e-4, atol=1e-6), name
    assert not adapted.training
    # the trained model is untouched, and a set prediction depends on the other images of the set
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items()) and not model.training
    other = seg_eval.adapt_batchnorm(model, "set", inputs=x[:2])
    with torch.no_grad():
        assert not torch.allclose(adapted(x[:1]), other(x[:1]), atol=1e-3)


def test_set_statistics_ignore_dropout():
    torch.manual_seed(4)
    model = trained_like(SegNet(channels=(4, 8), batch_norm=True, dropout=0.5))
    x = torch.randn(3, 2, 16, 16)
    first, second = (seg_eval.adapt_batchnorm(model, "set", inputs=x) for _ in range(2))
    for a, b in zip(first.state_dict().values(), second.state_dict().values()):
        assert torch.equal(a, b)


def test_run_logits_adapts_each_runs_network_on_the_inputs_it_predicts():
    class StoredRun:
        def __init__(self, state):
            self.state = state

        def load_weights(self):
            return self.state

    torch.manual_seed(5)
    nets = [trained_like(SegNet(channels=(4, 8), batch_norm=True), seed=s) for s in range(2)]
    config = {"_results": [StoredRun(n.state_dict()) for n in nets]}
    x = torch.randn(3, 2, 8, 8)
    logits = seg_eval.run_logits(config, lambda: SegNet(channels=(4, 8), batch_norm=True), x, tta=True,
                                 batchnorm=("set", 1.0))
    for net, lg in zip(nets, logits):
        assert torch.allclose(lg, seg_eval.dihedral_tta_logits(seg_eval.adapt_batchnorm(net, "set", inputs=x), x),
                              atol=1e-6)
    plain = seg_eval.run_logits(config, lambda: SegNet(channels=(4, 8), batch_norm=True), x, tta=True)
    assert not torch.allclose(plain[0], logits[0], atol=1e-3)


@pytest.mark.parametrize("scope, weight, inputs, message", [
    ("batch", 1.0, None, "unknown batch-norm scope 'batch'"),
    ("image", 0.0, None, r"must lie in \(0, 1\], got 0.0"),
    ("image", 1.5, None, r"must lie in \(0, 1\], got 1.5"),
    ("set", 0.5, torch.zeros(1, 2, 8, 8), "weight must be 1, got 0.5"),
    ("set", 1.0, None, "need the inputs"),
])
def test_bad_arguments_are_rejected(scope, weight, inputs, message):
    with pytest.raises(ValueError, match=message):
        seg_eval.adapt_batchnorm(single_bn(2), scope, weight, inputs=inputs)


def test_a_network_without_batch_norm_is_rejected():
    with pytest.raises(ValueError, match="SegNet has no BatchNorm2d"):
        seg_eval.adapt_batchnorm(SegNet(channels=(4, 8)), "image", 0.5)
