"""The loader, the training loop and the run cache on small synthetic problems."""
import dataclasses
import json

import pytest
import torch
from torch import nn

from common import experiment
from common.data import Splits, TensorLoader
from common.metrics import accuracy_per_sample, fit_verdict, summarize
from common.plotting import moving_average


def toy_splits(n=240, seed=0) -> Splits:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 1, 4, 4, generator=g)
    y = (x.flatten(1).sum(1) > 0).long()
    parts = {"train": (x[:160], y[:160]), "val": (x[160:200], y[160:200]), "test": (x[200:], y[200:])}
    return Splits(**parts, info={"fingerprint": f"toy-{n}-{seed}"})


def toy_spec(**overrides) -> experiment.RunSpec:
    spec = experiment.RunSpec(
        name="toy",
        build_model=lambda: nn.Sequential(nn.Flatten(), nn.Linear(16, 8), nn.ReLU(), nn.Linear(8, 2)),
        build_optimizer=lambda p: torch.optim.SGD(p, lr=0.1),
        num_epochs=3, batch_size=16)
    return dataclasses.replace(spec, **overrides)


def test_loader_visits_every_sample_once_per_epoch_in_a_new_order():
    x, y = torch.arange(10).float().unsqueeze(1), torch.arange(10)
    loader = TensorLoader(x, y, batch_size=4, shuffle=True, seed=1)
    assert len(loader) == 3
    epochs = [torch.cat([t for _, t in loader]) for _ in range(2)]
    assert all(sorted(e.tolist()) == list(range(10)) for e in epochs)
    assert not torch.equal(epochs[0], epochs[1])
    again = TensorLoader(x, y, batch_size=4, shuffle=True, seed=1)
    assert torch.equal(torch.cat([t for _, t in again]), epochs[0])


def test_loader_applies_the_batch_transform_and_checks_lengths():
    x, y = torch.zeros(6, 2), torch.zeros(6)
    loader = TensorLoader(x, y, batch_size=4, transform=lambda a, b: (a + 1, b - 1))
    batches = list(loader)
    assert [len(b) for _, b in batches] == [4, 2] and batches[0][0].eq(1).all() and batches[1][1].eq(-1).all()
    with pytest.raises(ValueError, match=r"inputs \(6\) and targets \(5\)"):
        TensorLoader(x, y[:5], batch_size=2)


def test_same_seed_gives_identical_runs_and_different_seeds_differ(tmp_path):
    splits, cpu = toy_splits(), torch.device("cpu")
    runs = [experiment.run_one(toy_spec(), splits, seed, cpu, cache_root=tmp_path / str(i), show_progress=False)
            for i, seed in enumerate((5, 5, 6))]
    a, b, c = (r.record["history"] for r in runs)
    assert a["iter_loss"] == b["iter_loss"] and a["epochs"][-1]["val_loss"] == b["epochs"][-1]["val_loss"]
    assert a["iter_loss"] != c["iter_loss"]
    assert len(a["iter_loss"]) == 3 * 10 and len(a["epochs"]) == 3


def test_run_records_hyperparameters_including_defaults(tmp_path):
    record = experiment.run_one(toy_spec(), toy_splits(), 0, torch.device("cpu"), cache_root=tmp_path,
                                show_progress=False).record
    hyper = record["hyperparameters"]
    assert hyper["optimizer"]["class"] == "SGD"
    assert hyper["optimizer"]["defaults"]["momentum"] == 0 and hyper["optimizer"]["defaults"]["lr"] == 0.1
    assert hyper["loss"]["class"] == "CrossEntropyLoss" and hyper["loss"]["reduction"] == "mean"
    assert hyper["num_weights"] == 16 * 8 + 8 + 8 * 2 + 2 and hyper["batch_size"] == 16
    assert record["test"]["n"] == 40 and 0 <= record["test"]["accuracy"] <= 1
    assert set(record["verdict"]) >= {"verdict", "rule", "facts"}


