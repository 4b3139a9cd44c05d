"""common.results: the results file of an exercise, its one-line summaries, and saved weights that
load back into the same model or fail with one line naming the file."""
import functools
import json

import numpy as np
import pytest
import torch

from common import cli, experiment, metrics, models, results
from common.data import DataError
from helpers import epoch, fake_ctx, history, toy_config, toy_splits


@pytest.fixture
def ctx(tmp_path):
    parser = cli.make_parser("test", epochs=1, batch_size=16, lr=0.1, num_seeds=2)
    return cli.setup(parser, ["--device", "cpu", "--out-dir", str(tmp_path / "out"), "--no-progress", "--workers", "1"],
                     "ex9_9_demo.py")


@pytest.fixture
def toy_runs(ctx):
    return experiment.run_all([toy_config(label="toy net")], toy_splits(), ctx)


def test_write_records_the_command_environment_data_configurations_and_findings(ctx, toy_runs, capsys):
    path = results.write(ctx, "ex9_9_demo", [toy_runs[0], {"name": "extra", "score_name": "accuracy", "num_weights": 3,
                                                          "summary": results.summary(toy_runs[0]), "runs": []}],
                         toy_splits(), {"ratio": np.float32(2.5), "per_image": np.array([1, 2]), 3: "three"})
    assert path == ctx.out_dir / "results" / "ex9_9_demo.json"
    record = json.loads(path.read_text())
    assert record["exercise"] == "ex9_9_demo" and record["command"] == (
        f"python ex9_9_demo.py --device cpu --out-dir {ctx.out_dir} --no-progress --workers 1")
    assert record["seeds"] == [0, 1] and record["quick"] is False and record["environment"]["device"] == "cpu"
    assert record["data"] == {"fingerprint": "toy-240-0"} and record["args"]["out_dir"] == str(ctx.out_dir)
    assert [c["name"] for c in record["configs"]] == ["toy", "extra"]
    assert record["configs"][0]["label"] == "toy net" and len(record["configs"][0]["runs"]) == 2
    assert record["findings"] == {"ratio": 2.5, "per_image": [1, 2], "3": "three"}  # NumPy values as plain JSON
    out = capsys.readouterr().out
    assert out.count("\n") == 3 and out.startswith("toy: test accuracy") and f"results: {path}" in out


def test_plain_turns_numpy_into_python():
    value = results.plain({"a": np.int64(3), "b": (np.float64(0.5), [np.array([[1.0]])]), "c": "x"})
    assert value == {"a": 3, "b": [0.5, [[[1.0]]]], "c": "x"}
    assert type(value["a"]) is int and type(value["b"][0]) is float


def test_summary_line():
    config = {"name": "cnn", "score_name": "accuracy", "num_weights": 21578, "summary": {
        "test_accuracy": {"mean": 0.98765, "std": 0.0012, "n": 3}, "train_time_per_epoch_s": {"mean": 3.214},
        "verdicts": ["good fit", "over-fitting", "good fit"]}}
    assert results.summary_line(config) == ("cnn: test accuracy 98.77 ± 0.12 % over 3 seeds; 21,578 weights; "
                                            "3.21 s/epoch; good fit ×2, over-fitting ×1")
    dice = {**config, "score_name": "dice", "summary": {**config["summary"], "test_dice": {"mean": 0.81234, "std": 0.01,
                                                                                           "n": 3}}}
    assert results.summary_line(dice).startswith("cnn: test dice 0.812 ± 0.010 over 3 seeds")  # both to 3 decimals


