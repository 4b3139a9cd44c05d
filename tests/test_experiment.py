"""common.experiment: a configuration trained per seed, reproducibly, recorded completely and cached
(the key hashes what determines the run, not its name; an interrupted run leaves no entry)."""
import dataclasses
import functools
import json
import random
import shutil

import numpy as np
import pytest
import torch
from torch import nn

from common import experiment, metrics, results
from common.models import INIT_SCHEMES, SegNet
from helpers import TOY_WEIGHTS, fake_ctx, toy_config, toy_model, toy_splits

CPU = torch.device("cpu")


def run(config=None, splits=None, seed=0, cache_root=None, **kwargs):
    return experiment.run_one(config or toy_config(), splits or toy_splits(), seed, CPU, cache_root=cache_root,
                              show_progress=False, **kwargs)


def test_same_seed_gives_identical_runs_and_different_seeds_differ(tmp_path):
    records = [run(seed=seed, cache_root=tmp_path / str(i))[0] for i, seed in enumerate((5, 5, 6))]
    a, b, c = (r["history"] for r in records)
    assert a["iter_loss"] == b["iter_loss"] and a["epochs"][-1]["val_loss"] == b["epochs"][-1]["val_loss"]
    assert records[0]["test"] == records[1]["test"]
    assert a["iter_loss"] != c["iter_loss"]
    assert len(a["iter_loss"]) == 3 * 10 and len(a["epochs"]) == 3  # 160 samples in batches of 16


def test_run_records_every_hyperparameter_including_pytorchs_defaults(tmp_path):
    record, folder = run(cache_root=tmp_path)
    hyper = record["hyperparameters"]
    assert hyper["optimizer"]["class"] == "SGD" and hyper["optimizer"]["defaults"]["lr"] == 0.1
    assert hyper["optimizer"]["defaults"]["momentum"] == 0 and hyper["optimizer"]["defaults"]["nesterov"] is False
    assert hyper["loss"] == {"class": "CrossEntropyLoss", "ignore_index": -100, "reduction": "mean",
                             "label_smoothing": 0.0}
    assert hyper["num_weights"] == TOY_WEIGHTS and hyper["batch_size"] == 16 and hyper["num_epochs"] == 3
    assert hyper["layers"] == ["Flatten", "linear 16→8", "ReLU", "linear 8→2"]
    assert hyper["scheduler"] is None and hyper["augmentation"] is None and hyper["backend"] == "torch"
    assert record["test"]["n"] == 40 and 0 <= record["test"]["accuracy"] <= 1
    assert record["device"] == "cpu" and record["device_name"].startswith("CPU")
    assert record["train_time_per_epoch_s"]["n"] == 3 and record["cache_key"] == folder.name
    json.dumps(record)  # JSON-ready
    assert {p.name for p in folder.iterdir()} == {"record.json", "weights.pt", "test_logits.pt"}


def test_the_stored_weights_and_test_logits_belong_together(tmp_path):
    record, folder = run(cache_root=tmp_path)
    model = toy_model()
    model.load_state_dict(torch.load(folder / "weights.pt", weights_only=True))
    x, y = toy_splits().test
    logits = model.eval()(x).detach()
    stored = torch.load(folder / "test_logits.pt", weights_only=True)
    torch.testing.assert_close(stored, logits)
    assert record["test"]["accuracy"] == pytest.approx(metrics.accuracy_per_sample(logits, y).mean().item())


def test_a_schedule_and_augmentation_are_recorded(tmp_path):
    one_cycle = lambda opt, steps: torch.optim.lr_scheduler.OneCycleLR(opt, 0.1, total_steps=3 * steps)  # noqa: E731
    config = toy_config(scheduler=one_cycle, scheduler_per_batch=True, augment=lambda x, y: (x, y))
    hyper = run(config, cache_root=tmp_path)[0]["hyperparameters"]
    assert hyper["scheduler"]["class"] == "OneCycleLR" and hyper["scheduler"]["per_batch"] is True
    assert hyper["scheduler"]["state"]["total_steps"] == 30  # 10 batches x 3 epochs
    assert hyper["augmentation"].startswith("<function")


