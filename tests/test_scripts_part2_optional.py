"""--quick smoke runs of the Ex 2.3, Ex 2.4 and best-model scripts: results files, findings, figures."""
import importlib
import json

import pytest

SCRIPTS = {
    "ex2_3_skip": (["--skips", "concat", "sum"],
                   ["ex2_3_skip_curves", "ex2_3_skip_metrics", "ex2_3_skip_per_image", "ex2_3_skip_boundaries"]),
    "ex2_4_residual": (["--depths", "2", "--no-bn-depths", "2"],
                       ["ex2_4_residual_depth2_epoch", "ex2_4_residual_depth2_time", "ex2_4_residual_depth2_nobn_epoch",
                        "ex2_4_residual_depth2_nobn_he_epoch", "ex2_4_residual_summary"]),
    "ex2_5_best": ([], ["ex2_5_best_curves", "ex2_5_best_dice", "ex2_5_best_cases"]),
}


@pytest.fixture(scope="module")
def runs(warwick_dir, tmp_path_factory):
    out = {}
    for script, (flags, _) in SCRIPTS.items():
        tmp = tmp_path_factory.mktemp(script)
        importlib.import_module(script).main(["--quick", "--device", "cpu", "--data-dir", str(warwick_dir),
                                              "--out-dir", str(tmp), "--no-progress", "--num-seeds", "1", *flags])
        out[script] = (tmp, json.loads((tmp / "results" / f"{script}.json").read_text()))
    return out


@pytest.mark.parametrize("script", sorted(SCRIPTS))
def test_quick_run_writes_results_and_figures(script, runs):
    tmp, record = runs[script]
    assert record["quick"] is True and record["command"].startswith(f"python {script}.py --quick")
    for config in record["configs"]:
        assert config["score_name"] == "dice"
        for run in config["runs"]:
            assert 0 <= run["test"]["dice"] <= 1 and run["history"]["epochs"][0]["train_time_s"] > 0
    for figure in SCRIPTS[script][1]:
        for ext in ("pdf", "png"):
            assert (tmp / "figures" / f"{figure}.{ext}").stat().st_size > 1000


def test_ex2_3_compares_the_ex2_1_network_with_skips(runs):
    _, record = runs["ex2_3_skip"]
    names = [c["name"] for c in record["configs"]]
    assert names == ["segnet", "segnet_skip_concat", "segnet_skip_sum"]
    weights = [c["num_weights"] for c in record["configs"]]
    assert weights[0] == weights[2] < weights[1]  # sum adds no weights, concat widens the decoder convs
    findings = record["findings"]
    n_test = record["data"]["sizes"]["test"]
    for metrics in findings["metrics"].values():
        assert set(metrics) == {"dice", "boundary_f1_1px", "boundary_f1_2px", "hd95"}
        assert metrics["dice"]["n"] == 1 and 0 <= metrics["boundary_f1_2px"]["mean"] <= 1
    for label, per_image in findings["per_image"].items():
        if label != "names":
            assert len(per_image["hd95"]) == n_test
    assert set(findings["shown_cases"]) == {"largest gain", "median gain", "largest loss"}


def test_ex2_4_records_the_speed_of_learning(runs):
    _, record = runs["ex2_4_residual"]
    assert [c["name"] for c in record["configs"]] == ["segnet", "segnet_depth2_plain", "segnet_depth2_residual",
                                                      "segnet_depth2_plain_nobn", "segnet_depth2_residual_nobn",
                                                      "segnet_depth2_plain_nobn_he", "segnet_depth2_residual_nobn_he"]
    findings = record["findings"]
    for config in findings["configs"].values():
        reach = config["reaches_threshold"]
        assert reach["threshold"] == findings["dice_threshold"] and len(reach["per_seed"]) == 1
    plain, residual = (findings["configs"][k]["weights"] for k in ("depth 2, plain", "depth 2, residual"))
    # only the 1x1 projections 2->8, 8->16, 16->32, 32->64 differ: with biases 24 + 144 + 544 + 2,112;
    # with batch norm (as Ex 2.1 uses) no biases but 2 weights per output channel: 32 + 160 + 576 + 2,176
    import ex2_1_segnet

    expected = 32 + 160 + 576 + 2_176 if getattr(ex2_1_segnet, "BATCH_NORM", False) else 24 + 144 + 544 + 2_112
    assert residual - plain == expected
    plain, residual = (findings["configs"][k]["weights"] for k in ("depth 2, plain, no BN", "depth 2, residual, no BN"))
    assert residual - plain == 24 + 144 + 544 + 2_112
    assert set(findings["residual_vs_plain_no_bn"]) == set(findings["residual_vs_plain_no_bn_check_init"]) == {"2"}
    # the check differs from the plain no-BN networks only in the transposed convolutions' initialisation
    inits = {c["name"]: c["runs"][0]["hyperparameters"]["init"] for c in record["configs"]}
    assert inits["segnet_depth2_plain_nobn_he"] == ex2_1_segnet.INIT_SCHEMES["he"] != inits["segnet_depth2_plain_nobn"]
    assert findings["configs"]["depth 2, plain, no BN, he init"]["weights"] == findings["configs"]["depth 2, plain, no BN"]["weights"]


