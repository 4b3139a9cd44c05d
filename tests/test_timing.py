"""common.timing: every model or learner timed in turn on the same batches, and the paired comparison
of two of them with its sign test."""
import numpy as np
import pytest
import torch
from scipy import stats
from torch import nn

from common import models, timing
from common.numpy_mlp import NumpyLearner, NumpyMLP
from common.train import TorchLearner


def test_times_every_model_on_the_same_batches_without_changing_weights():
    torch.manual_seed(0)
    small, large = nn.Sequential(nn.Flatten(), nn.Linear(16, 2)), nn.Sequential(nn.Flatten(), nn.Linear(16, 256), nn.ReLU(), nn.Linear(256, 2))
    before = [p.clone() for p in small.parameters()]
    x, y = torch.randn(40, 1, 4, 4), torch.randint(0, 2, (40,))
    out = timing.time_forward_backward({"small": small, "large": large}, x, y, batch_size=8, num_batches=3,
                                       warmup=1, repeats=2)
    assert set(out) == {"small", "large"}
    for entry in out.values():
        assert entry["per_batch_s"] > 0 and len(entry["per_batch_repeats_s"]) == 2
        assert entry["per_batch_s"] == pytest.approx(sum(entry["per_batch_repeats_s"]) / 2)  # the median of 2
        assert (entry["batch_size"], entry["num_batches"], entry["warmup"], entry["repeats"]) == (8, 3, 1, 2)
        assert "versus" not in entry  # no reference asked for
    assert all(torch.equal(a, b) for a, b in zip(before, small.parameters()))


def test_each_session_times_the_configured_networks_in_a_process_of_its_own():
    configs = {"relu": {"model": {"class": "MnistCNN", "channels": (2, 2, 2)}},
               "tanh": {"model": {"class": "MnistCNN", "channels": (2, 2, 2), "activation": "tanh"}}}
    x, y = torch.randn(12, 1, 28, 28), torch.randint(0, 10, (12,))
    sessions = timing.time_in_processes(configs, x, y, sessions=2, batch_size=4, num_batches=1, warmup=1, repeats=2)
    assert len(sessions) == 2
    for session in sessions:
        assert set(session) == {"relu", "tanh"}
        assert all(len(e["per_batch_repeats_s"]) == 2 and e["batch_size"] == 4 for e in session.values())
    assert sessions[0]["relu"]["per_batch_repeats_s"] != sessions[1]["relu"]["per_batch_repeats_s"]  # timed apart


def _timings(**repeats):
    import statistics

    return {name: {"per_batch_repeats_s": r, "per_batch_s": statistics.median(r)} for name, r in repeats.items()}


def test_versus_counts_the_repeats_that_go_the_way_of_the_medians():
    timings = _timings(a=[3.0, 3.2, 3.1, 3.3, 3.0], b=[2.9, 3.1, 3.0, 3.2, 2.9], c=[2.9, 3.3, 3.0, 3.4, 2.95])
    faster = timing.versus(timings, "a", "b")  # b faster in every paired repeat
    assert set(faster) == {"reference", "speedup", "agreeing_repeats", "repeats", "p"}
    assert faster["reference"] == "a" and faster["repeats"] == 5 and faster["agreeing_repeats"] == 5
    # the median of the paired ratios 3/2.9, 3.2/3.1, 3.1/3, 3.3/3.2, 3/2.9: 3.1/3.0
    assert faster["speedup"] == pytest.approx(3.1 / 3.0)
    assert faster["p"] == pytest.approx(stats.binomtest(5, 5).pvalue) == pytest.approx(2 / 32)
    mixed = timing.versus(timings, "a", "c")  # c faster in only 3 of the 5 repeats
    # paired ratios sorted: 3.2/3.3, 3.3/3.4, 3.0/2.95, 3.1/3.0, 3.0/2.9
    assert mixed["speedup"] == pytest.approx(3.0 / 2.95) and mixed["agreeing_repeats"] == 3
    assert mixed["p"] == pytest.approx(1.0)  # 3 of 5: no evidence either way
    slower = timing.versus(timings, "b", "a")  # a against b: slower in every repeat
    assert slower["speedup"] == pytest.approx(3.0 / 3.1) and slower["agreeing_repeats"] == 5
    # b is 10 % slower in two of three repeats; the ratio of the medians, 3.0/2.0, would call it 1.5x faster
    paired = timing.versus(_timings(a=[1.0, 3.0, 3.2], b=[1.1, 3.3, 2.0]), "a", "b")
    assert paired["speedup"] == pytest.approx(1 / 1.1) and paired["agreeing_repeats"] == 2
    with pytest.raises(ValueError, match="same, non-zero number of repeats"):
        timing.versus({"a": {"per_batch_repeats_s": [1.0], "per_batch_s": 1.0},
                       "b": {"per_batch_repeats_s": [], "per_batch_s": 1.0}}, "a", "b")