def test_finished_runs_are_cached_and_reused(tmp_path, monkeypatch):
    splits, cpu = toy_splits(), torch.device("cpu")
    first = experiment.run_one(toy_spec(), splits, 0, cpu, cache_root=tmp_path, show_progress=False)
    monkeypatch.setattr(experiment, "fit", lambda *a, **k: pytest.fail("a cached run was retrained"))
    again = experiment.run_one(toy_spec(name="renamed"), splits, 0, cpu, cache_root=tmp_path, show_progress=False)
    assert again.record["history"] == first.record["history"] and again.record["name"] == "renamed"
    assert torch.equal(again.load_test_logits(), first.load_test_logits())


def test_a_changed_configuration_is_not_served_from_the_cache(tmp_path):
    splits, cpu = toy_splits(), torch.device("cpu")
    a = experiment.run_one(toy_spec(), splits, 0, cpu, cache_root=tmp_path, show_progress=False)
    b = experiment.run_one(toy_spec(build_optimizer=lambda p: torch.optim.SGD(p, lr=0.2)), splits, 0, cpu,
                           cache_root=tmp_path, show_progress=False)
    c = experiment.run_one(toy_spec(), toy_splits(seed=1), 0, cpu, cache_root=tmp_path, show_progress=False)
    assert len({a.record["cache_key"], b.record["cache_key"], c.record["cache_key"]}) == 3


def test_the_loss_weights_and_the_scoring_are_part_of_the_cache_key(tmp_path):
    splits, cpu = toy_splits(), torch.device("cpu")
    variants = {"plain": toy_spec(),
                "class weights": toy_spec(loss_fn=nn.CrossEntropyLoss(weight=torch.tensor([1.0, 3.0]))),
                "other class weights": toy_spec(loss_fn=nn.CrossEntropyLoss(weight=torch.tensor([1.0, 2.0]))),
                "score name": toy_spec(score_name="hit_rate"),
                "score function": toy_spec(score_fn=lambda logits, targets: accuracy_per_sample(logits, targets)),
                "gap tolerance": toy_spec(gap_tol=0.5)}
    results = {name: experiment.run_seeds(spec, splits, [0], cpu, cache_root=tmp_path, show_progress=False)
               for name, spec in variants.items()}  # one cache: a stale entry would be served (or KeyError)
    keys = {name: r["runs"][0]["cache_key"] for name, r in results.items()}
    assert len(set(keys.values())) == len(variants), keys
    assert "hit_rate" in results["score name"]["runs"][0]["test"]
    assert "0.5" in results["gap tolerance"]["runs"][0]["verdict"]["rule"]
    loss = results["class weights"]["runs"][0]["hyperparameters"]["loss"]
    assert set(loss["buffers"]) == {"weight"} and "buffers" not in results["plain"]["runs"][0]["hyperparameters"]["loss"]