def test_summary_and_entry_of_runs_by_hand():
    level = [epoch(k, train_loss=0.3, val_loss=0.3, val_score=0.965, train_eval_score=0.97) for k in (1, 2, 3, 4)]
    risen = [dict(e, val_loss=v) for e, v in zip(level, (0.4, 0.3, 0.32, 0.36))]  # 20 % above its minimum
    records = [{"seed": k, "history": history(h), "test": {"accuracy": acc}, "train_time_per_epoch_s": {"mean": t},
                "hyperparameters": {"num_weights": 7}} for k, (h, acc, t) in enumerate(((level, 0.96, 2.0),
                                                                                        (risen, 0.98, 4.0)))]
    runs = experiment.Runs(toy_config(label="toy net"), records, [None, None])
    s = results.summary(runs)
    assert s["test_accuracy"]["mean"] == pytest.approx(0.97) and s["test_accuracy"]["n"] == 2
    assert s["final_val_accuracy"]["mean"] == pytest.approx(0.965) and s["train_time_per_epoch_s"]["mean"] == 3.0
    assert s["verdicts"] == ["good fit", "over-fitting"] and [d["verdict"] for d in s["verdict_details"]] == s["verdicts"]
    # the fit rule's margins, so that the report states the rule it applied
    assert s["verdict_tolerances"] == {**metrics.TOLERANCES["accuracy"], "one_class": metrics.ONE_CLASS_SHARE,
                                       "diverged": metrics.DIVERGED_FACTOR, "annealed": metrics.ANNEALED}
    assert (s["verdict_tolerances"]["one_class"], s["verdict_tolerances"]["diverged"],
            s["verdict_tolerances"]["annealed"]) == (0.99, 2.0, 0.1)
    assert s["verdict_tolerances"]["gap"] == 0.01 and results.summary(
        experiment.Runs(toy_config(score="dice"), [{**r, "test": {"dice": 0.8}} for r in records],
                        [None, None]))["verdict_tolerances"]["gap"] == 0.03
    entry = results.entry(runs)
    assert entry == {"name": "toy", "label": "toy net", "score_name": "accuracy", "num_weights": 7, "runs": records,
                     "summary": s}
    json.dumps(entry)


# --- saved models ----------------------------------------------------------------------------

@pytest.fixture
def cnn_runs(tmp_path):
    config = toy_config(model=functools.partial(models.MnistCNN, channels=(2, 4, 4)), epochs=1)
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(60, 1, 28, 28, generator=g), torch.randint(0, 10, (60,), generator=g)
    from common.data import Splits

    splits = Splits(train=(x[:40], y[:40]), val=(x[40:50], y[40:50]), test=(x[50:], y[50:]),
                    info={"fingerprint": "cnn", "normalisation": {"mean": 0.1, "std": 0.3}})
    [runs] = experiment.run_all([config], splits, fake_ctx(tmp_path / "cache", seeds=(0, 1)))
    return runs, splits


def test_a_saved_model_loads_into_the_same_network(cnn_runs, tmp_path):
    runs, splits = cnn_runs
    path = tmp_path / "models" / "best.pt"
    results.save_model(path, runs, 1, splits)
    saved = results.load_model(path, models.MnistCNN)
    assert saved["seed"] == 1 and saved["model_options"] == {"channels": (2, 4, 4)} and saved["name"] == "toy"
    assert saved["test_accuracy"] == runs.records[1]["test"]["accuracy"] and saved["num_weights"] == runs.num_weights
    assert saved["normalisation"] == {"mean": 0.1, "std": 0.3}
    model = saved["model"].eval()
    torch.testing.assert_close(model(splits.test[0]).detach(), runs.test_logits()[1])  # the very weights


def test_a_bad_weights_file_is_one_error_naming_the_file(cnn_runs, tmp_path):
    runs, splits = cnn_runs
    with pytest.raises(DataError, match=f"^{tmp_path / 'nope.pt'}: no such weights file$"):
        results.load_model(tmp_path / "nope.pt", models.MnistCNN)
    notes = tmp_path / "notes.md"
    notes.write_text("# not a weights file")
    with pytest.raises(DataError, match=f"^{notes}: not a weights file written by this project"):
        results.load_model(notes, models.MnistCNN)
    other = tmp_path / "tensor.pt"
    torch.save(torch.zeros(3), other)
    with pytest.raises(DataError, match="it holds a Tensor, not a dict"):
        results.load_model(other, models.MnistCNN)
    incomplete = tmp_path / "incomplete.pt"
    torch.save({"name": "x"}, incomplete)
    with pytest.raises(DataError, match="KeyError: .*no seed, num_weights, test_accuracy, model_options, state_dict"):
        results.load_model(incomplete, models.MnistCNN)
    path = tmp_path / "cnn.pt"
    results.save_model(path, runs, 0, splits)
    with pytest.raises(DataError, match=f"^{path}: not a weights file written by this project \\(TypeError"):
        results.load_model(path, models.MLP)  # another model's weights
