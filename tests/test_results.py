"""common.results: the results file of an exercise, its one-line summaries, and saved weights that
load back into the same model or fail with one line naming the file."""
import json

import numpy as np
import pytest
import torch

from common import cli, metrics, models, results, train
from common.data import DataError
from helpers import epoch, fake_ctx, history, toy_config, toy_runs, toy_splits


@pytest.fixture
def ctx(tmp_path, run_cache):
    parser = cli.make_parser("test", epochs=1, batch_size=16, lr=0.1, num_seeds=2)
    return cli.setup(parser, ["--device", "cpu", "--out-dir", str(tmp_path / "out"), "--no-progress"], "ex9_9_demo.py")


@pytest.fixture
def trained(ctx):
    return train.run("toy", toy_config(), toy_splits(), ctx, "toy net")


def test_write_records_the_command_environment_data_configurations_and_findings(ctx, trained, capsys):
    extra = {**results.entry(trained), "name": "extra", "num_weights": 3}  # a configuration in its results-file form
    written = results.write(ctx, "ex9_9_demo", [trained, extra], toy_splits(),
                            {"ratio": np.float32(2.5), "per_image": np.array([1, 2]), 3: "three"},
                            numbers={"gain": "+0.31 points", "seeds": np.int64(2)})
    path = ctx.out_dir / "results" / "ex9_9_demo.json"
    record = json.loads(path.read_text())
    assert json.loads(json.dumps(written)) == record  # what it wrote, returned
    assert record["exercise"] == "ex9_9_demo" and record["command"] == (
        f"python ex9_9_demo.py --device cpu --out-dir {ctx.out_dir} --no-progress")
    assert record["seeds"] == [0, 1] and record["quick"] is False and record["environment"]["device"] == "cpu"
    assert record["data"] == {"fingerprint": "toy-240-0"} and record["args"]["out_dir"] == str(ctx.out_dir)
    assert [c["name"] for c in record["configs"]] == ["toy", "extra"]
    assert record["configs"][0]["label"] == "toy net" and len(record["configs"][0]["runs"]) == 2
    assert record["configs"][0]["runs"][0]["config"] == json.loads(json.dumps(toy_config()))  # each run's own
    assert record["findings"] == {"ratio": 2.5, "per_image": [1, 2], "3": "three"}  # NumPy values as plain JSON
    assert record["numbers"] == {"gain": "+0.31 points", "seeds": 2}  # what the report quotes, as the script wrote it
    assert record["configs"][0]["summary"]["verdict"] == metrics.configuration_verdict(
        record["configs"][0]["summary"]["verdicts"])
    out = capsys.readouterr().out
    assert out.count("\n") == 3 and out.startswith("toy: test accuracy") and f"results: {path}" in out
    assert "\nextra: test accuracy" in out
    other = results.write(ctx, "ex9_8_other", [trained], toy_splits())  # no numbers given
    assert other["numbers"] == {}
    assert other["configs"][0]["summary"]["verdict"] == "under-fitting" and other["table"] == []


def test_write_saves_the_arrays_of_a_figure_beside_the_record_and_read_gives_both_back(ctx, trained):
    arrays = {"case_image": np.arange(24, dtype=np.uint8).reshape(2, 2, 2, 3),
              "misclassified": np.full((1, 28, 28), 0.5, dtype=np.float16)}
    written = results.write(ctx, "ex9_9_demo", [trained], toy_splits(), {"ratio": 2.5}, arrays)
    assert (ctx.results_dir / "ex9_9_demo.npz").is_file()
    record, read_arrays = results.read(ctx.out_dir, "ex9_9_demo")
    assert record == json.loads(json.dumps(written)) and set(read_arrays) == set(arrays)
    for name, array in arrays.items():
        assert read_arrays[name].dtype == array.dtype and np.array_equal(read_arrays[name], array)
    results.write(ctx, "ex9_8_other", [trained], toy_splits())  # no arrays: no .npz, and read gives none
    assert not (ctx.results_dir / "ex9_8_other.npz").exists() and results.read(ctx.out_dir, "ex9_8_other")[1] == {}


def test_reading_a_missing_results_file_names_the_script_that_makes_it(tmp_path):
    with pytest.raises(DataError, match=r"ex1_2_cnn.json: no such results file; python ex1_2_cnn.py makes it$"):
        results.read(tmp_path, "ex1_2_cnn")


def test_plain_turns_numpy_into_python():
    value = results.plain({"a": np.int64(3), "b": (np.float64(0.5), [np.array([[1.0]])]), "c": "x"})
    assert value == {"a": 3, "b": [0.5, [[[1.0]]]], "c": "x"}
    assert type(value["a"]) is int and type(value["b"][0]) is float


def results_config(name: str, score: str, scores, verdict: str = "good fit (3 of 3)") -> dict:
    """A configuration in its results-file form, as summary_line reads it: the runs' test scores, the summary."""
    return {"name": name, "score_name": score, "num_weights": 21578, "runs": [{"test": {score: v}} for v in scores],
            "summary": {"train_time_per_epoch_s": {"mean": 3.214}, "verdict": verdict}}


def test_summary_line():
    # 0.9864, 0.9876, 0.9888: mean 0.9876, std 0.0012
    config = results_config("cnn", "accuracy", [0.9864, 0.9876, 0.9888], "good fit (2 of 3; over-fitting 1)")
    assert results.summary_line(config) == ("cnn: test accuracy 98.76 ± 0.12 % over 3 seeds; 21,578 weights; "
                                            "3.21 s/epoch; good fit (2 of 3; over-fitting 1)")
    dice = results_config("cnn", "dice", [0.80234, 0.81234, 0.82234])  # mean 0.81234, std 0.01
    assert results.summary_line(dice).startswith("cnn: test dice 0.812 ± 0.010 over 3 seeds")  # both to 3 decimals
    assert results.summary_line(dice).endswith("; good fit (3 of 3)")


