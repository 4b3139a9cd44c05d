"""Each exercise script's --quick run writes its results file and figures."""
import importlib
import json

import numpy as np
import pytest
import torch

from common.data import DataError

SCRIPTS = {
    "ex1_1_fc": ["ex1_1_fc_curves"],
    "ex1_2_cnn": ["ex1_2_cnn_curves"],
    "ex1_3_pool_order": ["ex1_3_pool_order_curves", "ex1_3_pool_order_timing"],
    "ex1_4_adam": ["ex1_4_adam_curves", "ex1_4_adam_curves_time"],
    "ex1_5_variants": ["ex1_5_variants_curves", "ex1_5_variants_val", "ex1_5_variants_test", "ex1_5_best_curves",
                       "ex1_5_best_confusion", "ex1_5_best_misclassified"],
}


@pytest.mark.parametrize("script", sorted(SCRIPTS))
def test_quick_run_writes_results_and_figures(script, mnist_dir, tmp_path):
    module = importlib.import_module(script)
    module.main(["--quick", "--device", "cpu", "--data-dir", str(mnist_dir), "--out-dir", str(tmp_path),
                 "--no-progress"])
    _check_results_and_figures(script, tmp_path)


def _check_results_and_figures(script, tmp_path):
    record = json.loads((tmp_path / "results" / f"{script}.json").read_text())
    assert record["quick"] is True and record["command"].startswith(f"python {script}.py --quick")
    assert record["environment"]["torch"] and record["data"]["sizes"]["train"] > 0
    for config in record["configs"]:
        for run in config["runs"]:
            assert run["history"]["iter_loss"] and run["history"]["epochs"][0]["train_time_s"] > 0
            assert 0 <= run["test"]["accuracy"] <= 1
            assert run["hyperparameters"]["optimizer"]["defaults"]
            assert run["verdict"]["verdict"] and run["verdict"]["rule"]
    for figure in SCRIPTS[script]:
        for ext in ("pdf", "png"):
            assert (tmp_path / "figures" / f"{figure}.{ext}").stat().st_size > 1000


def test_ex1_2_reports_the_weight_count_of_both_networks(mnist_dir, tmp_path, capsys):
    import ex1_2_cnn

    ex1_2_cnn.main(["--quick", "--device", "cpu", "--data-dir", str(mnist_dir), "--out-dir", str(tmp_path),
                    "--no-progress", "--num-seeds", "1"])
    findings = json.loads((tmp_path / "results" / "ex1_2_cnn.json").read_text())["findings"]
    assert findings["cnn_weights"] == 21_578 and findings["fc_weights"] == 109_386
    assert "weights: CNN 21,578, fully connected (Ex 1.1) 109,386: the fully connected net has 5.1x as many" in \
        capsys.readouterr().out


