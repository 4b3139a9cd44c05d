"""common.train: evaluation, the training loop and its history, learning-rate schedules; what a
configuration dict builds; a configuration trained per seed, reproducibly, recorded completely and
cached (the key hashes the configuration, seed, data and VERSION, not the run's name; an interrupted
run leaves no entry); and a small run's numbers, which change only when what training computes does."""
import json
import math
import random

import numpy as np
import pytest
import torch
from torch import nn

import ex1_1_fc
import ex1_2_cnn
import ex1_3_pool_order
import ex1_5_variants
import ex2_1_segnet
import ex2_5_best
from common import augment, metrics, models, results, train
from common.data import Splits, TensorLoader
from common.metrics import accuracy_per_sample
from common.models import INIT_SCHEMES
from common.numpy_mlp import NumpyLearner, NumpyMLP
from helpers import TOY_MODEL, TOY_WEIGHTS, fake_ctx, toy_config, toy_model, toy_splits
from tuning import selection


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


# --- build: the objects a configuration dict names -------------------------------------------------

CPU = torch.device("cpu")


def test_build_makes_the_optimizer_the_dict_says():
    config = toy_config(optimizer={"class": "SGD", "lr": 0.05, "momentum": 0.9, "nesterov": True,
                                   "weight_decay": 5e-4})
    model, optimizer, scheduler, loss, transform = train.build(config, 10, CPU)
    assert type(optimizer) is torch.optim.SGD and scheduler is None and transform is None
    assert {k: optimizer.defaults[k] for k in ("lr", "momentum", "nesterov", "weight_decay", "dampening")} == {
        "lr": 0.05, "momentum": 0.9, "nesterov": True, "weight_decay": 5e-4, "dampening": 0}
    assert [p for g in optimizer.param_groups for p in g["params"]] == list(model.parameters())
    adam = train.build(toy_config(optimizer={"class": "Adam", "lr": 3e-3, "weight_decay": 1e-3}), 10, CPU)[1]
    assert type(adam) is torch.optim.Adam and (adam.defaults["lr"], adam.defaults["weight_decay"]) == (3e-3, 1e-3)
    assert adam.defaults["betas"] == (0.9, 0.999) and adam.defaults["eps"] == 1e-8  # PyTorch's defaults otherwise
    with pytest.raises(KeyError, match="RMSprop"):
        train.build(toy_config(optimizer={"class": "RMSprop", "lr": 0.1}), 10, CPU)


def test_build_makes_the_schedule_the_dict_says():
    cosine = train.build(toy_config(schedule={"class": "CosineAnnealingLR"}, epochs=7), 10, CPU)[2]
    assert type(cosine) is torch.optim.lr_scheduler.CosineAnnealingLR and cosine.T_max == 7  # to 0 over the epochs
    config = toy_config(schedule={"class": "OneCycleLR"}, epochs=4, optimizer={"class": "SGD", "lr": 0.2})
    _, optimizer, one_cycle, _, _ = train.build(config, 13, CPU)
    assert type(one_cycle) is torch.optim.lr_scheduler.OneCycleLR
    assert one_cycle.total_steps == 4 * 13 and optimizer.param_groups[0]["max_lr"] == 0.2  # peak: the optimizer's lr
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.2 / 25)  # it starts warming up from max_lr / 25
    assert train.build(toy_config(schedule=None), 10, CPU)[2] is None
    assert train.build({k: v for k, v in toy_config().items() if k != "schedule"}, 10, CPU)[2] is None
    with pytest.raises(ValueError, match="unknown schedule 'StepLR'"):
        train.build(toy_config(schedule={"class": "StepLR"}), 10, CPU)


def test_build_makes_the_loss_and_the_model_the_dict_says():
    model, _, _, loss, _ = train.build(toy_config(loss={"class": "CrossEntropyLoss", "label_smoothing": 0.1}), 10, CPU)
    assert type(loss) is nn.CrossEntropyLoss and loss.label_smoothing == 0.1
    assert type(model) is models.MLP and models.count_weights(model) == TOY_WEIGHTS
    assert models.layer_list(model) == ["Flatten", "linear 16→8", "ReLU", "linear 8→2"]
    assert train.build_loss(toy_config()).label_smoothing == 0.0