def test_finished_runs_are_cached_and_reused_without_training(tmp_path, monkeypatch):
    first, folder = run(cache_root=tmp_path)
    monkeypatch.setattr(experiment, "fit", lambda *a, **k: pytest.fail("a cached run was retrained"))
    again, again_folder = run(toy_config(name="renamed", label="other label"), cache_root=tmp_path)
    assert again_folder == folder and again["history"] == first["history"] and again["test"] == first["test"]
    assert again["name"] == "renamed"  # the record carries the name it is asked for
    monkeypatch.undo()
    _, fresh = run(cache_root=tmp_path, use_cache=False)  # --no-cache: trained again into the same entry
    assert fresh == folder


def _key(tmp_path, config=None, splits=None, seed=0) -> str:
    return run(config, splits, seed, cache_root=tmp_path)[0]["cache_key"]


def test_the_cache_key_changes_with_what_determines_a_run_and_not_with_its_name(tmp_path, monkeypatch):
    monkeypatch.setitem(experiment.SCORES, "hit_rate", metrics.accuracy_per_sample)
    base = _key(tmp_path)
    changed = {
        "learning rate": _key(tmp_path, toy_config(optimizer=lambda p: torch.optim.SGD(p, lr=0.2))),
        "momentum": _key(tmp_path, toy_config(optimizer=lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9))),
        "epochs": _key(tmp_path, toy_config(epochs=2)),
        "batch size": _key(tmp_path, toy_config(batch_size=32)),
        "class weights": _key(tmp_path, toy_config(loss=nn.CrossEntropyLoss(weight=torch.tensor([1.0, 3.0])))),
        "other class weights": _key(tmp_path, toy_config(loss=nn.CrossEntropyLoss(weight=torch.tensor([1.0, 2.0])))),
        "score": _key(tmp_path, toy_config(score="hit_rate")),
        "seed": _key(tmp_path, seed=1),
        "data": _key(tmp_path, splits=toy_splits(seed=1)),
        "architecture": _key(tmp_path, toy_config(model=lambda: nn.Sequential(nn.Flatten(), nn.Linear(16, 2)))),
    }
    assert base not in changed.values() and len(set(changed.values())) == len(changed), changed
    assert _key(tmp_path, toy_config(name="another name", label="another label")) == base


def test_a_changed_score_is_recorded_under_its_own_name(tmp_path, monkeypatch):
    monkeypatch.setitem(experiment.SCORES, "hit_rate", metrics.accuracy_per_sample)
    record, _ = run(toy_config(score="hit_rate"), cache_root=tmp_path)
    assert "hit_rate" in record["test"] and "accuracy" not in record["test"]


def test_the_training_code_is_part_of_the_key_and_the_plotting_code_is_not(tmp_path, monkeypatch):
    copy = tmp_path / "common"
    shutil.copytree(experiment.COMMON_DIR, copy)
    monkeypatch.setattr(experiment, "COMMON_DIR", copy)
    before = experiment.training_code_hash()
    (copy / "plots.py").write_text((copy / "plots.py").read_text() + "\n# a comment\n")
    assert experiment.training_code_hash() == before
    (copy / "train.py").write_text((copy / "train.py").read_text() + "\n# a comment\n")
    assert experiment.training_code_hash() != before


@pytest.mark.parametrize("where", ["fit", "_save"])
def test_an_interrupted_run_leaves_no_cache_entry(tmp_path, monkeypatch, where):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    if where == "_save":  # after the weights are written, before the record that marks the entry complete
        monkeypatch.setattr(experiment, "atomic_write_json", interrupted)
    else:
        monkeypatch.setattr(experiment, where, interrupted)
    with pytest.raises(KeyboardInterrupt):
        run(cache_root=tmp_path)
    assert not list(tmp_path.rglob("record.json"))
    monkeypatch.undo()
    record, folder = run(cache_root=tmp_path)  # the rerun trains and completes the entry
    assert (folder / "record.json").is_file() and record["history"]["iter_loss"]


