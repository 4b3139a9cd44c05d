"""The Assignment 2 network written from scratch in NumPy: forward, backward and an SGD step.

It stands in for a student's own Assignment 2 code so that Exercise 1.1 can measure how much
faster PyTorch is on the same network. Layers follow ``torch.nn.Linear``'s convention,
``y = x @ W.T + b`` with ``W`` of shape (out_features, in_features), so weights can be copied
from a ``common.models.MLP`` and both networks start from identical parameters.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn


def softmax_cross_entropy(logits: np.ndarray, targets: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean cross-entropy of softmax(logits) and its gradient with respect to ``logits``.

    logits (N, C), targets (N,) integer classes -> (loss, dloss/dlogits of shape (N, C)).
    """
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    n = len(targets)
    loss = -log_probs[np.arange(n), targets].mean()
    grad = np.exp(log_probs)
    grad[np.arange(n), targets] -= 1.0
    return float(loss), grad / n


class NumpyMLP:
    """Fully connected ReLU network; ``weights[i]`` is (out, in), ``biases[i]`` is (out,)."""

    def __init__(self, weights: list[np.ndarray], biases: list[np.ndarray]) -> None:
        if len(weights) != len(biases) or not weights:
            raise ValueError(f"need one bias per weight matrix, got {len(weights)} and {len(biases)}")
        self.weights, self.biases = weights, biases
        self._cache: list[np.ndarray] = []

    @classmethod
    def from_torch(cls, model: nn.Module, dtype=np.float32) -> "NumpyMLP":
        """Copy the Linear layers of a ReLU ``MLP`` (in order)."""
        linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
        others = {type(m).__name__ for m in model.modules()} - {"Linear", "ReLU", "Flatten", type(model).__name__}
        if others:
            raise ValueError(f"NumpyMLP only implements Linear+ReLU networks, found {sorted(others)}")
        return cls([m.weight.detach().cpu().numpy().astype(dtype) for m in linears],
                   [m.bias.detach().cpu().numpy().astype(dtype) for m in linears])

    def forward(self, x: np.ndarray) -> np.ndarray:
        """(N, ...) -> (N, num_classes) logits; keeps the activations for ``backward``."""
        a = x.reshape(len(x), -1)
        self._cache = [a]
        for i, (w, b) in enumerate(zip(self.weights, self.biases)):
            z = a @ w.T + b
            a = np.maximum(z, 0) if i < len(self.weights) - 1 else z
            self._cache.append(a)
        return a

    def backward(self, dlogits: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
        """Gradients ``[(dW, db), ...]`` of the loss for each layer, given dloss/dlogits."""
        grads = []
        delta = dlogits
        for i in reversed(range(len(self.weights))):
            a_in = self._cache[i]
            grads.append((delta.T @ a_in, delta.sum(axis=0)))
            if i > 0:
                delta = (delta @ self.weights[i]) * (a_in > 0)  # ReLU'(z) = 1 where its output > 0
        return grads[::-1]

    def sgd_step(self, grads: list[tuple[np.ndarray, np.ndarray]], lr: float) -> None:
        for w, b, (dw, db) in zip(self.weights, self.biases, grads):
            w -= lr * dw
            b -= lr * db


class NumpyLearner:
    """``NumpyMLP`` trained by ``common.train.fit`` like a ``TorchLearner`` (plain SGD, CPU only)."""

    def __init__(self, net: NumpyMLP, lr: float) -> None:
        self.net, self.lr = net, lr
        self.device = torch.device("cpu")
        self.dtype = net.weights[0].dtype

    def start_epoch(self) -> None:
        pass

    def end_epoch(self) -> None:
        pass

    def train_step(self, inputs: Tensor, targets: Tensor) -> float:
        logits = self.net.forward(inputs.numpy().astype(self.dtype, copy=False))
        loss, dlogits = softmax_cross_entropy(logits, targets.numpy())
        self.net.sgd_step(self.net.backward(dlogits), self.lr)
        return loss

    def logits(self, inputs: Tensor) -> Tensor:
        return torch.from_numpy(self.net.forward(inputs.numpy().astype(self.dtype, copy=False)))

    def loss(self, logits: Tensor, targets: Tensor) -> Tensor:
        return torch.tensor(softmax_cross_entropy(logits.numpy(), targets.numpy())[0], dtype=torch.float64)

    def state_dict(self) -> dict:
        return {"weights": [torch.tensor(w) for w in self.net.weights],
                "biases": [torch.tensor(b) for b in self.net.biases]}