def _recomputed(record: dict, warwick_dir, holdout: str, stain: str, part: str = "test"):
    """The best model's runs of a --quick ``record`` loaded again from the tests' run cache, and the
    per-seed masks they predict on ``part`` as ex2_5_best.py says it predicts (TTA, batch-norm
    statistics, post-processing)."""
    import argparse

    import torch

    import ex2_5_best
    from common import cache, experiment, seg_eval, warwick

    _, size, tta = ex2_5_best.final_choice(stain, ex2_5_best.SIZE_CHOICE)
    args = argparse.Namespace(**{k: record["args"][k] for k in ("lr", "epochs", "batch_size")})
    spec = ex2_5_best.best_spec(args, channels=ex2_5_best.SIZE_CANDIDATES[size][0],
                                **ex2_5_best.STAIN_CANDIDATES[stain.removesuffix(ex2_5_best.TTA_SUFFIX)])
    splits = warwick.load_splits(warwick_dir, val_size=15, seed=0, device=torch.device("cpu"), quick=True,
                                 holdout=holdout)
    config = experiment.run_seeds(spec, splits, record["seeds"], torch.device("cpu"), cache_root=cache.cache_dir(),
                                  show_progress=False)
    threshold, fill_holes = ex2_5_best.POSTPROCESS_CANDIDATES[ex2_5_best.POSTPROCESS_CHOICE]
    inputs, targets = getattr(splits, part)
    logits = seg_eval.run_logits(config, spec.build_model, inputs, tta,
                                 batchnorm=ex2_5_best.BATCHNORM_CANDIDATES[ex2_5_best.BATCHNORM_CHOICE])
    return config, [seg_eval.foreground_masks(lg, threshold, fill_holes) for lg in logits], targets


def _case_dice_from_the_prediction(case: dict) -> float:
    """The Dice of the prediction a case's statistics (and figure) were made from: 2 TP / (|truth| + |pred|)."""
    stats = case["stats"]
    true_positive = stats["predicted_gland_fraction"] - stats["false_positive_fraction"]
    return 2 * true_positive / (stats["gland_fraction"] + stats["predicted_gland_fraction"])


def test_best_model_shows_its_best_and_worst_case(runs):
    _, record = runs["ex2_5_best"]
    findings = record["findings"]
    per_image = findings["per_image_test_dice"]["per_seed"][0]
    assert findings["best_case"]["dice_mean"] == pytest.approx(max(per_image), abs=1e-4)
    assert findings["worst_case"]["dice_mean"] == pytest.approx(min(per_image), abs=1e-4)
    for case in (findings["best_case"], findings["worst_case"]):  # statistics of the first seed's prediction
        assert _case_dice_from_the_prediction(case) == pytest.approx(case["dice_per_seed"][0], abs=1e-4)
    assert record["configs"][0]["runs"][0]["hyperparameters"]["scheduler"]["class"] == "OneCycleLR"


def test_best_model_is_the_configured_choice(runs):
    """ex2_5_best.py trains the network SIZE_CHOICE names and predicts as it says (single pass or TTA,
    POSTPROCESS_CHOICE)."""
    import ex2_5_best

    _, record = runs["ex2_5_best"]
    candidate, size, tta = ex2_5_best.final_choice(ex2_5_best.STAIN_CHOICE, ex2_5_best.SIZE_CHOICE)
    findings = record["findings"]
    assert (findings["size_candidate"], findings["tta"]) == (size, tta)
    assert findings["postprocess_candidate"] == ex2_5_best.POSTPROCESS_CHOICE
    assert findings["batchnorm_candidate"] == ex2_5_best.BATCHNORM_CHOICE
    final_name = ex2_5_best.prediction_name("best refit" if ex2_5_best.REFIT else "best", tta)
    assert findings["chosen_on_validation"] == record["configs"][-1]["name"] == final_name
    for config in record["configs"]:
        assert config["runs"][0]["hyperparameters"]["channels"] == list(ex2_5_best.SIZE_CANDIDATES[size][0])
    plain = not tta and ex2_5_best.POSTPROCESS_CHOICE == "p>0.5" and ex2_5_best.BATCHNORM_CHOICE == "training statistics"
    assert (findings["val_dice_as_predicted"] is None) == plain
    # each round's selection from its own committed record
    for key, record_name, choice in (("postprocess", "seg_postprocess_sweep.json", ex2_5_best.POSTPROCESS_CHOICE),
                                     ("batchnorm", "seg_batchnorm_sweep.json", ex2_5_best.BATCHNORM_CHOICE)):
        selection = findings[f"{key}_selection_on_validation"]
        assert (selection["record"], selection["chosen"]) == (f"tuning/{record_name}", choice)
    assert list(findings["batchnorm_selection_on_validation"]["mean_final_val_dice"]) == ex2_5_best.BATCHNORM_ORDER