def test_a_far_too_large_learning_rate_is_recorded_as_diverged(tmp_path):
    config = toy_config(optimizer=lambda p: torch.optim.SGD(p, lr=1e4), epochs=1)
    [runs] = experiment.run_all([config], toy_splits(), fake_ctx(tmp_path))
    assert results.summary(runs)["verdicts"] == ["diverged"]


def test_run_all_trains_each_configuration_for_every_seed(tmp_path):
    configs = [toy_config(), toy_config(name="wide", label="wide net", epochs=2)]
    runs = experiment.run_all(configs, toy_splits(), fake_ctx(tmp_path, seeds=(3, 4)))
    assert [r.name for r in runs] == ["toy", "wide"] and runs[1].label == "wide net" and runs[0].label == "toy"
    assert [rec["seed"] for rec in runs[0].records] == [3, 4] and len(set(runs[0].folders)) == 2
    assert runs[0].num_weights == TOY_WEIGHTS and runs[0].score == "accuracy"
    summary = results.summary(runs[0])
    accs = [r["test"]["accuracy"] for r in runs[0].records]
    assert summary["test_accuracy"]["mean"] == pytest.approx(np.mean(accs)) and summary["test_accuracy"]["n"] == 2
    assert summary["final_val_accuracy"]["mean"] == pytest.approx(
        np.mean([r["history"]["epochs"][-1]["val_score"] for r in runs[0].records]))
    assert len(summary["verdicts"]) == 2 and all(v["verdict"] == s for v, s in
                                                 zip(summary["verdict_details"], summary["verdicts"]))
    as_dict = results.entry(runs[0])
    assert set(as_dict) == {"name", "label", "score_name", "num_weights", "runs", "summary"}
    json.dumps(as_dict)
    logits = runs[0].test_logits()
    assert len(logits) == 2 and logits[0].shape == (40, 2) and not torch.equal(logits[0], logits[1])
    model = toy_model()
    model.load_state_dict(runs[0].weights(1))
    torch.testing.assert_close(model.eval()(toy_splits().test[0]).detach(), logits[1])
    [fewer] = experiment.run_all([dataclasses.replace(configs[0], num_seeds=1)], toy_splits(),
                                 fake_ctx(tmp_path, seeds=(3, 4)))
    assert [r["seed"] for r in fewer.records] == [3]  # a configuration's num_seeds: the context's first seeds
    assert fewer.records[0]["history"] == runs[0].records[0]["history"]


def test_planning_collects_the_runs_to_train_instead_of_training(tmp_path, monkeypatch):
    """While experiment.PLAN is a list (make report plans), run_all adds its untrained runs and raises
    Planned; trained in the pool, they are then loaded from the cache."""
    monkeypatch.setattr(experiment, "PLAN", [])
    ctx = fake_ctx(tmp_path, seeds=(0, 1))
    with pytest.raises(experiment.Planned):
        experiment.run_all([toy_config()], toy_splits(), ctx)
    assert [job.seed for job in experiment.PLAN] == [0, 1]
    experiment.train_in_pool(list(experiment.PLAN), 1, cache_root=tmp_path, show_progress=False)
    monkeypatch.setattr(experiment, "fit", lambda *a, **k: pytest.fail("a planned run was trained again"))
    [runs] = experiment.run_all([toy_config()], toy_splits(), ctx)  # all in the cache: no Planned
    assert [r["seed"] for r in runs.records] == [0, 1]


def test_a_refit_without_a_hold_out_has_no_validation_score_or_verdict(tmp_path):
    splits = toy_splits()
    splits.info["validation_held_out"] = False
    [runs] = experiment.run_all([toy_config()], splits, fake_ctx(tmp_path))
    summary = results.summary(runs)
    assert "final_val_accuracy" not in summary and summary["verdicts"] == ["no hold-out"]
    assert runs.records[0]["validation_held_out"] is False