# what each script's configuration dict names, and the object that stands for it, written out by hand
SCRIPT_MODELS = [
    (ex1_1_fc.MLP, models.MLP(in_features=784, hidden=(128, 64), num_classes=10)),
    (ex1_2_cnn.CNN, models.MnistCNN(channels=(8, 16, 32))),
    (ex1_5_variants.BEST["model"], models.MnistCNN(channels=(16, 32, 64), batch_norm=True)),
    ({**ex1_3_pool_order.CNN, "activation": "tanh", "pool_first": True}, models.MnistCNN(activation="tanh",
                                                                                          pool_first=True)),
    (ex2_1_segnet.SEGNET, models.SegNet(channels=(8, 16, 32, 64), up_kernel=4, init="kaiming", batch_norm=True)),
    (ex2_5_best.UNET, models.SegNet(channels=(8, 16, 32, 64), skip="concat", block_depth=2, residual=True,
                                    batch_norm=True)),
]


@pytest.mark.parametrize("spec,expected", SCRIPT_MODELS, ids=[s["class"] + str(k) for k, (s, _) in
                                                               enumerate(SCRIPT_MODELS)])
def test_build_model_builds_the_network_each_script_names(spec, expected):
    model = train.build_model({"model": spec})
    assert type(model) is type(expected) and str(model) == str(expected)
    assert models.count_weights(model) == models.count_weights(expected)
    assert getattr(model, "init_scheme", None) == getattr(expected, "init_scheme", None)


def test_build_augment_builds_each_scripts_augmentation():
    assert train.build_augment(None) is None
    assert train.build_augment(ex1_5_variants.AFFINE) == augment.RandomAffine(max_rotation_deg=10.0, max_shift=2.0,
                                                                              max_scale=0.1)
    assert train.build_augment(ex2_1_segnet.DIHEDRAL) == augment.SegmentationAugment(dihedral=True)
    composed = train.build_augment([selection.DIHEDRAL, selection.STAIN_JITTER])  # a list: applied in turn
    assert composed == augment.Compose((augment.SegmentationAugment(dihedral=True),
                                        augment.StainJitter(log_gain=0.25, shift=0.25)))
    deform = selection.ARCHITECTURE["c16 res2 e100 deform"][2]["augment"]
    assert train.build_augment(deform) == augment.SegmentationAugment(dihedral=True, rotate_deg=10, scale=0.1,
                                                                      shear_deg=5, translate=0.03, elastic_px=3)
    transform = train.build(toy_config(augment=ex1_5_variants.AFFINE), 10, CPU)[4]
    assert transform == train.build_augment(ex1_5_variants.AFFINE)


def test_options_are_an_entry_without_its_class():
    spec = {"class": "MnistCNN", "channels": (8, 16, 32), "dropout": 0.0}
    assert train.options(spec) == {"channels": (8, 16, 32), "dropout": 0.0} and "class" in spec


# --- run: a configuration trained once per seed, cached ---------------------------------------------

@pytest.fixture(autouse=True)
def _own_run_cache(run_cache):
    """Every test of this file trains into (and loads from) a run cache of its own."""
    return run_cache


def run_one(config=None, splits=None, seed=0, name="toy", **kwargs):
    return train.run_one(name, config or toy_config(), splits or toy_splits(), seed, CPU, show_progress=False,
                         **kwargs)


def test_same_seed_gives_identical_runs_and_different_seeds_differ():
    first, again, other = (run_one(seed=seed, use_cache=False)[0] for seed in (5, 5, 6))
    a, b, c = (r["history"] for r in (first, again, other))
    assert a["iter_loss"] == b["iter_loss"] and a["epochs"][-1]["val_loss"] == b["epochs"][-1]["val_loss"]
    assert first["test"] == again["test"]
    assert a["iter_loss"] != c["iter_loss"]
    assert len(a["iter_loss"]) == 3 * 10 and len(a["epochs"]) == 3  # 160 samples in batches of 16


