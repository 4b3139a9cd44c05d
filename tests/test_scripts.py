"""Each exercise script's --quick run (one per script, shared by the tests below; the run cache is the
session's, so later scripts reuse the runs they share with earlier ones, as they do for real): the
results file with every configuration's curves, test scores and hyperparameters, the figures as PDF and
PNG, the findings the report reads, and the facts that can be checked by hand."""
import importlib
import json
import re
import shutil
import types

import numpy as np
import pytest
import torch

from common import evaluation, text, train
from common.data import REPO_ROOT, DataError
from helpers import fake_ctx

# script -> the figures it writes (found by running each once), file names without .pdf / .png
FIGURES = {
    "ex1_1_fc": ["ex1_1_fc_curves"],
    "ex1_2_cnn": ["ex1_2_cnn_curves"],
    "ex1_3_pool_order": ["ex1_3_pool_order"],
    "ex1_4_adam": ["ex1_4_adam_curves"],
    "ex1_5_variants": ["ex1_5_variants", "ex1_5_best_test"],
    "ex2_1_segnet": ["ex2_1_segnet_curves", "ex2_1_segnet_cases"],
    "ex2_2_regularization": ["ex2_2_regularization"],
    "ex2_3_skip": ["ex2_3_skip_curves", "ex2_3_skip_boundaries"],
    "ex2_4_residual": ["ex2_4_residual"],
    "ex2_5_best": ["ex2_5_best_curves", "ex2_5_best_cases"],
}
# script -> the findings it records (the report quotes its "numbers" and "table", made from them)
FINDINGS = {
    "ex1_1_fc": {"step_timing", "training_batch_size", "numpy_vs_torch_accuracy"},
    "ex1_2_cnn": {"cnn_weights", "fc_weights", "fc_to_cnn_weight_ratio", "cnn_weights_per_layer"},
    "ex1_3_pool_order": {"timing", "timing_again", "pool_first_vs_after", "tanh_vs_relu", "saving_tanh_vs_relu",
                         "curve_differences"},
    "ex1_4_adam": {"adam_vs_sgd", "epochs_to_target"},
    "ex1_5_variants": {"versus_baseline", "chosen_on_validation", "chosen_label", "saved_seed", "best_model_test"},
    "ex2_1_segnet": {"worst", "median", "per_image_test_dice"},
    "ex2_2_regularization": {"versus_baseline"},
    "ex2_3_skip": {"metrics", "skip_vs_plain", "shown_cases"},
    "ex2_4_residual": {"dice_threshold", "timing", "groups", "versus_ex2_1", "versus_depth1_no_bn",
                       "score_std_at_init_no_bn", "figure_groups"},
    "ex2_5_best": {"test_dice", "tta_vs_single_pass", "validation_dice_when_chosen", "best_case", "worst_case",
                   "red_share", "per_image_test_dice"},
}
PART1 = [s for s in FIGURES if s.startswith("ex1")]
PART2 = [s for s in FIGURES if s.startswith("ex2")]
# Ex 1.1 times training steps at every batch size of the report (64, 256, 1024); with --quick in one
# repeat, here in three, so that the paired comparison has repeats to pair (still a fraction of a second).
QUICK_TIMING = {"ex1_1_fc": {"QUICK_TIMING": {"num_batches": 2, "warmup": 1, "repeats": 3}}}


class QuickRuns:
    """Each script run once with --quick (one seed), on first use; later scripts find the
    runs they share with earlier ones (the Ex 1.2 and Ex 2.1 networks) in the session's run cache."""

    def __init__(self, data_dir, root):
        self.data_dir, self.root, self.done = data_dir, root, {}

    def args(self, script, out, *extra):
        return ["--quick", "--device", "cpu", "--data-dir", str(self.data_dir), "--out-dir", str(out), "--no-progress",
                "--num-seeds", "1", *extra]

    def __call__(self, script: str):
        if script not in self.done:
            first = "ex1_2_cnn" if script.startswith("ex1") else "ex2_1_segnet"
            if script != first and first not in self.done:
                self(first)  # the shared baseline first, as `make report` runs them
            module = importlib.import_module(script)
            out = self.root / script
            with pytest.MonkeyPatch.context() as patch:
                for name, value in QUICK_TIMING.get(script, {}).items():
                    patch.setattr(module, name, value)
                returned = module.main(self.args(script, out))
            record = json.loads((out / "results" / f"{script}.json").read_text())
            self.done[script] = (out, record, returned)
        return self.done[script]


@pytest.fixture(scope="module")
def part1(mnist_dir, tmp_path_factory):
    return QuickRuns(mnist_dir, tmp_path_factory.mktemp("part1"))