POOL_SCRIPT = """
import json, sys, tempfile
from pathlib import Path
sys.path[:0] = [{repo!r}, {tests!r}]
import torch
{before}
from common import experiment
from helpers import fake_ctx, toy_config, toy_splits

configs = [toy_config(), toy_config(name="short", epochs=2)]
out = {{}}
for workers in {workers}:
    runs = experiment.run_all(configs, toy_splits(), fake_ctx(Path(tempfile.mkdtemp()), seeds=(0, 1), workers=workers))
    out[workers] = [[(r["seed"], r["cache_key"], r["history"]["iter_loss"],
                      [e["val_score"] for e in r["history"]["epochs"]], r["test"]) for r in x.records] for x in runs]
print(json.dumps(out))
"""


def _pool_run(tmp_path, workers, before: str, timeout: float) -> dict:
    """``run_all`` with each of ``workers`` in a fresh interpreter (a process pool forks it), after
    ``before``; the records' essentials per worker count. A hang (the pool's workers deadlocked) fails."""
    import subprocess
    import sys
    from pathlib import Path

    tests = Path(__file__).resolve().parent
    script = tmp_path / "pool.py"
    script.write_text(POOL_SCRIPT.format(repo=str(tests.parent), tests=str(tests), before=before,
                                         workers=list(workers)))
    import os
    import signal

    process = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               start_new_session=True)  # its own process group: hung workers are ended with it
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        pytest.fail(f"run_all with workers {workers} did not finish in {timeout} s (deadlocked workers?)")
    assert process.returncode == 0, stderr[-2000:]
    return json.loads(stdout.splitlines()[-1])


def test_a_pool_of_workers_gives_the_same_records_as_one(tmp_path):
    """As a script runs it: one thread per process (cli.setup) before any tensor work."""
    out = _pool_run(tmp_path, (1, 2), "torch.set_num_threads(1)", timeout=120)
    assert out["2"] == out["1"]


def test_a_process_on_several_threads_trains_one_run_at_a_time_instead_of_forking(tmp_path):
    """Forked workers of a process whose OpenMP threads run can deadlock (on a futex, forever): run_all
    falls back to training in turn there, and finishes."""
    before = "torch.set_num_threads(2); torch.randn(1000, 1000) @ torch.randn(1000, 1000)  # threads started"
    out = _pool_run(tmp_path, (2,), before, timeout=15)  # it takes 2-5 s where it works
    assert len(out["2"]) == 2


def test_the_numpy_backend_trains_plain_sgd_only(tmp_path):
    record, _ = run(toy_config(backend="numpy", epochs=1), cache_root=tmp_path)
    assert record["hyperparameters"]["backend"] == "numpy" and record["device"] == "cpu"
    with pytest.raises(ValueError, match="plain SGD only"):
        run(toy_config(backend="numpy", optimizer=lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9)),
            cache_root=tmp_path)
    with pytest.raises(ValueError, match="unknown backend 'jax'"):
        run(toy_config(backend="jax"), cache_root=tmp_path)


def test_numpy_and_torch_backends_start_alike(tmp_path):
    """The same seed builds the same initial weights for both, so Ex 1.1's first losses agree."""
    splits = toy_splits()
    records = [run(toy_config(backend=b, epochs=1), splits, cache_root=tmp_path / b)[0] for b in ("numpy", "torch")]
    assert records[0]["history"]["iter_loss"][0] == pytest.approx(records[1]["history"]["iter_loss"][0], rel=1e-4)


@pytest.mark.parametrize("init", ["kaiming", "he"])
def test_the_recorded_initialisation_is_the_models(init):
    model = SegNet(channels=(4, 8), init=init)
    config = toy_config(model=functools.partial(SegNet, channels=(4, 8), init=init))
    hyper = experiment.describe(config, model, config.optimizer(model.parameters()), None)
    assert hyper["init"] == INIT_SCHEMES[init]