def test_run_records_the_configuration_and_every_hyperparameter_including_pytorchs_defaults(run_cache):
    config = toy_config()
    record, folder = run_one(config)
    assert record["config"] == config and record["name"] == "toy" and record["seed"] == 0
    hyper = record["hyperparameters"]
    assert hyper["model"] == "MLP" and hyper["model_options"] == {"in_features": 16, "hidden": (8,), "num_classes": 2}
    assert hyper["optimizer"]["class"] == "SGD" and hyper["optimizer"]["defaults"]["lr"] == 0.1
    assert hyper["optimizer"]["defaults"]["momentum"] == 0 and hyper["optimizer"]["defaults"]["nesterov"] is False
    assert hyper["loss"] == {"class": "CrossEntropyLoss", "ignore_index": -100, "reduction": "mean",
                             "label_smoothing": 0.0}
    assert hyper["num_weights"] == TOY_WEIGHTS and hyper["batch_size"] == 16 and hyper["num_epochs"] == 3
    assert hyper["layers"] == ["Flatten", "linear 16→8", "ReLU", "linear 8→2"]
    assert hyper["init"] == INIT_SCHEMES["default"]
    assert hyper["scheduler"] is None and hyper["augmentation"] is None and hyper["backend"] == "torch"
    assert record["test"]["n"] == 40 and 0 <= record["test"]["accuracy"] <= 1 and record["test"]["loss"] > 0
    assert record["device"] == "cpu" and record["device_name"].startswith("CPU")
    assert record["train_time_per_epoch_s"]["n"] == 3 and record["wall_time_s"] > 0
    assert record["validation_held_out"] is True
    assert record["cache_key"] == folder.name == train.cache_key(config, 0, toy_splits(), CPU)
    assert folder.parent == run_cache / "runs"
    assert {p.name for p in folder.iterdir()} == {"record.json", "weights.pt", "test_logits.pt"}
    stored = json.loads((folder / "record.json").read_text())  # JSON-ready: the same, tuples as lists
    assert stored == json.loads(json.dumps(record))


def test_the_stored_weights_and_test_logits_belong_together():
    record, folder = run_one()
    model = train.build_model(toy_config())
    model.load_state_dict(torch.load(folder / "weights.pt", weights_only=True))
    x, y = toy_splits().test
    logits = model.eval()(x).detach()
    stored = torch.load(folder / "test_logits.pt", weights_only=True)
    torch.testing.assert_close(stored, logits)
    assert record["test"]["accuracy"] == pytest.approx(metrics.accuracy_per_sample(logits, y).mean().item())
    assert record["test"]["loss"] == pytest.approx(nn.functional.cross_entropy(logits, y).item(), rel=1e-5)


@pytest.mark.parametrize("schedule,per_batch,state", [
    ("OneCycleLR", True, {"total_steps": 30}),  # 10 batches x 3 epochs
    ("CosineAnnealingLR", False, {"T_max": 3, "last_epoch": 0}),
])
def test_a_schedule_and_augmentation_are_recorded(schedule, per_batch, state):
    affine = {"class": "RandomAffine", "max_rotation_deg": 10.0, "max_shift": 1.0, "max_scale": 0.1}
    record, _ = run_one(toy_config(schedule={"class": schedule}, augment=affine))
    hyper = record["hyperparameters"]
    assert hyper["scheduler"]["class"] == schedule and hyper["scheduler"]["per_batch"] is per_batch
    assert state.items() <= hyper["scheduler"]["state"].items()  # as built, before training
    assert hyper["augmentation"] == affine
    if schedule == "CosineAnnealingLR":  # stepped per epoch: to 0 at the last
        assert [e["lr"] for e in record["history"]["epochs"]] == pytest.approx([0.075, 0.025, 0.0], abs=1e-12)


def test_an_augmentation_changes_the_run_and_leaves_the_evaluation_alone():
    plain, augmented = (run_one(toy_config(augment=a, epochs=1))[0] for a in (
        None, {"class": "RandomAffine", "max_rotation_deg": 30.0, "max_shift": 1.0, "max_scale": 0.2}))
    assert plain["history"]["iter_loss"][0] != augmented["history"]["iter_loss"][0]
    assert plain["cache_key"] != augmented["cache_key"]


def test_finished_runs_are_cached_and_reused_without_training(monkeypatch):
    first, folder = run_one()
    with monkeypatch.context() as patch:
        patch.setattr(train, "fit", lambda *a, **k: pytest.fail("a cached run was retrained"))
        again, again_folder = run_one(name="renamed")
    assert again_folder == folder and again["history"] == first["history"] and again["test"] == first["test"]
    assert again["name"] == "renamed"  # the record carries the name it is asked for
    fresh, fresh_folder = run_one(use_cache=False)  # --no-cache: trained again into the same entry
    assert fresh_folder == folder and fresh["history"]["iter_loss"] == first["history"]["iter_loss"]


# --- the cache key --------------------------------------------------------------------------------

def test_the_cache_key_is_the_configuration_not_its_name():
    """The key hashes the configuration dict: equal dicts (whatever they are called, in whatever order
    their keys were written, with tuples or the lists JSON makes of them) are one run."""
    config, splits = toy_config(), toy_splits()
    key = train.cache_key(config, 0, splits, CPU)
    assert train.cache_key(dict(reversed(list(config.items()))), 0, splits, CPU) == key
    assert train.cache_key(json.loads(json.dumps(config)), 0, splits, CPU) == key  # as a results file holds it
    assert train.cache_key(toy_config(), 0, toy_splits(), CPU) == key  # equal, not the same objects
    ctx = fake_ctx()
    runs = [train.run(name, toy_config(), splits, ctx, label) for name, label in (("toy", None),
                                                                                   ("other", "another label"))]
    assert runs[0].folders == runs[1].folders and runs[0].records[0]["cache_key"] == key
    assert (runs[1].name, runs[1].label, runs[0].label) == ("other", "another label", "toy")