@pytest.fixture(scope="module")
def part2(warwick_dir, tmp_path_factory):
    return QuickRuns(warwick_dir, tmp_path_factory.mktemp("part2"))


@pytest.fixture
def quick(request):
    """The runner of the part a parametrized script belongs to."""
    return lambda script: request.getfixturevalue("part1" if script.startswith("ex1") else "part2")(script)


@pytest.mark.parametrize("script", list(FIGURES))
def test_quick_run_writes_results_and_figures(script, quick):
    out, record, _ = quick(script)
    assert record["exercise"] == script and record["quick"] is True
    assert record["command"].startswith(f"python {script}.py --quick") and record["seeds"] == [0]
    assert record["environment"]["torch"] == torch.__version__ and record["data"]["sizes"]["train"] > 0
    assert record["data"]["dataset"] == ("MNIST" if script in PART1 else "WARWICK")
    assert record["configs"]
    for config in record["configs"]:
        score = config["score_name"]
        assert score == ("accuracy" if script in PART1 else "dice") and config["num_weights"] > 0
        assert config["summary"][f"test_{score}"]["n"] == len(config["runs"]) == 1
        assert len(config["summary"]["verdicts"]) == 1
        for run in config["runs"]:
            history = run["history"]
            assert history["iter_loss"] and len(history["epochs"]) == 1 and history["epochs"][0]["train_time_s"] > 0
            assert 0 <= run["test"][score] <= 1 and run["test"]["n"] == record["data"]["sizes"]["test"]
            hyper = run["hyperparameters"]
            assert hyper["optimizer"]["defaults"] and hyper["layers"] and hyper["num_epochs"] == 1
            assert hyper["num_weights"] == config["num_weights"] and run["cache_key"]
            # each run's configuration, recorded in full: it names the run's cache entry
            assert run["config"]["epochs"] == 1 and run["config"]["score"] == score
            assert hyper["model"] == run["config"]["model"]["class"]
            assert hyper["model_options"] == train.options(run["config"]["model"])
            assert hyper["augmentation"] == run["config"]["augment"]
            assert run["cache_key"] == train.cache_key(run["config"], run["seed"], types.SimpleNamespace(
                info=record["data"]), torch.device(run["device"]))
    # what the report quotes, as text (common.text), by names the script chose; counts as whole numbers; a list
    # of (subject, predicate) pairs for a sentence the report groups (text.grouped)
    assert record["numbers"] and all(isinstance(v, (str, int)) or all(len(pair) == 2 and all(isinstance(x, str) for x in pair)
                                                                       for pair in v) for v in record["numbers"].values())
    # every phrase marked as a table row's outcome (text.claim) names a row of the script's table: the report
    # resolves the mark by that row's reruns
    phrases = [q for v in record["numbers"].values() for q in ([v] if isinstance(v, (str, int)) else [p for _, p in v])]
    marked = {m.group(1) for q in phrases for m in text.CLAIM.finditer(str(q))}
    assert marked <= {row["row"] for row in record.get("table", [])}
    assert bool(marked) == (script in ("ex1_4_adam", "ex1_5_variants", "ex2_2_regularization", "ex2_3_skip", "ex2_4_residual"))
    written = sorted(p.name for p in (out / "figures").iterdir())
    assert written == sorted(f"{name}.{ext}" for name in FIGURES[script] for ext in ("pdf", "png"))
    for path in (out / "figures").iterdir():
        assert path.stat().st_size > 1000, path


@pytest.mark.parametrize("script", list(FIGURES))
def test_findings_hold_what_the_report_reads(script, quick):
    _, record, _ = quick(script)
    assert set(record["findings"]) == FINDINGS[script]


@pytest.mark.parametrize("script", list(FIGURES))
def test_figures_only_redraws_the_same_figures_from_the_results_file_alone(script, quick, tmp_path):
    """make figures: each script's --figures-only draws from <out>/results (the .json, and the .npz of
    the images it shows) without data or training, the very figures its run drew."""
    out, _, _ = quick(script)
    shutil.copytree(out / "results", tmp_path / "results")
    module = importlib.import_module(script)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(train, "run", lambda *a, **k: pytest.fail("--figures-only trained"))
        module.main(["--figures-only", "--device", "cpu", "--out-dir", str(tmp_path), "--data-dir",
                     str(tmp_path / "no_data")])
    drawn = sorted(p.name for p in (tmp_path / "figures").iterdir())
    assert drawn == sorted(p.name for p in (out / "figures").iterdir())
    for name in drawn:
        if name.endswith(".png"):
            assert (tmp_path / "figures" / name).read_bytes() == (out / "figures" / name).read_bytes(), name


