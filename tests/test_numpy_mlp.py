"""common.numpy_mlp: the from-scratch NumPy network against torch autograd and finite differences, and
its learners, which start from the PyTorch network's weights."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from common import models
from common.numpy_mlp import NumpyLearner, NumpyMLP, softmax_cross_entropy


def _pair(seed=0, hidden=(16, 8)):
    torch.manual_seed(seed)
    model = models.MLP(in_features=12, hidden=hidden, num_classes=5).double()
    return model, NumpyMLP.from_torch(model, dtype=np.float64)


def test_softmax_cross_entropy_matches_torch():
    rng = np.random.default_rng(0)
    logits, targets = rng.normal(size=(7, 5)) * 3, rng.integers(0, 5, size=7)
    t_logits = torch.tensor(logits, requires_grad=True)
    expected = F.cross_entropy(t_logits, torch.tensor(targets))
    expected.backward()
    loss, grad = softmax_cross_entropy(logits, targets)
    assert loss == pytest.approx(expected.item(), rel=1e-12)
    np.testing.assert_allclose(grad, t_logits.grad.numpy(), rtol=1e-10, atol=1e-14)


def test_softmax_cross_entropy_is_stable_for_large_logits():
    loss, grad = softmax_cross_entropy(np.array([[1000.0, 0.0]]), np.array([1]))
    assert loss == pytest.approx(1000.0) and np.isfinite(grad).all()


def test_forward_matches_torch():
    model, net = _pair()
    x = torch.randn(9, 12, dtype=torch.float64)
    np.testing.assert_allclose(net.forward(x.numpy()), model(x).detach().numpy(), rtol=1e-12)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_gradients_match_autograd(seed):
    model, net = _pair(seed)
    x, y = torch.randn(9, 12, dtype=torch.float64), torch.randint(0, 5, (9,))
    F.cross_entropy(model(x), y).backward()
    _, dlogits = softmax_cross_entropy(net.forward(x.numpy()), y.numpy())
    grads = net.backward(dlogits)
    linears = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    assert len(grads) == len(linears) == 3
    for (dw, db), layer in zip(grads, linears):
        np.testing.assert_allclose(dw, layer.weight.grad.numpy(), rtol=1e-10, atol=1e-13)
        np.testing.assert_allclose(db, layer.bias.grad.numpy(), rtol=1e-10, atol=1e-13)


def test_gradients_match_finite_differences():
    """Independent of torch: central differences on a few weights of every layer."""
    _, net = _pair(3, hidden=(6,))
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(4, 12)), rng.integers(0, 5, size=4)
    _, dlogits = softmax_cross_entropy(net.forward(x), y)
    grads = net.backward(dlogits)
    eps = 1e-6
    for layer, (dw, _) in enumerate(grads):
        w = net.weights[layer]
        for idx in [(0, 0), (w.shape[0] - 1, w.shape[1] - 1), (1, 2)]:
            old = w[idx]
            w[idx] = old + eps
            plus = softmax_cross_entropy(net.forward(x), y)[0]
            w[idx] = old - eps
            minus = softmax_cross_entropy(net.forward(x), y)[0]
            w[idx] = old
            assert dw[idx] == pytest.approx((plus - minus) / (2 * eps), rel=1e-5, abs=1e-9)


def test_sgd_step_matches_torch_sgd():
    model, net = _pair()
    x, y = torch.randn(9, 12, dtype=torch.float64), torch.randint(0, 5, (9,))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.3)
    F.cross_entropy(model(x), y).backward()
    optimizer.step()
    _, dlogits = softmax_cross_entropy(net.forward(x.numpy()), y.numpy())
    net.sgd_step(net.backward(dlogits), lr=0.3)
    after = NumpyMLP.from_torch(model, dtype=np.float64)
    for a, b in zip(net.weights + net.biases, after.weights + after.biases):
        np.testing.assert_allclose(a, b, rtol=1e-12)


def test_from_torch_rejects_layers_it_does_not_implement():
    with pytest.raises(ValueError, match="Tanh"):
        NumpyMLP.from_torch(models.MLP(activation="tanh"))


def test_numpy_learner_logits_loss_and_state():
    model, net = _pair()
    learner = NumpyLearner(net, lr=0.5)
    x, y = torch.randn(6, 12, dtype=torch.float64), torch.randint(0, 5, (6,))
    logits = learner.logits(x)
    torch.testing.assert_close(logits, model(x).detach())
    # returned as a float32 tensor, like the torch learner's loss: float32 precision
    assert learner.loss(logits, y).item() == pytest.approx(F.cross_entropy(logits, y).item(), rel=1e-6)
    state = learner.state_dict()
    assert [tuple(w.shape) for w in state["weights"]] == [(16, 12), (8, 16), (5, 8)]
    assert learner.device == torch.device("cpu") and learner.dtype == np.float64