CHANGES = {  # each changes one value of the toy configuration
    "learning rate": {"optimizer": {"class": "SGD", "lr": 0.2}},
    "momentum": {"optimizer": {"class": "SGD", "lr": 0.1, "momentum": 0.9}},
    "optimizer": {"optimizer": {"class": "Adam", "lr": 0.1}},
    "epochs": {"epochs": 2},
    "batch size": {"batch_size": 32},
    "label smoothing": {"loss": {"class": "CrossEntropyLoss", "label_smoothing": 0.1}},
    "score": {"score": "dice"},
    "architecture": {"model": {**TOY_MODEL, "hidden": (9,)}},
    "activation": {"model": {**TOY_MODEL, "activation": "tanh"}},
    "schedule": {"schedule": {"class": "CosineAnnealingLR"}},
    "augmentation": {"augment": {"class": "RandomAffine", "max_rotation_deg": 10.0, "max_shift": 1.0,
                                 "max_scale": 0.1}},
    "backend": {"backend": "numpy"},
}


def test_the_cache_key_changes_with_every_value_of_the_configuration_the_seed_the_data_and_the_version(monkeypatch):
    splits = toy_splits()
    base = train.cache_key(toy_config(), 0, splits, CPU)
    keys = {what: train.cache_key(toy_config(**change), 0, splits, CPU) for what, change in CHANGES.items()}
    keys["seed"] = train.cache_key(toy_config(), 1, splits, CPU)
    keys["data"] = train.cache_key(toy_config(), 0, toy_splits(seed=1), CPU)
    keys["device type"] = train.cache_key(toy_config(), 0, splits, torch.device("cuda"))
    with monkeypatch.context() as patch:
        patch.setattr(train, "VERSION", train.VERSION + 1)
        keys["version"] = train.cache_key(toy_config(), 0, splits, CPU)
    assert train.cache_key(toy_config(), 0, splits, CPU) == base
    assert base not in keys.values() and len(set(keys.values())) == len(keys), keys


def test_a_new_version_retrains_instead_of_loading(monkeypatch):
    first, folder = run_one()
    monkeypatch.setattr(train, "VERSION", train.VERSION + 1)
    again, again_folder = run_one()
    assert again_folder != folder and again["history"]["iter_loss"] == first["history"]["iter_loss"]


def test_a_second_run_of_the_same_configuration_loads_it_and_returns_identical_records(monkeypatch):
    ctx, splits = fake_ctx(seeds=(0, 1)), toy_splits()
    first = train.run("toy", toy_config(), splits, ctx)
    monkeypatch.setattr(train, "fit", lambda *a, **k: pytest.fail("a cached run was retrained"))
    again = train.run("toy", toy_config(), splits, ctx)
    assert again.folders == first.folders
    assert again.records == json.loads(json.dumps(first.records))  # as JSON keeps them: tuples become lists
    for k in range(2):
        assert torch.equal(again.test_logits()[k], first.test_logits()[k])
    with pytest.raises(pytest.fail.Exception, match="retrained"):  # --no-cache trains
        train.run("toy", toy_config(), splits, fake_ctx(seeds=(0,), use_cache=False))


def test_a_changed_score_is_recorded_under_its_own_name(monkeypatch):
    monkeypatch.setitem(train.SCORES, "hit_rate", metrics.accuracy_per_sample)
    record, _ = run_one(toy_config(score="hit_rate"))
    assert "hit_rate" in record["test"] and "accuracy" not in record["test"]


@pytest.mark.parametrize("where", ["fit", "atomic_write_json"])
def test_an_interrupted_run_leaves_no_cache_entry(run_cache, monkeypatch, where):
    """Interrupted while training, or after the weights are written but before the record that marks
    the entry complete: no entry; the rerun trains and completes it."""
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    with monkeypatch.context() as patch, pytest.raises(KeyboardInterrupt):
        patch.setattr(train, where, interrupted)
        run_one()
    assert not list(run_cache.rglob("record.json"))
    if where == "atomic_write_json":
        assert (run_cache / "runs" / train.cache_key(toy_config(), 0, toy_splits(), CPU) / "weights.pt").is_file()
    record, folder = run_one()
    assert (folder / "record.json").is_file() and record["history"]["iter_loss"]


