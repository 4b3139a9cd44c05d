import pytest
import torch
from torch import nn

from common import timing


def test_times_every_model_on_the_same_batches_without_changing_weights():
    torch.manual_seed(0)
    small, large = nn.Sequential(nn.Flatten(), nn.Linear(16, 2)), nn.Sequential(nn.Flatten(), nn.Linear(16, 256), nn.ReLU(), nn.Linear(256, 2))
    before = [p.clone() for p in small.parameters()]
    x, y = torch.randn(40, 1, 4, 4), torch.randint(0, 2, (40,))
    out = timing.time_forward_backward({"small": small, "large": large}, x, y, batch_size=8, num_batches=3,
                                       warmup=1, repeats=2, steps_per_epoch=5)
    assert set(out) == {"small", "large"}
    for entry in out.values():
        assert entry["per_batch_s"] > 0 and len(entry["per_batch_repeats_s"]) == 2
        assert entry["per_epoch_s"] == entry["per_batch_s"] * 5 and entry["relative_to_fastest"] >= 1
    assert min(e["relative_to_fastest"] for e in out.values()) == 1
    assert all(torch.equal(a, b) for a, b in zip(before, small.parameters()))


def test_paired_comparison_calls_a_difference_consistent_only_if_every_repeat_agrees():
    timings = {"a": {"per_batch_repeats_s": [3.0, 3.2, 3.1]}, "b": {"per_batch_repeats_s": [2.9, 3.1, 3.0]},
               "c": {"per_batch_repeats_s": [2.9, 3.3, 3.0]}}
    assert timing.paired_comparison(timings, "a", "b") == {
        "faster_in_repeats": 3, "repeats": 3, "verdict": "faster in all 3 paired repeats"}
    mixed = timing.paired_comparison(timings, "a", "c")  # c's median is lower, but not in every repeat
    assert mixed["faster_in_repeats"] == 2 and mixed["verdict"].startswith("no consistent difference")
    with pytest.raises(ValueError, match="same, non-zero number of repeats"):
        timing.paired_comparison({"a": {"per_batch_repeats_s": [1.0]}, "b": {"per_batch_repeats_s": []}}, "a", "b")


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