def test_the_default_initialisation_is_recorded_as_pytorchs():
    model = toy_model()
    config = toy_config()
    assert experiment.describe(config, model, config.optimizer(model.parameters()), None)["init"] == \
        INIT_SCHEMES["default"]


def test_seed_everything_seeds_python_numpy_and_torch():
    draws = []
    for _ in range(2):
        experiment.seed_everything(7)
        draws.append((random.random(), np.random.rand(), torch.rand(1).item()))
    assert draws[0] == draws[1]
    experiment.seed_everything(8)
    assert (random.random(), np.random.rand(), torch.rand(1).item()) != draws[0]


def test_device_name_describes_the_cpu(monkeypatch):
    from common.cli import device_name

    monkeypatch.setattr(torch, "get_num_threads", lambda: 1)
    name = device_name(CPU)
    assert name.startswith("CPU: ") and "(1 torch thread, " in name
    monkeypatch.setattr(torch, "get_num_threads", lambda: 4)
    assert "(4 torch threads, " in device_name(CPU)


def test_a_planned_script_prints_its_header_once_when_it_goes_on(tmp_path, monkeypatch, capsys):
    """make report runs a script twice (planning, then from the cache): its header line once, the second time."""
    from common import cli

    monkeypatch.setenv("DLIA_CACHE_DIR", str(tmp_path / "cache"))
    parser = cli.make_parser("test", epochs=1, batch_size=16, lr=0.1, num_seeds=2)
    argv = ["--device", "cpu", "--out-dir", str(tmp_path / "out"), "--no-progress", "--workers", "1"]
    monkeypatch.setattr(experiment, "PLAN", [])
    with pytest.raises(experiment.Planned):
        experiment.run_all([toy_config()], toy_splits(), cli.setup(parser, argv, "ex9_9_demo.py"))
    assert capsys.readouterr().out == ""  # planned: no header
    experiment.train_in_pool(list(experiment.PLAN), 1, cache_root=tmp_path / "cache", show_progress=False)
    ctx = cli.setup(parser, argv, "ex9_9_demo.py")
    experiment.run_all([toy_config()], toy_splits(), ctx)
    experiment.run_all([toy_config(name="again")], toy_splits(), ctx)
    assert capsys.readouterr().out == ctx.header + "\n" and ctx.header.startswith("ex9_9_demo.py: CPU")
    monkeypatch.setattr(experiment, "PLAN", None)
    cli.setup(parser, argv, "ex9_9_demo.py")  # not planning: at once
    assert capsys.readouterr().out == ctx.header + "\n"


def test_the_pool_is_announced_once_by_its_caller(tmp_path, capsys):
    """run_all says what it trains in a pool; train_in_pool itself says nothing (make report says it)."""
    jobs = [experiment.Job(toy_config(epochs=1), toy_splits(), seed, CPU) for seed in (0, 1)]
    experiment.train_in_pool(jobs, 1, cache_root=tmp_path, show_progress=False)
    assert capsys.readouterr().err == ""


def test_summary_line_prints_mean_and_std_to_the_same_decimals():
    summary = {"train_time_per_epoch_s": {"mean": 0.5}, "verdicts": ["good fit"]}
    accuracy = {"name": "a", "score_name": "accuracy", "num_weights": 10,
                "summary": {**summary, "test_accuracy": {"mean": 0.5825, "std": 0.09, "n": 2}}}
    dice = {"name": "d", "score_name": "dice", "num_weights": 10,
            "summary": {**summary, "test_dice": {"mean": 0.09343, "std": 0.055, "n": 2}}}
    assert results.summary_line(accuracy).startswith("a: test accuracy 58.25 ± 9.00 % over 2 seeds;")
    assert results.summary_line(dice).startswith("d: test dice 0.093 ± 0.055 over 2 seeds;")