# --- Runs ----------------------------------------------------------------------------------------

def test_run_trains_the_configuration_for_every_seed():
    config = toy_config(epochs=2)
    runs = train.run("wide", config, toy_splits(), fake_ctx(seeds=(3, 4)), "wide net")
    assert (runs.name, runs.label, runs.config) == ("wide", "wide net", config)
    assert [rec["seed"] for rec in runs.records] == [3, 4] and len(set(runs.folders)) == 2
    assert runs.num_weights == TOY_WEIGHTS and runs.score == "accuracy"
    summary = results.summary(runs)
    accs = [r["test"]["accuracy"] for r in runs.records]
    assert summary["test_accuracy"]["mean"] == pytest.approx(np.mean(accs)) and summary["test_accuracy"]["n"] == 2
    assert summary["final_val_accuracy"]["mean"] == pytest.approx(
        np.mean([r["history"]["epochs"][-1]["val_score"] for r in runs.records]))
    assert len(summary["verdicts"]) == 2 and all(v["verdict"] == s for v, s in
                                                 zip(summary["verdict_details"], summary["verdicts"]))
    as_dict = results.entry(runs)
    assert set(as_dict) == {"name", "label", "score_name", "num_weights", "runs", "summary"}
    json.dumps(as_dict)
    logits = runs.test_logits()
    assert len(logits) == 2 and logits[0].shape == (40, 2) and not torch.equal(logits[0], logits[1])
    model = runs.model(1)
    torch.testing.assert_close(model.eval()(toy_splits().test[0]).detach(), logits[1])
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), runs.weights(1).values()))
    untrained = runs.model()
    assert type(untrained) is models.MLP and not torch.equal(untrained.state_dict()["1.weight"],
                                                             runs.weights(1)["1.weight"])
    # seeds: another list than the context's; a seed's run is the same whichever list it is in
    [fewer] = train.run("wide", config, toy_splits(), fake_ctx(seeds=(3, 4)), seeds=[4]).records
    assert fewer["seed"] == 4 and fewer["history"] == runs.records[1]["history"]


def test_a_far_too_large_learning_rate_is_recorded_as_diverged():
    config = toy_config(optimizer={"class": "SGD", "lr": 1e4}, epochs=1)
    runs = train.run("toy", config, toy_splits(), fake_ctx())
    assert results.summary(runs)["verdicts"] == ["diverged"]


def test_a_refit_without_a_hold_out_has_no_validation_score_or_verdict():
    splits = toy_splits()
    splits.info["validation_held_out"] = False
    runs = train.run("toy", toy_config(), splits, fake_ctx())
    summary = results.summary(runs)
    assert "final_val_accuracy" not in summary and summary["verdicts"] == ["no hold-out"]
    assert runs.records[0]["validation_held_out"] is False


# --- devices and backends -------------------------------------------------------------------------

def test_run_trains_on_the_device_it_is_given_else_the_contexts():
    """An explicit device wins over the context's (Ex 1.1 trains on the CPU beside the GPU); the device
    type is part of the key."""
    ctx = fake_ctx()
    ctx.device = torch.device("cuda")  # never touched: the run is asked for the CPU
    runs = train.run("toy", toy_config(epochs=1), toy_splits(), ctx, device=CPU)
    assert runs.records[0]["device"] == "cpu"
    assert runs.records[0]["cache_key"] == train.cache_key(toy_config(epochs=1), 0, toy_splits(), CPU)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_a_run_on_the_gpu_is_its_own_cache_entry_and_loads_back_onto_the_cpu():
    cuda = torch.device("cuda")
    record, folder = train.run_one("toy", toy_config(epochs=1), toy_splits(), 0, cuda, show_progress=False)
    assert record["device"].startswith("cuda") and folder.name == train.cache_key(toy_config(epochs=1), 0,
                                                                                   toy_splits(), cuda)
    assert folder.name != train.cache_key(toy_config(epochs=1), 0, toy_splits(), CPU)
    runs = train.Runs("toy", "toy", toy_config(epochs=1), [record], [folder])
    assert runs.test_logits()[0].device.type == "cpu"
    torch.testing.assert_close(runs.model(0).eval()(toy_splits().test[0]).detach(), runs.test_logits()[0],
                               rtol=1e-4, atol=1e-5)