def test_figures_only_without_a_results_file_names_the_script_that_makes_it(tmp_path):
    import ex2_3_skip

    with pytest.raises(DataError, match=r"ex2_3_skip.json: no such results file; python ex2_3_skip.py makes it"):
        ex2_3_skip.main(["--figures-only", "--device", "cpu", "--out-dir", str(tmp_path)])


# --- Part 1 --------------------------------------------------------------------------------------

def test_ex1_2_counts_the_weights_of_both_networks(part1):
    _, record, _ = part1("ex1_2_cnn")
    findings = record["findings"]
    # conv 8*9+8 = 80, conv 16*72+16 = 1,168, conv 32*144+32 = 4,640, fc 32*7*7*10+10 = 15,690
    assert findings["cnn_weights"] == 21_578 and findings["fc_weights"] == 109_386  # 784-128-64-10
    assert findings["fc_to_cnn_weight_ratio"] == pytest.approx(109_386 / 21_578)
    assert findings["cnn_weights_per_layer"] == {"block1.0.weight": 72, "block1.0.bias": 8, "block2.0.weight": 1152,
                                                 "block2.0.bias": 16, "block3.0.weight": 4608, "block3.0.bias": 32,
                                                 "classifier.weight": 15_680, "classifier.bias": 10}
    hyper = record["configs"][0]["runs"][0]["hyperparameters"]
    assert hyper["optimizer"]["class"] == "SGD" and hyper["optimizer"]["defaults"]["momentum"] == 0
    assert hyper["loss"]["class"] == "CrossEntropyLoss"


def test_ex1_1_numpy_and_torch_start_alike_and_are_both_timed(part1):
    _, record, _ = part1("ex1_1_fc")
    numpy_run, torch_run = (c["runs"][0] for c in record["configs"][:2])
    assert numpy_run["hyperparameters"]["backend"] == "numpy" and torch_run["hyperparameters"]["backend"] == "torch"
    # identical initial weights and batches: the first losses agree to float32 precision
    assert numpy_run["history"]["iter_loss"][0] == pytest.approx(torch_run["history"]["iter_loss"][0], rel=1e-4)
    findings = record["findings"]
    assert set(findings["step_timing"]) == {"64", "256", "1024"}  # the training batch size and larger ones
    for timed in findings["step_timing"].values():
        assert len(timed) == 2  # NumPy and PyTorch on the CPU, timed in the same repeats
        references = [name for name, t in timed.items() if "versus" not in t]
        [other] = [t for t in timed.values() if "versus" in t]
        assert len(references) == 1 and other["versus"]["reference"] == references[0]
        assert all(len(t["per_batch_repeats_s"]) == 3 for t in timed.values())
    comparison = findings["numpy_vs_torch_accuracy"]
    # one seed: no interval over seeds, so no direction, however its pair's test images go (tested all the same)
    assert comparison["pairs"] == 1 and comparison["outcome"] == "unresolved"
    assert comparison["images"]["seeds"] == 1 and comparison["images"]["images"] == record["data"]["sizes"]["test"]
    numbers = record["numbers"]
    assert numbers["accuracy_outcome"] == text.outcome(comparison) == "not distinguishable"
    assert numbers["accuracy_relation"] == "not distinguishable from"
    assert numbers["accuracy_difference"] == text.row("", comparison)["difference"]
    for batch, timed in findings["step_timing"].items():
        assert numbers[f"numpy_speed_{batch}"] == text.speed(timed["NumPy"]["versus"])
        assert numbers[f"torch_ms_{batch}"] == text.ms(timed["PyTorch (CPU)"]["per_batch_s"])


def test_ex1_4_reuses_the_ex1_2_run_and_trains_adam_with_its_defaults(part1):
    key = part1("ex1_2_cnn")[1]["configs"][0]["runs"][0]["cache_key"]
    ex14 = {c["name"]: c for c in part1("ex1_4_adam")[1]["configs"]}
    assert ex14["cnn_sgd"]["runs"][0]["cache_key"] == key
    adam = ex14["cnn_adam"]["runs"][0]["hyperparameters"]["optimizer"]
    assert adam["class"] == "Adam" and list(adam["param_groups"][0]["betas"]) == [0.9, 0.999]
    assert adam["param_groups"][0]["lr"] == 1e-3 and adam["param_groups"][0]["eps"] == 1e-8
    record = part1("ex1_4_adam")[1]
    # the target: the lowest final validation accuracy of any SGD seed, so every SGD run reaches it
    target = min(r["history"]["epochs"][-1]["val_score"] for r in ex14["cnn_sgd"]["runs"])
    sooner = record["findings"]["epochs_to_target"]  # seed k against seed k
    expected = evaluation.paired_epochs_to_threshold(ex14["cnn_sgd"], ex14["cnn_adam"], target)
    lists = ("per_pair", "a_epochs", "b_epochs")
    assert {k: sooner[k] for k in expected if k not in lists} == pytest.approx(
        {k: v for k, v in expected.items() if k not in lists}, nan_ok=True)
    assert (sooner["a_epochs"], sooner["b_epochs"]) == (expected["a_epochs"], expected["b_epochs"])
    assert sooner["threshold"] == target and sooner["pairs"] == 1 and sooner["a_epochs"] == [1]
    assert [row["row"] for row in record["table"]] == ["test accuracy", "epochs to reach the target"]
    assert record["table"][1] == text.epochs_row("epochs to reach the target", sooner)