def test_best_model_is_refit_on_all_training_images(runs):
    """With REFIT the final model is the validated configuration trained again without a hold-out:
    different training data, the same hyperparameters, no validation score or verdict in its summary."""
    import ex2_5_best

    assert ex2_5_best.REFIT
    _, record = runs["ex2_5_best"]
    configs = {c["name"]: c for c in record["configs"]}
    best, refit, final = configs["best"], configs["best refit"], record["configs"][-1]
    assert record["findings"]["final_data"]["holdout"] == "none"
    assert "training scores" in record["findings"]["final_data"]["validation"]
    assert record["data"]["holdout"] == "random"  # the results' data: the validated runs' split
    hyper = [c["runs"][0]["hyperparameters"] for c in (best, refit)]
    for key in ("architecture", "num_weights", "loss", "num_epochs", "batch_size", "train_transform", "channels",
                "model_options"):
        assert hyper[0][key] == hyper[1][key], key
    assert hyper[0]["optimizer"]["defaults"] == hyper[1]["optimizer"]["defaults"]
    # the same epochs and batch size over the larger training set: more optimizer steps
    batches = -(-record["findings"]["final_data"]["sizes"]["train"] // hyper[1]["batch_size"])
    assert hyper[1]["scheduler"]["state"]["total_steps"] == hyper[1]["num_epochs"] * batches
    assert record["findings"]["optimizer_steps_per_run"] == {
        "validated": hyper[0]["scheduler"]["state"]["total_steps"], "final": hyper[1]["scheduler"]["state"]["total_steps"]}
    assert [r["seed"] for r in refit["runs"]] == [r["seed"] for r in best["runs"]] == record["seeds"]
    assert record["findings"]["train_time_total_s"] == pytest.approx(sum(r["wall_time_s"] for r in refit["runs"]))
    assert record["findings"]["train_time_validated_s"] == pytest.approx(sum(r["wall_time_s"] for r in best["runs"]))
    assert best["runs"][0]["history"] != refit["runs"][0]["history"]  # trained on other images
    assert final["runs"][0]["history"] == refit["runs"][0]["history"]  # the final model: the refit's runs
    assert "final_val_dice" not in refit["summary"] and set(refit["summary"]["verdicts"]) == {"refit: no hold-out"}
    diff = record["findings"]["final_vs_validated"]["dice"]
    validated_name = ex2_5_best.prediction_name("best", record["findings"]["tta"])
    assert diff["difference"] == pytest.approx(final["summary"]["test_dice"]["mean"]
                                               - configs[validated_name]["summary"]["test_dice"]["mean"], abs=1e-6)


def test_best_model_with_test_time_augmentation_and_post_processing(warwick_dir, tmp_path, monkeypatch):
    """ex2_5_best.py with a stain candidate, TTA, batch-norm statistics of the set predicted and
    post-processing (input norm + TTA, per set, p>0.4 + fill holes) and no refit: the trained runs,
    their post-processed TTA prediction as a second configuration, and the findings computed from
    that prediction (the batch-norm statistics of the test set for the test Dice, of the validation
    set for the validation Dice)."""
    import ex2_5_best

    monkeypatch.setattr(ex2_5_best, "STAIN_CHOICE", "input norm + TTA")
    monkeypatch.setattr(ex2_5_best, "POSTPROCESS_CHOICE", "p>0.4 + fill holes")
    monkeypatch.setattr(ex2_5_best, "BATCHNORM_CHOICE", "per set")
    monkeypatch.setattr(ex2_5_best, "REFIT", False)  # the final model: the validated runs
    ex2_5_best.main(["--quick", "--device", "cpu", "--data-dir", str(warwick_dir), "--out-dir", str(tmp_path),
                     "--no-progress", "--num-seeds", "1"])
    record = json.loads((tmp_path / "results" / "ex2_5_best.json").read_text())
    single, final = record["configs"]
    assert (single["name"], final["name"]) == ("best", "best + TTA, p>0.4 + fill holes, BN per set")
    assert record["findings"]["chosen_on_validation"] == final["name"]
    assert single["runs"][0]["hyperparameters"]["model_options"]["input_norm"] is True
    evaluation = final["runs"][0]["test"]["evaluation"]
    assert "test-time augmentation" in evaluation and "> 0.4, enclosed holes filled" in evaluation
    assert "statistics of the test set" in evaluation
    assert final["runs"][0]["history"] == single["runs"][0]["history"]  # the same trained run
    per_image = record["findings"]["per_image_test_dice"]["per_seed"][0]
    assert final["summary"]["test_dice"]["mean"] == pytest.approx(sum(per_image) / len(per_image), abs=1e-4)
    for case in (record["findings"]["best_case"], record["findings"]["worst_case"]):  # drawn from that prediction
        assert _case_dice_from_the_prediction(case) == pytest.approx(case["dice_per_seed"][0], abs=1e-4)
    config, masks, targets = _recomputed(record, warwick_dir, "random", "input norm + TTA")  # p>0.4 + fill holes
    dice = [[float(v) for v in ex2_5_best.seg_eval.dice_coefficient(m, targets == 1)] for m in masks]
    assert per_image == pytest.approx(dice[0], abs=1e-5)
    _, val_masks, val_targets = _recomputed(record, warwick_dir, "random", "input norm + TTA", part="val")
    assert record["findings"]["val_dice_as_predicted"]["mean"] == pytest.approx(
        ex2_5_best.seg_eval.mean_dice(val_masks, val_targets)[0], abs=1e-6)
    assert record["findings"]["final_vs_validated"] is None and record["findings"]["final_data"]["holdout"] == "random"


def test_best_model_findings_come_from_the_refit_networks_predicting_as_chosen(runs, warwick_dir):
    """Recomputed from the cached refit runs: the final per-image Dice is theirs on the refit's own
    test split (normalised with all training images' statistics), with TTA and post-processing, and
    the case statistics are those of the same images."""
    import ex2_5_best
    from common import warwick

    _, record = runs["ex2_5_best"]
    config, masks, targets = _recomputed(record, warwick_dir, warwick.NO_HOLDOUT, ex2_5_best.STAIN_CHOICE)
    dice = [[float(v) for v in ex2_5_best.seg_eval.dice_coefficient(m, targets == 1)] for m in masks]
    per_seed = record["findings"]["per_image_test_dice"]["per_seed"]
    assert len(per_seed) == len(dice)
    for recorded, recomputed in zip(per_seed, dice):
        assert recorded == pytest.approx(recomputed, abs=1e-5)
    images, _, names = warwick.load_warwick(warwick_dir)["test"]
    share = dict(zip(names, warwick.red_share(images)))
    for case in (record["findings"]["best_case"], record["findings"]["worst_case"]):
        assert case["stats"]["red_share"] == pytest.approx(share[case["name"]], abs=1e-3)


def test_refit_without_tta_predicts_with_the_chosen_batchnorm_statistics(warwick_dir, tmp_path, monkeypatch):
    """ex2_5_best.py with a single pass, batch norm per image (weight 0.5) and the refit: both the
    validated networks and the refit predict with those statistics (their configurations are named
    so), and the final per-image test Dice and the validation Dice as predicted recompute from the
    cached runs with them."""
    import ex2_5_best
    from common import warwick

    monkeypatch.setattr(ex2_5_best, "SIZE_CHOICE", "c8 e100")  # no TTA
    monkeypatch.setattr(ex2_5_best, "BATCHNORM_CHOICE", "per image 0.5")
    assert ex2_5_best.REFIT
    ex2_5_best.main(["--quick", "--device", "cpu", "--data-dir", str(warwick_dir), "--out-dir", str(tmp_path),
                     "--no-progress", "--num-seeds", "1"])
    record = json.loads((tmp_path / "results" / "ex2_5_best.json").read_text())
    assert [c["name"] for c in record["configs"]] == ["best", "best, BN per image 0.5", "best refit",
                                                      "best refit, BN per image 0.5"]
    assert "each image's statistics (weight 0.5)" in record["configs"][-1]["runs"][0]["test"]["evaluation"]
    _, masks, targets = _recomputed(record, warwick_dir, warwick.NO_HOLDOUT, ex2_5_best.STAIN_CHOICE)
    dice = [float(v) for v in ex2_5_best.seg_eval.dice_coefficient(masks[0], targets == 1)]
    assert record["findings"]["per_image_test_dice"]["per_seed"][0] == pytest.approx(dice, abs=1e-5)
    _, val_masks, val_targets = _recomputed(record, warwick_dir, "random", ex2_5_best.STAIN_CHOICE, part="val")
    assert record["findings"]["val_dice_as_predicted"]["mean"] == pytest.approx(
        ex2_5_best.seg_eval.mean_dice(val_masks, val_targets)[0], abs=1e-6)