def test_the_numpy_backend_trains_on_the_cpu_whatever_the_device():
    config = toy_config(backend="numpy", epochs=1)
    record, folder = train.run_one("toy", config, toy_splits(), 0, torch.device("cuda"), show_progress=False)
    assert record["hyperparameters"]["backend"] == "numpy" and record["device"] == "cpu"
    assert folder.name == train.cache_key(config, 0, toy_splits(), CPU)
    assert set(torch.load(folder / "weights.pt", weights_only=True)) == {"weights", "biases"}


@pytest.mark.parametrize("change", [
    {"optimizer": {"class": "SGD", "lr": 0.1, "momentum": 0.9}},
    {"optimizer": {"class": "SGD", "lr": 0.1, "weight_decay": 1e-3}},
    {"optimizer": {"class": "Adam", "lr": 0.1}},
    {"schedule": {"class": "CosineAnnealingLR"}},
])
def test_the_numpy_backend_refuses_all_but_plain_sgd(change, run_cache):
    with pytest.raises(ValueError, match="plain SGD only"):
        run_one(toy_config(backend="numpy", **change))
    assert not list(run_cache.rglob("record.json"))


def test_an_unknown_backend_is_refused():
    with pytest.raises(ValueError, match="unknown backend 'jax'; use 'torch' or 'numpy'"):
        run_one(toy_config(backend="jax", epochs=1))


def test_numpy_and_torch_backends_start_alike():
    """The same seed builds the same initial weights for both, so Ex 1.1's first losses agree."""
    records = [run_one(toy_config(backend=b, epochs=1))[0] for b in ("numpy", "torch")]
    assert records[0]["history"]["iter_loss"][0] == pytest.approx(records[1]["history"]["iter_loss"][0], rel=1e-4)
    assert records[0]["cache_key"] != records[1]["cache_key"]


# --- describe -------------------------------------------------------------------------------------

def _describe(config):
    model, optimizer, scheduler, loss, _ = train.build(config, 10, CPU)
    return train.describe(config, model, optimizer, scheduler, loss, per_batch=False)


@pytest.mark.parametrize("init", ["kaiming", "he"])
def test_the_recorded_initialisation_is_the_models(init):
    hyper = _describe(toy_config(model={"class": "SegNet", "channels": (4, 8), "init": init}, score="dice"))
    assert hyper["init"] == INIT_SCHEMES[init] and hyper["model"] == "SegNet"
    assert hyper["model_options"] == {"channels": (4, 8), "init": init}  # as the configuration says it


def test_the_default_initialisation_is_recorded_as_pytorchs():
    assert _describe(toy_config())["init"] == INIT_SCHEMES["default"]


def test_describe_records_the_settings_pytorch_fills_in():
    hyper = _describe(toy_config(optimizer={"class": "Adam", "lr": 0.01}, schedule={"class": "CosineAnnealingLR"},
                                 augment=[{"class": "StainJitter", "log_gain": 0.1, "shift": 0.1}]))
    assert hyper["optimizer"]["defaults"]["betas"] == (0.9, 0.999) and hyper["optimizer"]["param_groups"][0]["lr"] == 0.01
    assert hyper["scheduler"]["class"] == "CosineAnnealingLR" and hyper["scheduler"]["state"]["eta_min"] == 0
    assert hyper["augmentation"] == [{"class": "StainJitter", "log_gain": 0.1, "shift": 0.1}]
    assert hyper["shuffle"].startswith("new permutation every epoch")


def test_seed_everything_seeds_python_numpy_and_torch():
    draws = []
    for _ in range(2):
        train.seed_everything(7)
        draws.append((random.random(), np.random.rand(), torch.rand(1).item()))
    assert draws[0] == draws[1]
    train.seed_everything(8)
    assert (random.random(), np.random.rand(), torch.rand(1).item()) != draws[0]


# --- a small run's numbers --------------------------------------------------------------------------
# Tiny runs of every kind of configuration the scripts train, one seed on the CPU: the numbers a run
# records change when (and only when) what training computes does.

