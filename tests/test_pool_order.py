"""Exercise 1.3: max pooling commutes with non-decreasing activations, so swapping the two
layers changes neither the outputs nor the gradients of the network for the same weights."""
import pytest
import torch

from common import models


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