def test_a_reference_adds_the_comparison_to_every_other_entry():
    x, y = torch.randn(16, 1, 2, 2), torch.randint(0, 2, (16,))
    models = {name: nn.Sequential(nn.Flatten(), nn.Linear(4, 2)) for name in ("ref", "other")}
    out = timing.time_forward_backward(models, x, y, batch_size=4, num_batches=1, warmup=0, repeats=3,
                                       channels_last=False, reference="ref")
    assert "versus" not in out["ref"] and out["other"]["versus"] == timing.versus(out, "ref", "other")


def test_the_timing_order_alternates_between_repeats():
    calls = []

    class Probe(nn.Module):
        def __init__(self, name):
            super().__init__()
            self.name, self.linear = name, nn.Linear(4, 2)

        def forward(self, x):
            calls.append(self.name)
            return self.linear(x.flatten(1))

    x, y = torch.randn(8, 1, 2, 2), torch.randint(0, 2, (8,))
    timing.time_forward_backward({"a": Probe("a"), "b": Probe("b")}, x, y, batch_size=4, num_batches=1, warmup=0,
                                 repeats=3, channels_last=False)
    assert calls == ["a", "b", "b", "a", "a", "b"]


class CountingLearner:
    """A Learner stand-in that records the batches it is trained on."""

    def __init__(self, name: str, log: list) -> None:
        self.name, self.log, self.device, self.epochs_started = name, log, torch.device("cpu"), 0

    def start_epoch(self) -> None:
        self.epochs_started += 1

    def train_step(self, inputs, targets) -> float:
        self.log.append((self.name, inputs[0, 0].item()))
        return 0.0


def test_train_steps_are_timed_in_turn_on_the_same_batches():
    log = []
    learners = {"a": CountingLearner("a", log), "b": CountingLearner("b", log)}
    x, y = torch.arange(10.0).reshape(10, 1), torch.zeros(10, dtype=torch.long)
    out = timing.time_train_steps(learners, x, y, batch_size=4, num_batches=2, warmup=1, repeats=2)
    # batches start at images 0, 4, 8 (cycling: 8, 9, 0, 1); warm-up batch first, then the two timed
    assert log == [("a", 0.0), ("a", 4.0), ("a", 8.0), ("b", 0.0), ("b", 4.0), ("b", 8.0),
                   ("b", 0.0), ("b", 4.0), ("b", 8.0), ("a", 0.0), ("a", 4.0), ("a", 8.0)]
    assert all(learner.epochs_started == 1 for learner in learners.values())
    for entry in out.values():
        assert len(entry["per_batch_repeats_s"]) == 2


def test_numpy_and_torch_training_steps_of_one_network_are_both_timed():
    from common import models
    from common.numpy_mlp import NumpyLearner, NumpyMLP
    from common.train import TorchLearner

    torch.manual_seed(0)
    model = models.MLP(hidden=(8,))
    learners = {"numpy": NumpyLearner(NumpyMLP.from_torch(model), lr=0.1),
                "torch": TorchLearner(model, torch.optim.SGD(model.parameters(), lr=0.1), nn.CrossEntropyLoss(),
                                      torch.device("cpu"))}  # NumPy's own copy: both change
    x, y = torch.randn(32, 1, 28, 28), torch.randint(0, 10, (32,))
    before = [p.clone() for p in model.parameters()]
    out = timing.time_train_steps(learners, x, y, batch_size=8, num_batches=2, warmup=1, repeats=3)
    assert set(out) == {"numpy", "torch"}
    assert all(len(e["per_batch_repeats_s"]) == 3 and e["per_batch_s"] > 0 for e in out.values())
    assert not all(torch.equal(a, b) for a, b in zip(before, model.parameters()))  # whole steps: weights change
    with pytest.raises(ValueError, match="at least one learner"):
        timing.time_train_steps({}, x, y, batch_size=8)