# name -> the run's numbers (seed 0, on the CPU, one thread): the final epoch's record, the learning rate
# after it, and the test split's loss and score
GOLDEN = {
    "mlp, sgd": {
        "train_loss": 1.0342761774857838, "val_loss": 1.070624589920044, "val_score": 0.375,
        "train_eval_loss": 0.9888784885406494, "train_eval_score": 0.53125, "val_majority_share": 0.71875, "lr": 0.1,
        "test_loss": 1.092279076576233, "test_score": 0.34375,
    },
    "mlp, numpy backend": {
        "train_loss": 1.0342762072881062, "val_loss": 1.070624589920044, "val_score": 0.375,
        "train_eval_loss": 0.9888784885406494, "train_eval_score": 0.53125, "val_majority_share": 0.71875, "lr": 0.1,
        "test_loss": 1.0922791957855225, "test_score": 0.34375,
    },
    "cnn, adam, one-cycle, augmented": {
        "train_loss": 1.1035730242729187, "val_loss": 1.109887719154358, "val_score": 0.28125,
        "train_eval_loss": 1.0806381702423096, "train_eval_score": 0.40625, "val_majority_share": 1.0,
        "lr": 0.0003456698742539516, "test_loss": 1.1242693662643433, "test_score": 0.21875,
    },
    "cnn, nesterov sgd, weight decay": {
        "train_loss": 1.0648928980032604, "val_loss": 1.1176460981369019, "val_score": 0.375,
        "train_eval_loss": 1.0730715990066528, "train_eval_score": 0.34375, "val_majority_share": 0.5,
        "lr": 0.000872072851630233, "test_loss": 1.1451138257980347, "test_score": 0.28125,
    },
    "cnn, tanh, pool first": {
        "train_loss": 1.0966390172640483, "val_loss": 1.1071010828018188, "val_score": 0.3125,
        "train_eval_loss": 1.1068006753921509, "train_eval_score": 0.4375, "val_majority_share": 0.78125, "lr": 0.3,
        "test_loss": 1.0860587358474731, "test_score": 0.4375,
    },
    "segnet, u-net, residual, augmented, cosine": {
        "train_loss": 0.6916145086288452, "val_loss": 0.7411971688270569, "val_score": 0.35163649916648865,
        "train_eval_loss": 0.7543566823005676, "train_eval_score": 0.3722367286682129,
        "val_majority_share": 0.7763671875, "lr": 0.0, "test_loss": 0.7337373495101929,
        "test_score": 0.3285423517227173,
    },
    "segnet, plain, no batch norm, weight decay": {
        "train_loss": 0.6884777744611105, "val_loss": 0.6911606192588806, "val_score": 0.49500495195388794,
        "train_eval_loss": 0.6855767965316772, "train_eval_score": 0.5304442048072815,
        "val_majority_share": 0.54443359375, "lr": 0.01, "test_loss": 0.6900098919868469,
        "test_score": 0.49162381887435913,
    },
}


def golden_splits() -> Splits:
    """Three classes of 8x8 one-channel 'images', labelled by a fixed random projection."""
    g = torch.Generator().manual_seed(1234)
    x = torch.randn(160, 1, 8, 8, generator=g)
    y = (x.flatten(1) @ torch.randn(64, 3, generator=g)).argmax(1)
    return Splits(train=(x[:96], y[:96]), val=(x[96:128], y[96:128]), test=(x[128:], y[128:]),
                  info={"fingerprint": "golden-160"})


def golden_segmentation_splits() -> Splits:
    """40 two-channel 16x16 'images' with 0/1 masks (half the pixels): blobs where a mix of the channels,
    averaged over 3x3 pixels, is positive."""
    g = torch.Generator().manual_seed(4321)
    x = torch.randn(40, 2, 16, 16, generator=g)
    smooth = nn.functional.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False)
    y = (smooth[:, 0] - 0.5 * smooth[:, 1] > 0).long()
    return Splits(train=(x[:24], y[:24]), val=(x[24:32], y[24:32]), test=(x[32:], y[32:]),
                  info={"fingerprint": "golden-seg-40"})


GOLDEN_SPLITS = {"accuracy": golden_splits, "dice": golden_segmentation_splits}
_CE = {"class": "CrossEntropyLoss"}
_CNN = {"class": "MnistCNN", "channels": (4, 8, 8), "activation": "relu", "pool_first": False, "batch_norm": False,
        "dropout": 0.0, "num_classes": 3, "image_size": 8}
_SEGNET = {"class": "SegNet", "channels": (4, 8, 8), "up_kernel": 4, "init": "he", "batch_norm": True,
           "skip": "concat", "block_depth": 2, "residual": True}