def test_ex1_3_reuses_the_ex1_2_run_and_ex1_5_the_ex1_3_tanh_run(part1):
    key = part1("ex1_2_cnn")[1]["configs"][0]["runs"][0]["cache_key"]
    ex13 = {c["name"]: c["runs"][0]["cache_key"] for c in part1("ex1_3_pool_order")[1]["configs"]}
    ex15 = {c["name"]: c["runs"][0]["cache_key"] for c in part1("ex1_5_variants")[1]["configs"]}
    assert (ex13["relu_pool_after"], ex15["tanh"]) == (key, ex13["tanh_pool_after"])


def test_ex1_3_pool_orders_train_identically_and_are_timed_in_pairs(part1):
    from common import timing

    configs = {c["name"] for c in part1("ex1_3_pool_order")[1]["configs"]}
    findings = part1("ex1_3_pool_order")[1]["findings"]
    for act in ("relu", "tanh"):  # the same function and gradients: the same curves, to float precision
        assert findings["curve_differences"][act]["iter_loss"] < 1e-4
        assert findings["curve_differences"][act]["test_score"] < 1e-3
        versus = findings["pool_first_vs_after"][act]
        assert versus["reference"] == f"{act}_pool_after" and versus["repeats"] == 1
        assert versus == timing.versus(findings["timing"], f"{act}_pool_after", f"{act}_pool_first")
    assert set(findings["timing"]) == configs
    import ex1_3_pool_order  # how alike the two orders train, in words
    assert ex1_3_pool_order.same_curves(0.0) == "identically, run for run"
    assert ex1_3_pool_order.same_curves(0.0081) == "almost alike"  # the number: in the table
    assert set(findings["tanh_vs_relu"]) == {"pool_after", "pool_first"}
    for order, versus in findings["tanh_vs_relu"].items():
        assert versus == timing.versus(findings["timing"], f"relu_{order}", f"tanh_{order}")
    # pooling first saves more with which activation? Each timing session compared on its own
    sessions = [findings["timing"], *findings["timing_again"]]
    assert len(sessions) == ex1_3_pool_order.SESSIONS == len(findings["saving_tanh_vs_relu"])
    for saving, timed in zip(findings["saving_tanh_vs_relu"], sessions):
        assert saving == timing.compare_savings(timed, ("relu_pool_after", "relu_pool_first"),
                                                ("tanh_pool_after", "tanh_pool_first"), ("ReLU", "tanh"))
        assert set(saving["saving"]) == {"ReLU", "tanh"} and saving["larger"] in ("ReLU", "tanh")
        assert saving["repeats"] == 1 and saving["agreeing_repeats"] == 1 and saving["p"] == 1.0  # no evidence
    # a direction only where every session's sign test gives it
    tanh, none = {"larger": "tanh", "p": 0.001}, {"larger": "tanh", "p": 0.4}
    assert ex1_3_pool_order.saving_text([tanh, tanh]) == ex1_3_pool_order.SAVING["tanh"]
    assert ex1_3_pool_order.saving_text([tanh, none, tanh]) == \
        "only 2 of the 3 timing sessions found it larger with tanh, so we claim neither"
    assert ex1_3_pool_order.saving_text([tanh, {"larger": "ReLU", "p": 0.01}]) == ex1_3_pool_order.SAVING["disagree"]
    assert ex1_3_pool_order.saving_text([none, {"larger": "ReLU", "p": 0.3}]) == ex1_3_pool_order.SAVING["neither"]
    assert ex1_3_pool_order.tanh_larger({"larger": "ReLU", "agreeing_repeats": 40, "repeats": 60}) == 20
    assert "larger_saving" not in findings