def test_ex1_1_numpy_and_torch_start_alike_and_are_both_timed(mnist_dir, tmp_path, monkeypatch):
    import ex1_1_fc
    from threadpoolctl import threadpool_info

    from common.numpy_mlp import NumpyLearner

    limited = bool(ex1_1_fc.blas_thread_counts())  # False where threadpoolctl sees no BLAS (Accelerate)
    seen_blas_threads = set()  # in every NumPy training step, training runs and timing alike
    train_step = NumpyLearner.train_step

    def spy(self, inputs, targets):
        if len(seen_blas_threads) < 5:
            # every BLAS library loaded (SciPy may bring its own) should be limited
            seen_blas_threads.add(tuple(i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"))
        return train_step(self, inputs, targets)

    monkeypatch.setattr(NumpyLearner, "train_step", spy)
    configs = ex1_1_fc.main(["--quick", "--device", "cpu", "--data-dir", str(mnist_dir), "--out-dir", str(tmp_path),
                             "--no-progress", "--num-seeds", "1"])
    numpy_run, torch_run = (c["runs"][0] for c in configs[:2])
    # identical initial weights and batches: the first losses agree to float32 precision
    assert numpy_run["history"]["iter_loss"][0] == pytest.approx(torch_run["history"]["iter_loss"][0], rel=1e-4)
    findings = json.loads((tmp_path / "results" / "ex1_1_fc.json").read_text())["findings"]
    assert findings["numpy_over_torch_time_per_epoch"]["fc_torch_cpu"] > 0
    # the controlled timing: both timed in the same repeats, at the training and the larger batch sizes
    steps, per_step = findings["train_step_timing"], findings["per_step"]["fc_torch_cpu"]
    assert set(steps) == {"fc_numpy", "fc_torch_cpu"}
    assert len(steps["fc_numpy"]["per_batch_repeats_s"]) == per_step["paired"]["repeats"] == ex1_1_fc.TIMING["repeats"]
    assert per_step["faster"] == min(steps, key=lambda name: steps[name]["per_batch_s"])
    assert per_step["numpy_over_torch"] == pytest.approx(steps["fc_numpy"]["per_batch_s"] / steps["fc_torch_cpu"]["per_batch_s"])
    assert set(findings["per_step_by_batch_size"]) == {str(b) for b in (64, *ex1_1_fc.TIMING_BATCH_SIZES)}
    assert findings["per_step_by_batch_size"]["64"] == findings["per_step"]
    if limited:  # the NumPy network trained and was timed under the limit, and its runs record it
        assert {n for counts in seen_blas_threads for n in counts} == {ex1_1_fc.NUMPY_BLAS_THREADS}
        assert numpy_run["hyperparameters"]["blas_threads"] == ex1_1_fc.NUMPY_BLAS_THREADS
    assert "blas_threads" not in torch_run["hyperparameters"]


def test_ex1_1_step_learners_start_from_the_same_weights():
    import ex1_1_fc
    from common.numpy_mlp import NumpyMLP

    torch.manual_seed(0)
    learners = ex1_1_fc.step_learners(0.1, torch.device("cpu"))
    assert set(learners) == {"fc_numpy", "fc_torch_cpu"}
    numpy_net, torch_net = learners["fc_numpy"].net, NumpyMLP.from_torch(learners["fc_torch_cpu"].model)
    for a, b in zip(numpy_net.weights + numpy_net.biases, torch_net.weights + torch_net.biases, strict=True):
        np.testing.assert_array_equal(a, b)


def test_same_seed_same_numbers_for_the_cnn(mnist_dir, tmp_path):
    import ex1_2_cnn

    runs = []
    for out in ("a", "b"):
        configs = ex1_2_cnn.main(["--quick", "--device", "cpu", "--data-dir", str(mnist_dir), "--out-dir",
                                  str(tmp_path / out), "--no-progress", "--num-seeds", "1", "--no-cache"])
        runs.append(configs["runs"][0])
    assert runs[0]["history"]["iter_loss"] == runs[1]["history"]["iter_loss"]
    assert runs[0]["test"] == runs[1]["test"]


def _quick(module, mnist_dir, out, *extra):
    return module.main(["--quick", "--device", "cpu", "--data-dir", str(mnist_dir), "--out-dir", str(out),
                        "--no-progress", "--num-seeds", "1", *extra])


def test_ex1_3_and_ex1_4_share_the_ex1_2_run_and_pool_orders_train_identically(mnist_dir, tmp_path):
    import ex1_2_cnn
    import ex1_3_pool_order
    import ex1_4_adam

    key = _quick(ex1_2_cnn, mnist_dir, tmp_path / "a")["runs"][0]["cache_key"]
    ex13 = {c["name"]: c for c in _quick(ex1_3_pool_order, mnist_dir, tmp_path / "b")}
    ex14 = {c["name"]: c for c in _quick(ex1_4_adam, mnist_dir, tmp_path / "c")}
    assert ex13["relu_pool_after"]["runs"][0]["cache_key"] == key == ex14["cnn_sgd"]["runs"][0]["cache_key"]
    adam = ex14["cnn_adam"]["runs"][0]["hyperparameters"]["optimizer"]
    assert adam["class"] == "Adam" and list(adam["param_groups"][0]["betas"]) == [0.9, 0.999]
    assert adam["param_groups"][0]["lr"] == 1e-3 and adam["param_groups"][0]["eps"] == 1e-8
    findings = json.loads((tmp_path / "b" / "results" / "ex1_3_pool_order.json").read_text())["findings"]
    for act in ("relu", "tanh"):
        assert findings["curve_differences"][act]["max_abs_iter_loss"] < 1e-4
        assert findings["pool_after_over_pool_first_time"][act]["forward_backward"] > 0
        paired = findings["pool_first_vs_pool_after"][act]  # the report's speed verdict
        repeats = findings["forward_backward_timing"][f"{act}_pool_first"]["repeats"]
        assert paired["repeats"] == repeats and 0 <= paired["faster_in_repeats"] <= repeats and paired["verdict"]


def test_ex1_5_saves_the_chosen_weights_and_remakes_its_figures_from_them(mnist_dir, tmp_path):
    import ex1_5_variants

    configs = _quick(ex1_5_variants, mnist_dir, tmp_path / "run")
    assert len(configs) >= 7 and {"baseline", "best"} <= {c["name"] for c in configs}
    findings = json.loads((tmp_path / "run" / "results" / "ex1_5_variants.json").read_text())["findings"]
    chosen = findings["chosen_on_validation"]
    assert findings["variants"][chosen]["val_accuracy"]["mean"] == max(
        v["val_accuracy"]["mean"] for v in findings["variants"].values())
    weights = tmp_path / "run" / "models" / "ex1_5_best.pt"
    assert weights.stat().st_size < 1_000_000
    summary = _quick(ex1_5_variants, mnist_dir, tmp_path / "again", "--from-weights", str(weights))[0]
    assert summary["errors"] == findings["best_model_test"]["errors"]
    assert summary["confusion_matrix"] == findings["best_model_test"]["confusion_matrix"]
    for name in ("ex1_5_best_confusion", "ex1_5_best_misclassified"):
        assert (tmp_path / "again" / "figures" / f"{name}.png").stat().st_size > 1000


# --- Part 2: WARWICK segmentation ------------------------------------------------------------

SEG_SCRIPTS = {
    "ex2_1_segnet": ["ex2_1_segnet_curves", "ex2_1_segnet_dice", "ex2_1_segnet_worst"],
    "ex2_2_regularization": ["ex2_2_no_augmentation_curves", "ex2_2_deform_curves", "ex2_2_no_batch_norm_curves",
                             "ex2_2_dropout_curves", "ex2_2_weight_decay_curves", "ex2_2_validation_dice",
                             "ex2_2_test_dice", "ex2_2_dice_per_image"],
}


@pytest.mark.parametrize("script", sorted(SEG_SCRIPTS))
def test_segmentation_quick_run_writes_results_and_figures(script, warwick_dir, tmp_path):
    module = importlib.import_module(script)
    module.main(["--quick", "--device", "cpu", "--data-dir", str(warwick_dir), "--out-dir", str(tmp_path),
                 "--no-progress", "--num-seeds", "1"])
    record = json.loads((tmp_path / "results" / f"{script}.json").read_text())
    assert record["quick"] is True and record["command"].startswith(f"python {script}.py --quick")
    assert record["data"]["dataset"] == "WARWICK" and record["data"]["sizes"]["train"] > 0
    for config in record["configs"]:
        assert config["score_name"] == "dice"
        for run in config["runs"]:
            assert run["history"]["epochs"][0]["train_time_s"] > 0 and 0 <= run["test"]["dice"] <= 1
            assert run["verdict"]["verdict"]
    for figure in SEG_SCRIPTS[script]:
        for ext in ("pdf", "png"):
            assert (tmp_path / "figures" / f"{figure}.{ext}").stat().st_size > 1000
    if script == "ex2_1_segnet":
        findings = record["findings"]
        n_test = record["data"]["sizes"]["test"]
        assert len(findings["per_image_test_dice"]["per_seed"][0]) == n_test
        worst = findings["worst_case"]
        per_image_mean = [sum(d) / len(d) for d in zip(*findings["per_image_test_dice"]["per_seed"])]
        assert worst["dice_mean"] == pytest.approx(min(per_image_mean), abs=1e-4)  # chosen by the code
        assert worst["name"] in worst["description"]


# --- Command-line mistakes: one line, before any data is read or network trained ------------------

def test_ex1_5_from_weights_that_are_missing_or_no_weights_file(tmp_path, capsys):
    """Checked before the data is read (here there is none)."""
    import ex1_5_variants

    args = ["--quick", "--device", "cpu", "--data-dir", str(tmp_path / "no_data"), "--out-dir", str(tmp_path / "out")]
    with pytest.raises(SystemExit) as exit_info:
        ex1_5_variants.main(args + ["--from-weights", str(tmp_path / "nope.pt")])
    assert exit_info.value.code == 2 and f"--from-weights {tmp_path / 'nope.pt'}: no such file" in capsys.readouterr().err
    not_weights = tmp_path / "notes.md"
    not_weights.write_text("# not a weights file")
    with pytest.raises(DataError, match=f"^{not_weights}: not a weights file written by ex1_5_variants.py"):
        ex1_5_variants.main(args + ["--from-weights", str(not_weights)])


@pytest.mark.parametrize("flag", ["--depths", "--no-bn-depths"])
def test_ex2_4_block_depths_below_one_are_a_parser_error(flag, tmp_path, capsys):
    import ex2_4_residual

    with pytest.raises(SystemExit) as exit_info:
        ex2_4_residual.main(["--quick", "--device", "cpu", "--data-dir", str(tmp_path / "no_data"),
                             "--out-dir", str(tmp_path / "out"), flag, "2", "0"])
    assert exit_info.value.code == 2 and f"{flag}: every block depth must be at least 1, got 2 0" in \
        capsys.readouterr().err


def test_ex2_4_says_never_for_a_threshold_no_seed_reaches():
    import ex2_4_residual

    assert ex2_4_residual._mean_epoch(None) == "never" and ex2_4_residual._mean_epoch(12.333) == "12.3"
