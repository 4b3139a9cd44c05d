"""common.train: evaluation, the training loop and its history, and learning-rate schedules."""
import math

import pytest
import torch
from torch import nn

from common import train
from common.data import TensorLoader
from common.metrics import accuracy_per_sample
from common.numpy_mlp import NumpyLearner, NumpyMLP
from helpers import toy_model, toy_splits


class FixedLogits:
    """A learner stand-in whose logits are the inputs themselves."""

    device = torch.device("cpu")

    def logits(self, inputs):
        return inputs

    def loss(self, logits, targets):
        return nn.functional.cross_entropy(logits, targets)


def test_evaluate_averages_the_loss_over_samples_not_batches():
    logits = torch.tensor([[2.0, 0.0], [0.0, 1.0], [3.0, 0.0], [1.0, 0.0], [0.0, 2.0]])
    targets = torch.tensor([0, 1, 1, 0, 0])
    result = train.evaluate(FixedLogits(), TensorLoader(logits, targets, batch_size=3), accuracy_per_sample,
                            keep_logits=True)
    assert result.loss == pytest.approx(nn.functional.cross_entropy(logits, targets).item())  # batches of 3 and 2
    assert result.scores.tolist() == [1.0, 1.0, 0.0, 1.0, 0.0] and result.score == pytest.approx(0.6)
    assert result.majority_share == pytest.approx(3 / 5)  # class 0 predicted for 3 of the 5
    assert torch.equal(result.logits, logits)
    assert train.evaluate(FixedLogits(), TensorLoader(logits, targets, 2), accuracy_per_sample).logits is None
    with pytest.raises(ValueError, match="no batches"):
        train.evaluate(FixedLogits(), [], accuracy_per_sample)


def test_majority_share_counts_pixels_for_segmentation():
    logits = torch.zeros(2, 2, 2, 2)
    logits[0, 1] = 1.0  # image 0: every pixel class 1; image 1: class 0 (ties go to the first class)
    logits[1, 1, 0, 0] = 1.0  # ... except one pixel
    result = train.evaluate(FixedLogits(), [(logits, torch.zeros(2, 2, 2, dtype=torch.long))],
                            lambda lg, t: torch.zeros(len(t)))
    assert result.majority_share == pytest.approx(5 / 8)


def _learner(lr=0.1, scheduler=None, per_batch=False):
    torch.manual_seed(0)
    model = toy_model()
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    return train.TorchLearner(model, optimizer, nn.CrossEntropyLoss(), torch.device("cpu"),
                              scheduler(optimizer) if scheduler else None, per_batch)


def test_fit_records_every_iteration_and_one_record_per_epoch():
    splits = toy_splits()
    learner = _learner()
    seen = []
    history = train.fit(learner, TensorLoader(*splits.train, 32, shuffle=True), TensorLoader(*splits.val, 100), 3,
                        accuracy_per_sample, train_eval_loader=TensorLoader(*splits.train, 100), on_epoch=seen.append)
    assert seen == history["epochs"]  # each epoch's record handed on as it is made (progress output)
    assert len(history["iter_loss"]) == 3 * 5 and all(isinstance(v, float) for v in history["iter_loss"])
    assert history["initial_lr"] == 0.1 and [e["epoch"] for e in history["epochs"]] == [1, 2, 3]
    last = history["epochs"][-1]
    assert set(last) == {"epoch", "train_loss", "val_loss", "val_score", "val_majority_share", "lr", "train_eval_loss",
                         "train_eval_score", "train_time_s", "eval_time_s"}
    assert last["train_loss"] == pytest.approx(sum(history["iter_loss"][-5:]) / 5)  # the epoch's mean
    # the validation numbers are those of the final weights
    final = train.evaluate(learner, TensorLoader(*splits.val, 100), accuracy_per_sample)
    assert (last["val_loss"], last["val_score"]) == pytest.approx((final.loss, final.score))
    assert history["iter_loss"][-1] < history["iter_loss"][0]  # it learnt
    without = train.fit(_learner(), TensorLoader(*splits.train, 32), TensorLoader(*splits.val, 100), 1,
                        accuracy_per_sample)
    assert "train_eval_score" not in without["epochs"][0]


@pytest.mark.parametrize("per_batch,expected", [(False, [0.05, 0.025]), (True, [0.1 * 0.5 ** 5, 0.1 * 0.5 ** 10])])
def test_the_schedule_steps_per_epoch_or_per_batch_and_each_epoch_records_its_rate(per_batch, expected):
    splits = toy_splits()  # 160 training samples, batches of 32: 5 steps per epoch
    learner = _learner(scheduler=lambda opt: torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5),
                       per_batch=per_batch)
    history = train.fit(learner, TensorLoader(*splits.train, 32), TensorLoader(*splits.val, 100), 2,
                        accuracy_per_sample)
    assert [e["lr"] for e in history["epochs"]] == pytest.approx(expected)
    assert history["initial_lr"] == 0.1


def test_torch_learner_steps_and_leaves_the_loss_on_the_device():
    learner = _learner()
    x, y = torch.randn(8, 1, 4, 4), torch.randint(0, 2, (8,))
    before = [p.clone() for p in learner.model.parameters()]
    loss = learner.train_step(x, y)
    assert isinstance(loss, torch.Tensor) and loss.dim() == 0 and not loss.requires_grad
    assert not all(torch.equal(a, b) for a, b in zip(before, learner.model.parameters()))
    learner.logits(x)
    assert not learner.model.training  # evaluated in eval mode
    learner.start_epoch()
    assert learner.model.training
    state = learner.state_dict()
    state[next(iter(state))].zero_()
    assert learner.model.state_dict()[next(iter(state))].abs().sum() > 0  # a copy, not the live weights


def test_fit_trains_the_numpy_learner_too():
    splits = toy_splits()
    torch.manual_seed(0)
    learner = NumpyLearner(NumpyMLP.from_torch(toy_model()), lr=0.1)
    history = train.fit(learner, TensorLoader(*splits.train, 32), TensorLoader(*splits.val, 100), 2,
                        accuracy_per_sample)
    assert len(history["iter_loss"]) == 10 and math.isfinite(history["epochs"][-1]["val_loss"])