def test_ex1_5_chooses_on_validation_and_saves_the_chosen_weights(part1, mnist_dir):
    import ex1_5_variants
    from common import evaluation, mnist, models, results

    out, record, _ = part1("ex1_5_variants")
    configs = {c["name"]: c for c in record["configs"]}
    assert list(configs) == ["baseline", "batch_norm", "augmentation", "tanh", "best"]  # three variations, combined
    assert configs["baseline"]["runs"][0]["cache_key"] == part1("ex1_2_cnn")[1]["configs"][0]["runs"][0]["cache_key"]
    findings = record["findings"]
    chosen = findings["chosen_on_validation"]
    assert configs[chosen]["summary"]["final_val_accuracy"]["mean"] == max(
        c["summary"]["final_val_accuracy"]["mean"] for c in configs.values())
    assert findings["chosen_label"] == configs[chosen]["label"]
    assert set(findings["versus_baseline"]) == set(configs) - {"baseline"}
    for versus in findings["versus_baseline"].values():  # paired seed by seed, each pair also image by image
        assert versus["pairs"] == 1 and versus["images"]["images"] == record["data"]["sizes"]["test"]
        assert versus["images"]["seeds"] == 1 and versus["outcome"] == "unresolved"  # one seed: no interval
    assert findings["best_model_test"]["top_confusions_text"] == ", ".join(
        f"{c['true']}→{c['predicted']} ({c['count']})" for c in findings["best_model_test"]["top_confusions"])
    best = findings["best_model_test"]
    shown = best["misclassified"]  # the most confident errors, as many as the figure shows
    assert "wrong" not in best and len(shown) == min(best["errors"], ex1_5_variants.MISCLASSIFIED_SHOWN)
    assert [w["probability"] for w in shown] == sorted((w["probability"] for w in shown), reverse=True)
    # the saved weights are the chosen seed's: they make the very errors recorded, and the images saved beside
    weights = out / "models" / "ex1_5_best.pt"
    assert weights.stat().st_size < 1_000_000
    saved = results.load_model(weights, models.MnistCNN)
    assert (saved["name"], saved["seed"]) == (findings["chosen_label"], findings["saved_seed"])
    splits = mnist.load_splits(mnist_dir, torch.device("cpu"), seed=0, quick=True)
    with torch.no_grad():
        logits = saved["model"].eval()(splits.test[0])
    errors = evaluation.classification_errors(logits, splits.test[1])
    assert errors["confusion_matrix"] == best["confusion_matrix"] and errors["errors"] == best["errors"]
    recomputed = errors["wrong"][:len(shown)]
    assert [(w["index"], w["true"], w["predicted"]) for w in recomputed] == [(w["index"], w["true"], w["predicted"])
                                                                            for w in shown]
    assert [w["probability"] for w in recomputed] == pytest.approx([w["probability"] for w in shown], rel=1e-5)
    _, arrays = results.read(out, "ex1_5_variants")
    np.testing.assert_array_equal(arrays["misclassified"],
                                  splits.test[0][[w["index"] for w in shown], 0].numpy().astype(np.float16))


def test_the_same_seed_gives_the_same_numbers_for_the_cnn(part1, tmp_path):
    """Retrained (--no-cache) in this process: the cached run of the fixture, number for number."""
    import ex1_2_cnn

    cached = part1("ex1_2_cnn")[1]["configs"][0]["runs"][0]
    [again] = ex1_2_cnn.main(part1.args("ex1_2_cnn", tmp_path, "--no-cache")).records
    assert again["history"]["iter_loss"] == cached["history"]["iter_loss"]
    assert again["test"] == cached["test"] and again["cache_key"] == cached["cache_key"]


# --- Part 2 --------------------------------------------------------------------------------------