GOLDEN_CONFIGS = {
    "mlp, sgd": {"model": {"class": "MLP", "in_features": 64, "hidden": (8,), "num_classes": 3},
                 "loss": _CE, "optimizer": {"class": "SGD", "lr": 0.1}, "schedule": None,
                 "augment": None, "epochs": 2, "batch_size": 16, "score": "accuracy"},
    "mlp, numpy backend": {"model": {"class": "MLP", "in_features": 64, "hidden": (8,), "num_classes": 3},
                           "loss": _CE, "optimizer": {"class": "SGD", "lr": 0.1}, "schedule": None,
                           "augment": None, "epochs": 2, "batch_size": 16, "score": "accuracy", "backend": "numpy"},
    "cnn, adam, one-cycle, augmented": {
        "model": {"class": "MnistCNN", "channels": (2, 4, 4), "batch_norm": True, "dropout": 0.1, "num_classes": 3,
                  "image_size": 8},
        "loss": {"class": "CrossEntropyLoss", "label_smoothing": 0.1},
        "optimizer": {"class": "Adam", "lr": 0.01, "weight_decay": 1e-4}, "schedule": {"class": "OneCycleLR"},
        "augment": {"class": "RandomAffine", "max_rotation_deg": 10.0, "max_shift": 1.0, "max_scale": 0.1},
        "epochs": 2, "batch_size": 16, "score": "accuracy"},
    "cnn, nesterov sgd, weight decay": {  # Ex 1.5's combination: SGD with momentum, one-cycle cycling it
        "model": {**_CNN, "batch_norm": True}, "loss": {"class": "CrossEntropyLoss", "label_smoothing": 0.1},
        "optimizer": {"class": "SGD", "lr": 0.1, "momentum": 0.9, "nesterov": True, "weight_decay": 5e-4},
        "schedule": {"class": "OneCycleLR"},
        "augment": {"class": "RandomAffine", "max_rotation_deg": 10.0, "max_shift": 2.0, "max_scale": 0.1},
        "epochs": 4, "batch_size": 16, "score": "accuracy"},
    "cnn, tanh, pool first": {"model": {**_CNN, "activation": "tanh", "pool_first": True}, "loss": _CE,
                              "optimizer": {"class": "SGD", "lr": 0.3}, "schedule": None, "augment": None,
                              "epochs": 4, "batch_size": 16, "score": "accuracy"},
    "segnet, u-net, residual, augmented, cosine": {
        "model": _SEGNET, "loss": _CE, "optimizer": {"class": "Adam", "lr": 1e-2},
        "schedule": {"class": "CosineAnnealingLR"}, "augment": {"class": "SegmentationAugment", "dihedral": True},
        "epochs": 5, "batch_size": 8, "score": "dice"},
    "segnet, plain, no batch norm, weight decay": {
        "model": {**_SEGNET, "up_kernel": 2, "init": "kaiming", "batch_norm": False, "skip": None, "block_depth": 1,
                  "residual": False},
        "loss": _CE, "optimizer": {"class": "Adam", "lr": 1e-2, "weight_decay": 1e-4}, "schedule": None,
        "augment": None, "epochs": 5, "batch_size": 8, "score": "dice"},
}


def golden_numbers(record: dict) -> dict:
    last, test = record["history"]["epochs"][-1], record["test"]
    return {**{k: last[k] for k in ("train_loss", "val_loss", "val_score", "train_eval_loss", "train_eval_score",
                                    "val_majority_share", "lr")},
            "test_loss": test["loss"], "test_score": test[record["config"]["score"]]}


def golden_run(name: str) -> dict:
    config = GOLDEN_CONFIGS[name]
    record, _ = train.run_one(name, config, GOLDEN_SPLITS[config["score"]](), 0, CPU, use_cache=False,
                              show_progress=False)
    return golden_numbers(record)


@pytest.mark.parametrize("name", list(GOLDEN_CONFIGS))
def test_a_small_run_computes_the_recorded_numbers(name):
    """This fails when what training computes or records changes (the model, its initialisation, the
    optimizer, the schedule, the augmentation, the batches, the loss, the evaluation, the backend): then
    bump ``common.train.VERSION``, so that no cached run of the old computation is reused, and update
    GOLDEN to the new numbers."""
    assert golden_run(name) == pytest.approx(GOLDEN[name], rel=1e-6, abs=1e-9), (
        "the run's numbers changed: if that is intended, change common.train.VERSION and update GOLDEN in "
        "tests/test_train.py")


def test_the_small_runs_cover_every_kind_of_run_the_scripts_train():
    assert set(GOLDEN) == set(GOLDEN_CONFIGS)
    configs = GOLDEN_CONFIGS.values()
    assert {c["model"]["class"] for c in configs} == set(train.MODELS)
    assert {c["optimizer"]["class"] for c in configs} == set(train.OPTIMIZERS)
    assert {(c["schedule"] or {}).get("class") for c in configs} == {None, "CosineAnnealingLR", "OneCycleLR"}
    assert {c.get("backend", "torch") for c in configs} == {"torch", "numpy"}
    assert {c["score"] for c in configs} == set(train.SCORES)
    assert {(c["augment"] or {}).get("class") for c in configs} >= {None, "RandomAffine", "SegmentationAugment"}