def test_bad_counts_are_refused_before_the_models_are_touched():
    model = nn.Linear(4, 2)
    x, y = torch.randn(8, 4), torch.randint(0, 2, (8,))
    for kwargs in ({"num_batches": 0}, {"repeats": 0}, {"warmup": -1}):
        with pytest.raises(ValueError, match="need num_batches >= 1"):
            timing.time_forward_backward({"m": model}, x, y, batch_size=4, **kwargs)
        with pytest.raises(ValueError, match="need num_batches >= 1"):
            timing.time_train_steps({"a": CountingLearner("a", [])}, x, y, batch_size=4, **kwargs)
    assert model.training is True and next(model.parameters()).is_contiguous()  # never set up


def test_compare_savings_by_hand():
    """The saving of pooling first, time(pool after) / time(pool first) repeat by repeat: 2.0 in every
    repeat with ReLU; with tanh 3.0, 2.5, 1.5, 3.0 and 2.25 (median 2.5), larger in 4 of the 5 repeats."""
    timings = _timings(relu_after=[2.0] * 5, relu_first=[1.0] * 5, tanh_after=[3.0, 5.0, 1.5, 6.0, 2.25],
                       tanh_first=[1.0, 2.0, 1.0, 2.0, 1.0])
    out = timing.compare_savings(timings, ("relu_after", "relu_first"), ("tanh_after", "tanh_first"), ("ReLU", "tanh"))
    assert out == {"saving": {"ReLU": 2.0, "tanh": 2.5}, "larger": "tanh", "agreeing_repeats": 4, "repeats": 5,
                   "p": pytest.approx(2 * 6 / 32)}  # P(>= 4 of 5) = 6/32, both tails
    assert out["p"] == pytest.approx(stats.binomtest(4, 5).pvalue)
    # the same four timings the other way round: ReLU's saving is the smaller, again in 4 of 5 repeats
    swapped = timing.compare_savings(timings, ("tanh_after", "tanh_first"), ("relu_after", "relu_first"),
                                     ("tanh", "ReLU"))
    assert swapped["larger"] == "tanh" and swapped["agreeing_repeats"] == 4 and swapped["saving"]["tanh"] == 2.5


def test_compare_savings_that_agree_in_every_repeat_pass_the_sign_test():
    timings = _timings(a0=[2.0] * 7, a1=[1.0] * 7, b0=[1.5] * 7, b1=[1.0, 1.0, 1.2, 1.0, 1.1, 1.0, 1.0])
    out = timing.compare_savings(timings, ("a0", "a1"), ("b0", "b1"), ("A", "B"))
    assert out["larger"] == "A" and out["agreeing_repeats"] == out["repeats"] == 7
    assert out["saving"] == {"A": 2.0, "B": 1.5} and out["p"] == pytest.approx(2 * 0.5 ** 7)


def test_twin_learners_start_from_the_same_weights_and_take_the_same_step():
    torch.manual_seed(0)
    model = models.MLP(hidden=(16,))
    cpu = torch.device("cpu")
    learners = timing.twin_learners(model, lr=0.1, devices=[cpu, cpu])  # a device named twice: one learner
    assert len(learners) == 2  # NumPy and PyTorch on the CPU
    numpy_learner, torch_learner = (next(v for v in learners.values() if isinstance(v, kind))
                                    for kind in (NumpyLearner, TorchLearner))
    assert torch_learner.device == cpu
    numpy_net, torch_net = numpy_learner.net, NumpyMLP.from_torch(torch_learner.model)
    for a, b in zip(numpy_net.weights + numpy_net.biases, torch_net.weights + torch_net.biases, strict=True):
        np.testing.assert_array_equal(a, b)
    assert torch_learner.model is not model  # copies: timing them leaves the model as it was
    x, y = torch.randn(8, 1, 28, 28), torch.randint(0, 10, (8,))
    losses = [float(learner.train_step(x, y)) for learner in (numpy_learner, torch_learner)]
    assert losses[0] == pytest.approx(losses[1], rel=1e-5)  # float32 both: the same loss before the step
    after = NumpyMLP.from_torch(torch_learner.model)
    for a, b in zip(numpy_net.weights + numpy_net.biases, after.weights + after.biases):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)  # and the same SGD step