def test_ex2_1_describes_its_worst_and_median_test_images(part2, warwick_dir):
    from common import warwick

    _, record, _ = part2("ex2_1_segnet")
    findings = record["findings"]
    dice = np.array(findings["per_image_test_dice"])  # (seeds, images)
    assert dice.shape == (1, record["data"]["sizes"]["test"])
    assert findings["worst"]["dice_mean"] == pytest.approx(dice.mean(0).min(), abs=1e-5)
    assert findings["median"]["dice_mean"] == pytest.approx(np.sort(dice.mean(0))[(dice.shape[1] - 1) // 2], abs=1e-5)
    truth = warwick.load_splits(warwick_dir, torch.device("cpu"), seed=0, quick=True).test[1]
    for what in ("worst", "median"):
        assert record["numbers"][f"{what}_dice"] == text.score("dice", findings[what]["dice_mean"])
        assert findings[what]["stats"]["gland_fraction"] == pytest.approx(
            float((truth[findings[what]["index"]] == 1).float().mean()), abs=1e-6)
    assert record["numbers"]["worst_glands"] == f"{100 * findings['worst']['stats']['gland_fraction']:.0f}"  # % in the table's header
    # the network tabulated in tests/test_models.py: 79,690 weights + 232 of batch norm
    assert record["configs"][0]["num_weights"] == 79_922


def test_ex2_2_changes_one_thing_at_a_time_against_the_ex2_1_run(part2):
    _, record, _ = part2("ex2_2_regularization")
    configs = {c["name"]: c for c in record["configs"]}
    assert configs["baseline"]["runs"][0]["cache_key"] == \
        part2("ex2_1_segnet")[1]["configs"][0]["runs"][0]["cache_key"]
    assert list(configs) == ["baseline", "no_augmentation", "no_batch_norm", "weight_decay"]
    assert set(record["findings"]["versus_baseline"]) == set(configs) - {"baseline"}
    for comparison in record["findings"]["versus_baseline"].values():
        assert set(comparison) == {"test", "validation"} and "images" not in comparison["validation"]
        assert comparison["test"]["images"]["images"] == record["data"]["sizes"]["test"]
    decay = configs["weight_decay"]["runs"][0]["hyperparameters"]["optimizer"]["param_groups"][0]["weight_decay"]
    assert decay > 0 and configs["baseline"]["runs"][0]["hyperparameters"]["optimizer"]["param_groups"][0][
        "weight_decay"] == 0
    assert configs["no_augmentation"]["runs"][0]["hyperparameters"]["augmentation"] is None
    # without batch norm: 7 convolutions and 3 transposed convolutions get their biases back, lose 2 per channel
    assert configs["baseline"]["num_weights"] - configs["no_batch_norm"]["num_weights"] == 232
    # without batch norm: its own initialisation and learning rate (ex2_2_regularization.NO_BN_*); --lr is the rest's
    ex2_2 = importlib.import_module("ex2_2_regularization")
    nobn = configs["no_batch_norm"]["runs"][0]["config"]
    assert (nobn["model"]["init"], nobn["optimizer"]["lr"]) == (ex2_2.NO_BN_INIT, ex2_2.NO_BN_LR)
    assert configs["baseline"]["runs"][0]["config"]["optimizer"]["lr"] == record["args"]["lr"] != ex2_2.NO_BN_LR


def test_ex2_3_compares_the_ex2_1_network_with_skips(part2):
    _, record, _ = part2("ex2_3_skip")
    names = [c["name"] for c in record["configs"]]
    assert names[0] == "segnet" and len(names) == 2
    # concat doubles the decoder convolutions' input: + 9,216 + 2,304 + 576 (see tests/test_models.py)
    assert record["configs"][1]["num_weights"] - record["configs"][0]["num_weights"] == 12_096
    findings = record["findings"]
    for summary in findings["metrics"].values():
        assert set(summary) == {"dice", "boundary_f1_1px", "boundary_f1_2px", "hd95"}
        assert summary["dice"]["n"] == 1 and 0 <= summary["boundary_f1_2px"]["mean"] <= 1
    assert set(findings["skip_vs_plain"]) == {"dice", "boundary_f1_1px", "boundary_f1_2px", "hd95"}
    assert findings["skip_vs_plain"]["hd95"]["lower_is_better"]
    assert set(findings["shown_cases"]) == {"best for skips", "worst for skips"}
    for case in findings["shown_cases"].values():  # one seed: its F1 is the mean over the seeds
        assert case["boundary_f1_2px_mean"] == pytest.approx(case["boundary_f1_2px"])


def test_ex2_4_pairs_plain_and_residual_blocks(part2):
    import ex2_4_residual
    from common import evaluation, metrics

    _, record, _ = part2("ex2_4_residual")
    configs = {c["name"]: c for c in record["configs"]}
    findings = record["findings"]
    assert findings["groups"]
    for group in findings["groups"].values():
        assert set(group) == {"residual_vs_plain", "time_residual_vs_plain", "reaches_threshold", "epochs_to_threshold",
                              "one_class_runs"}
        plain, residual = (configs[name] for name in group["reaches_threshold"])
        assert group["time_residual_vs_plain"]["reference"] == plain["name"]
        assert group["residual_vs_plain"]["images"]["images"] == record["data"]["sizes"]["test"]
        # the epoch each first reaches the threshold, seed k against seed k
        expected = evaluation.paired_epochs_to_threshold(plain, residual, findings["dice_threshold"])
        lists = ("per_pair", "a_epochs", "b_epochs")
        assert {k: group["epochs_to_threshold"][k] for k in expected if k not in lists} == pytest.approx(
            {k: v for k, v in expected.items() if k not in lists}, nan_ok=True)
        assert group["epochs_to_threshold"]["a_epochs"] == expected["a_epochs"]
        assert group["epochs_to_threshold"]["pairs"] == len(plain["runs"]) == len(residual["runs"])
        # runs stuck at one class, plain against residual, by Fisher's exact test
        counts = [c["summary"]["verdicts"].count("one class") for c in (plain, residual)]
        assert group["one_class_runs"] == metrics.compare_counts(*counts, len(plain["runs"]), len(residual["runs"]))
        options = [dict(c["runs"][0]["hyperparameters"]["model_options"]) for c in (plain, residual)]
        bn = options[0]["batch_norm"]
        assert (options[0].pop("residual"), options[1].pop("residual")) == (False, True)
        # without batch norm the residual blocks start as their shortcuts (ex2_4_residual.NO_BN_INIT)
        assert [o.pop("init") for o in options] == (
            [ex2_4_residual.SEGNET["init"]] * 2 if bn else [ex2_4_residual.NO_BN_INIT[k] for k in ("plain", "residual")])
        assert options[0] == options[1] and options[0]["block_depth"] >= 2  # otherwise identical, deeper blocks
        # only the 1x1 projections where a block changes its width differ: 2->8, 8->16, 16->32, 32->64;
        # with biases 24 + 144 + 544 + 2,112; with batch norm no biases but 2 per channel
        # without batch norm, the learning rate chosen for each kind (ex2_4_residual.NO_BN_LR)
        assert [c["runs"][0]["config"]["optimizer"]["lr"] for c in (plain, residual)] == (
            [ex2_4_residual.LR] * 2 if bn else [ex2_4_residual.NO_BN_LR[k] for k in ("plain", "residual")])
        assert residual["num_weights"] - plain["num_weights"] == (32 + 160 + 576 + 2_176 if bn else 2_824)
        for reach in group["reaches_threshold"].values():
            assert reach["threshold"] == findings["dice_threshold"] and len(reach["per_seed"]) == 1
    versus = findings["versus_ex2_1"]  # the deep networks with batch norm against the Ex 2.1 network's runs
    assert set(versus) == {"segnet_depth3_plain", "segnet_depth3_residual"}
    assert all(v["images"]["images"] == record["data"]["sizes"]["test"] for v in versus.values())
    # without batch norm against Ex 2.2's network without it: its runs (the same cache keys), seed for seed
    versus = findings["versus_depth1_no_bn"]
    assert set(versus) == {"segnet_depth3_plain_nobn_he", "segnet_depth3_residual_nobn_he_zero"}
    depth1 = configs["no_batch_norm"]
    ex2_2 = {c["name"]: c for c in part2("ex2_2_regularization")[1]["configs"]}["no_batch_norm"]
    assert [r["cache_key"] for r in depth1["runs"]][:len(ex2_2["runs"])] == [r["cache_key"] for r in ex2_2["runs"]]
    assert len(depth1["runs"]) == len(configs["segnet_depth3_plain_nobn_he"]["runs"])
    assert all(v["pairs"] == len(depth1["runs"]) for v in versus.values())
    from common.models import INIT_SCHEMES

    inits = {c["runs"][0]["hyperparameters"]["model_options"].get("init"): c["runs"][0]["hyperparameters"]["init"]
             for c in record["configs"]}
    assert all(INIT_SCHEMES[name] == recorded for name, recorded in inits.items())  # what it used, recorded


def test_ex2_5_refits_on_every_training_image_and_predicts_with_tta(part2, warwick_dir):
    import ex2_5_best
    from common import evaluation, metrics, warwick

    _, record, returned = part2("ex2_5_best")
    refit, final = record["configs"]
    assert (refit["name"], refit["label"], final["name"]) == ("best_refit", "best model, single pass", "best")
    assert final["runs"][0]["history"] == refit["runs"][0]["history"]  # the final model: the refit's runs
    assert "final_val_dice" not in refit["summary"] and refit["summary"]["verdicts"] == ["no hold-out"]
    assert record["data"]["holdout"] == "none" and not record["data"]["validation_held_out"]
    assert record["data"]["sizes"]["train"] == warwick.QUICK_SUBSET["train"]
    hyper = refit["runs"][0]["hyperparameters"]
    assert hyper["scheduler"]["class"] == "OneCycleLR" and hyper["model_options"]["channels"] == list(
        ex2_5_best.UNET["channels"])
    config = refit["runs"][0]["config"]  # ex2_5_best.py's configuration, one epoch (--quick)
    assert config == json.loads(json.dumps({
        "model": ex2_5_best.UNET, "loss": ex2_5_best.LOSS, "optimizer": {"class": "Adam", "lr": ex2_5_best.LR},
        "schedule": {"class": "OneCycleLR"}, "augment": ex2_5_best.DIHEDRAL, "epochs": 1,
        "batch_size": ex2_5_best.BATCH_SIZE, "score": "dice"}))
    assert final["runs"][0]["test"]["evaluation"] == "TTA" and final["label"] == "best model, with TTA"
    # the per-image test Dice recomputed from the cached refit run, predicting as ex2_5_best.py says
    splits = warwick.load_splits(warwick_dir, torch.device("cpu"), seed=0, quick=True, holdout=warwick.NO_HOLDOUT)
    with pytest.MonkeyPatch.context() as patch:  # loaded from the cache, never trained again
        patch.setattr(train, "fit", lambda *a, **k: pytest.fail("the refit run was not in the cache"))
        runs = train.run("best_refit", config, splits, fake_ctx())  # the configuration as the results file holds it
    logits = evaluation.tta_logits(runs, splits.test[0])
    dice = metrics.dice_coefficient(evaluation.gland_masks(logits[0]), splits.test[1] == 1).tolist()
    assert record["findings"]["per_image_test_dice"][0] == pytest.approx(dice, abs=1e-5)
    assert final["summary"]["test_dice"]["mean"] == pytest.approx(np.mean(dice), abs=1e-5)
    best, worst = record["findings"]["best_case"], record["findings"]["worst_case"]
    assert best["dice_mean"] == pytest.approx(max(dice), abs=1e-5) and worst["dice_mean"] == pytest.approx(min(dice),
                                                                                                          abs=1e-5)
    assert set(record["findings"]["validation_dice_when_chosen"]) == {"random", "reddest"}
    test_dice = record["findings"]["test_dice"]  # mean and 95 % interval over the seeds: one seed, no interval
    assert test_dice["n"] == 1 and test_dice["mean"] == pytest.approx(np.mean(dice), abs=1e-5)
    assert np.isnan(test_dice["ci_low"]) and np.isnan(test_dice["ci_high"])
    single = evaluation.per_image(runs, splits.test[1])["dice"][0]  # the refit's own, single-pass prediction
    tta = record["findings"]["tta_vs_single_pass"]
    assert tta["difference"] == pytest.approx(final["summary"]["test_dice"]["mean"] - refit["summary"]["test_dice"]["mean"],
                                              abs=1e-6)
    [per_seed] = tta["images"]["per_seed"]  # one seed: its pair over the test images
    assert per_seed == pytest.approx(metrics.wilcoxon_images(single, dice), abs=1e-5)
    # where the worst test image lies against the training images' red-stain share
    red = record["findings"]["red_share"]
    assert red == evaluation.red_share_summary(splits, worst["index"])
    assert red["case"]["index"] == worst["index"] and red["case"]["training_images"] == record["data"]["sizes"]["train"]



# --- the report reads what the scripts write -------------------------------------------------------

def test_every_number_the_report_uses_is_made_by_a_script(part1, part2, tmp_path):
    """Every \\R{key} of report/main.tex and report/sections/*.tex is a macro that the quick runs' results
    define, and every comparison table the report inputs (\\comparisons{ex...}) is generated, as `make report`
    makes them."""
    from common import report

    root = tmp_path / "report"
    for script in FIGURES:
        out, _, _ = part1(script) if script in PART1 else part2(script)
        (root / "results").mkdir(parents=True, exist_ok=True)
        (root / "results" / f"{script}.json").write_text((out / "results" / f"{script}.json").read_text())
    report.write_all(root)
    defined = set(re.findall(r"\\@namedef\{res@(.+?)\}", (root / "generated" / "results.tex").read_text()))
    used, tables = set(), set()
    for tex in [REPO_ROOT / "report" / "main.tex", *(REPO_ROOT / "report" / "sections").glob("*.tex")]:
        used |= set(re.findall(r"\\R\{([^}#.]+\.[^}]*)\}", tex.read_text()))
        tables |= set(re.findall(r"\\comparisons\{(ex\d_\d)\}", tex.read_text()))
    assert len(used) > 100 and len(tables) >= 5
    assert all((root / "generated" / f"{ex}_table.tex").read_text().count("\\\\") >= 1 for ex in tables)
    assert not sorted(used - defined), "\n".join(sorted(used - defined))


@pytest.mark.parametrize("base, variants, names", [
    ("ex1_2_cnn", ["ex1_3_pool_order", "ex1_4_adam", "ex1_5_variants"], ["CNN", "LOSS", "BATCH_SIZE", "EPOCHS", "SEEDS"]),
    ("ex2_1_segnet", ["ex2_2_regularization", "ex2_3_skip", "ex2_4_residual"],
     ["SEGNET", "DIHEDRAL", "LOSS", "LR", "BATCH_SIZE", "EPOCHS", "SEEDS"])])
def test_the_scripts_that_vary_a_baseline_restate_its_constants_exactly(base, variants, names):
    """Each variant script writes its baseline's configuration out again (a grader reads one script); the
    shared runs come from the cache only if the copies are identical."""
    reference = importlib.import_module(base)
    for name in variants:
        module = importlib.import_module(name)
        assert {n: getattr(module, n) for n in names} == {n: getattr(reference, n) for n in names}, name
        assert (module.SGD_LR if hasattr(module, "SGD_LR") else module.LR) == reference.LR, name