def test_an_interrupted_run_leaves_no_cache_entry(tmp_path, monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(experiment, "fit", interrupted)
    with pytest.raises(KeyboardInterrupt):
        experiment.run_one(toy_spec(), toy_splits(), 0, torch.device("cpu"), cache_root=tmp_path, show_progress=False)
    assert not list(tmp_path.rglob("record.json"))


def test_restore_best_keeps_the_best_validation_epoch(tmp_path):
    record = experiment.run_one(toy_spec(restore_best=True, num_epochs=4), toy_splits(), 0, torch.device("cpu"),
                                cache_root=tmp_path, show_progress=False).record
    scores = [e["val_score"] for e in record["history"]["epochs"]]
    assert record["history"]["best_epoch"] == scores.index(max(scores)) + 1


def test_restore_best_keeps_the_last_weights_when_no_validation_score_is_a_number(tmp_path):
    def nan_score(logits, targets):
        return torch.full((len(targets),), float("nan"))

    splits, cpu = toy_splits(), torch.device("cpu")
    runs = {restore: experiment.run_one(toy_spec(score_fn=nan_score, restore_best=restore), splits, 0, cpu,
                                        cache_root=tmp_path / str(restore), show_progress=False)
            for restore in (True, False)}
    assert runs[True].record["history"]["best_epoch"] is None
    assert torch.equal(runs[True].load_test_logits(), runs[False].load_test_logits())  # the last epoch's


def test_run_seeds_summarises_over_seeds(tmp_path):
    result = experiment.run_seeds(toy_spec(), toy_splits(), [0, 1, 2], torch.device("cpu"), cache_root=tmp_path,
                                  show_progress=False)
    accs = [r["test"]["accuracy"] for r in result["runs"]]
    assert result["summary"]["test_accuracy"]["mean"] == pytest.approx(sum(accs) / 3)
    json.dumps({k: v for k, v in result.items() if not k.startswith("_")})  # JSON-ready


def test_accuracy_per_sample():
    logits = torch.tensor([[2.0, 1.0], [0.0, 3.0], [1.0, 0.0]])
    assert accuracy_per_sample(logits, torch.tensor([0, 1, 1])).tolist() == [1.0, 1.0, 0.0]


def test_summarize_uses_sample_standard_deviation():
    s = summarize([1.0, 2.0, 3.0])
    assert s == {"mean": 2.0, "std": 1.0, "min": 1.0, "max": 3.0, "n": 3}
    assert summarize([4.0])["std"] == 0.0
    with pytest.raises(ValueError):
        summarize([])


def _epochs(train_scores, val_scores, val_losses):
    return [{"train_eval_score": t, "val_score": v, "val_loss": l} for t, v, l in zip(train_scores, val_scores, val_losses)]


def test_fit_verdicts_on_hand_made_curves():
    over = _epochs([0.90, 0.95, 0.99, 1.0], [0.90, 0.93, 0.94, 0.94], [0.3, 0.2, 0.25, 0.3])
    under = _epochs([0.5, 0.6, 0.7, 0.8], [0.5, 0.6, 0.7, 0.8], [1.0, 0.8, 0.6, 0.5])
    good = _epochs([0.97, 0.98, 0.981, 0.981], [0.97, 0.978, 0.979, 0.98], [0.1, 0.08, 0.075, 0.075])
    assert fit_verdict(over, gap_tol=0.01)["verdict"] == "over-fitting"
    assert fit_verdict(under, gap_tol=0.01)["verdict"].startswith("under-fitting")
    assert fit_verdict(good, gap_tol=0.01)["verdict"] == "good fit"


def test_moving_average():
    assert moving_average([1, 2, 3, 4], 2).tolist() == [1.0, 1.5, 2.5, 3.5]
    assert moving_average([5.0], 10).tolist() == [5.0]


def _loss_epochs(train_losses):
    """Curves whose scores read as a good fit, with the given training loss per epoch."""
    return [{"train_loss": loss, "train_eval_score": 0.11, "val_score": 0.11, "val_loss": 2.3} for loss in train_losses]


@pytest.mark.parametrize("train_losses,initial_loss", [
    ([2.2, 40.0, 23782.0], None),  # rose far above the first epoch's
    ([2.2, 1.0, float("nan")], None),  # ends at NaN
    ([0.9, float("inf")], 2.3),  # ends at infinity
    ([23782.0], 2.3),  # one epoch (--quick): judged against the first iteration's loss
])
def test_a_diverged_run_is_called_diverged_not_a_good_fit(train_losses, initial_loss):
    verdict = fit_verdict(_loss_epochs(train_losses), gap_tol=0.01, initial_loss=initial_loss)
    assert verdict["verdict"] == "diverged" and "final training loss" in verdict["facts"]
    assert verdict["divergence_rule"].startswith("diverged if") and "diverged" not in verdict["rule"]


@pytest.mark.parametrize("train_losses,initial_loss", [
    ([0.6560, 0.6562], 0.6931),  # stuck at a trivial prediction: level, 1.0003x the first epoch's
    ([0.5, 0.9], 0.7),  # 1.8x the start: worse, but not the DIVERGED_FACTOR (2x) of a divergence
    ([23782.0], None),  # one epoch without the first iteration's loss: nothing to compare with
])
def test_a_flat_or_merely_worse_run_is_not_called_diverged(train_losses, initial_loss):
    verdict = fit_verdict(_loss_epochs(train_losses), gap_tol=0.01, initial_loss=initial_loss)
    assert verdict["verdict"] == "good fit" and "divergence_rule" not in verdict  # the record reads as before


def test_a_run_with_a_far_too_large_learning_rate_is_recorded_as_diverged(tmp_path):
    spec = toy_spec(build_optimizer=lambda p: torch.optim.SGD(p, lr=1e4), num_epochs=1)
    record = experiment.run_one(spec, toy_splits(), 0, torch.device("cpu"), cache_root=tmp_path,
                                show_progress=False).record
    assert record["verdict"]["verdict"] == "diverged"