def test_summary_and_entry_of_runs_by_hand():
    level = [epoch(k, train_loss=0.3, val_loss=0.3, val_score=0.965, train_eval_score=0.97) for k in (1, 2, 3, 4)]
    risen = [dict(e, val_loss=v) for e, v in zip(level, (0.4, 0.3, 0.32, 0.36))]  # 20 % above its minimum
    records = [{"seed": k, "history": history(h), "test": {"accuracy": acc}, "train_time_per_epoch_s": {"mean": t},
                "hyperparameters": {"num_weights": 7}} for k, (h, acc, t) in enumerate(((level, 0.96, 2.0),
                                                                                        (risen, 0.98, 4.0)))]
    runs = toy_runs(records, label="toy net")
    s = results.summary(runs)
    assert s["test_accuracy"]["mean"] == pytest.approx(0.97) and s["test_accuracy"]["n"] == 2
    assert s["final_val_accuracy"]["mean"] == pytest.approx(0.965) and s["train_time_per_epoch_s"]["mean"] == 3.0
    assert s["verdicts"] == ["good fit", "over-fitting"] and [d["verdict"] for d in s["verdict_details"]] == s["verdicts"]
    assert s["verdict"] == "good fit 1, over-fitting 1"  # metrics.configuration_verdict
    assert s["late_val_gain"] == pytest.approx(0.0)  # both validation curves level
    # the fit rule's thresholds (and margins), so that the report states the rule it applied
    assert s["verdict_thresholds"] == {**metrics.THRESHOLDS["accuracy"], "one_class": metrics.ONE_CLASS_SHARE,
                                       "diverged": metrics.DIVERGED_FACTOR}
    assert (s["verdict_thresholds"]["one_class"], s["verdict_thresholds"]["diverged"]) == (0.99, 2.0)
    assert "verdict_tolerances" not in s and "annealed" not in s["verdict_thresholds"]
    assert s["verdict_thresholds"]["gap"] == (0.01, 0.0025) and results.summary(
        toy_runs([{**r, "test": {"dice": 0.8}} for r in records], score="dice"))["verdict_thresholds"]["gap"] == (0.03, 0.0075)
    entry = results.entry(runs)
    assert entry == {"name": "toy", "label": "toy net", "score_name": "accuracy", "num_weights": 7, "runs": records,
                     "summary": s}
    json.dumps(entry)


def test_the_configurations_late_gain_is_the_mean_of_its_seeds_late_gains():
    """Validation 0.96, 0.96, 0.96, 0.97 and level at 0.96: each seed's late gain 0.01 and 0, their mean 0.005
    (the check of tools/plateau.py)."""
    curves = ((0.96, 0.96, 0.96, 0.97), (0.96,) * 4)
    records = [{"seed": k, "history": history([epoch(e, train_loss=0.3, val_loss=0.3, val_score=v, train_eval_score=v)
                                               for e, v in enumerate(curve, 1)]),
                "test": {"accuracy": 0.97}, "train_time_per_epoch_s": {"mean": 1.0}} for k, curve in enumerate(curves)]
    s = results.summary(toy_runs(records))
    assert s["late_val_gain"] == pytest.approx(0.005)
    assert [d["late_gain"] for d in s["verdict_details"]] == pytest.approx([0.01, 0.0])
    assert s["verdicts"] == ["not converged", "good fit"] and s["verdict"] == "not converged 1, good fit 1"
    # runs that trained on their validation images: no verdict from their curves, no convergence check
    refit = results.summary(toy_runs([{**r, "validation_held_out": False} for r in records]))
    assert "late_val_gain" not in refit and "final_val_accuracy" not in refit
    assert refit["verdicts"] == ["no hold-out"] * 2 and refit["verdict"] == "no hold-out"


# --- saved models ----------------------------------------------------------------------------

@pytest.fixture
def cnn_runs(run_cache):
    config = toy_config(model={"class": "MnistCNN", "channels": (2, 4, 4)}, epochs=1)
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(60, 1, 28, 28, generator=g), torch.randint(0, 10, (60,), generator=g)
    from common.data import Splits

    splits = Splits(train=(x[:40], y[:40]), val=(x[40:50], y[40:50]), test=(x[50:], y[50:]),
                    info={"fingerprint": "cnn", "normalisation": {"mean": 0.1, "std": 0.3}})
    runs = train.run("toy", config, splits, fake_ctx(seeds=(0, 1)))
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
    with pytest.raises(DataError, match="no seed, num_weights, test_accuracy, model_options, state_dict"):
        results.load_model(incomplete, models.MnistCNN)
    path = tmp_path / "cnn.pt"
    results.save_model(path, runs, 0, splits)
    with pytest.raises(DataError, match=f"^{path}: not a weights file written by this project \\(TypeError"):
        results.load_model(path, models.MLP)  # another model's weights


def test_summary_line_prints_mean_and_std_to_the_same_decimals():
    # 0.52, 0.64: mean 0.58, std 0.0849; 0.05, 0.13: mean 0.09, std 0.0566
    assert results.summary_line(results_config("a", "accuracy", [0.52, 0.64])).startswith(
        "a: test accuracy 58.00 ± 8.49 % over 2 seeds;")
    assert results.summary_line(results_config("d", "dice", [0.05, 0.13])).startswith("d: test dice 0.090 ± 0.057 over 2 seeds;")
    assert results.summary_line(results_config("d", "dice", [0.81234])).startswith("d: test dice 0.812 over 1 seeds;")
