"""--quick smoke runs of the validation sweeps behind ex2_5_best.py: they write their record where
asked, with every candidate's validation Dice and nothing from the test set."""
import importlib
import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tuning"))

import ex2_5_best  # noqa: E402


def _run(module: str, warwick_dir, out: Path, *flags: str) -> dict:
    importlib.import_module(module).main(["--quick", "--device", "cpu", "--data-dir", str(warwick_dir),
                                          "--out-dir", str(out), "--no-progress", *flags])
    return json.loads((out / f"{module}.json").read_text())


def _chosen_network_runs(record: dict, warwick_dir):
    """Per hold-out of a prediction sweep's --quick ``record``: (holdout, spec, config, splits) of
    the chosen network (stain and size choices of ex2_5_best), its runs loaded from the run cache."""
    import argparse

    import torch

    from common import cache, experiment, warwick

    stain, size, _ = ex2_5_best.final_choice(ex2_5_best.STAIN_CHOICE, ex2_5_best.SIZE_CHOICE)
    spec = ex2_5_best.best_spec(argparse.Namespace(lr=ex2_5_best.LR, epochs=1, batch_size=ex2_5_best.BATCH_SIZE),
                                channels=ex2_5_best.SIZE_CANDIDATES[size][0], **ex2_5_best.STAIN_CANDIDATES[stain])
    for holdout in record["holdouts"]:
        splits = warwick.load_splits(warwick_dir, val_size=15, seed=0, device=torch.device("cpu"), quick=True,
                                     holdout=holdout)
        config = experiment.run_seeds(spec, splits, record["seeds"], torch.device("cpu"),
                                      cache_root=cache.cache_dir(), show_progress=False)
        yield holdout, spec, config, splits


def test_stain_sweep_validates_every_candidate_on_both_holdouts(warwick_dir, tmp_path):
    record = _run("seg_stain_sweep", warwick_dir, tmp_path)
    assert list(record["candidates"]) == ex2_5_best.STAIN_ORDER
    for row in record["candidates"].values():
        assert set(row["final_val_dice"]) == {"random", "reddest"}
        assert all(0 <= v <= 1 for values in row["final_val_dice"].values() for v in values)
    reddest = record["red_share"]["reddest"]
    assert reddest["val_min"] > reddest["train_max"]  # validated on staining outside the training range
    assert "test" not in json.dumps(record["candidates"])


@pytest.mark.parametrize("only", [["c8 res2 e100"]])
def test_architecture_sweep_records_validation_only(warwick_dir, tmp_path, only):
    record = _run("seg_best_sweep", warwick_dir, tmp_path, "--only", *only)
    assert list(record["candidates"]) == only
    assert "test" not in json.dumps(record["candidates"])


def test_size_sweep_validates_the_chosen_candidates_on_both_holdouts(warwick_dir, tmp_path):
    record = _run("seg_size_sweep", warwick_dir, tmp_path, "--only", "c8 e200", "c16 e100")
    assert list(record["candidates"]) == ["c8 e200", "c8 e200 + TTA", "c16 e100", "c16 e100 + TTA"]
    assert record["candidates"]["c16 e100"]["weights"] == 504_962
    for row in record["candidates"].values():
        assert set(row["final_val_dice"]) == {"random", "reddest"} and row["epochs"] == 1  # --quick
    assert "test" not in json.dumps(record["candidates"])
    assert ex2_5_best.size_selection(record)["chosen"] in record["candidates"]


def test_postprocess_sweep_scores_every_candidate_of_the_chosen_network_on_both_holdouts(warwick_dir, tmp_path):
    record = _run("seg_postprocess_sweep", warwick_dir, tmp_path)
    assert list(record["candidates"]) == ex2_5_best.POSTPROCESS_ORDER
    stain, size, tta = ex2_5_best.final_choice(ex2_5_best.STAIN_CHOICE, ex2_5_best.SIZE_CHOICE)
    assert record["predictor"] == {"stain": stain, "size": size, "channels": list(ex2_5_best.SIZE_CANDIDATES[size][0]),
                                   "epochs": 1, "tta": tta}  # --quick: 1 epoch
    for name, row in record["candidates"].items():
        assert (row["threshold"], row["fill_holes"]) == ex2_5_best.POSTPROCESS_CANDIDATES[name]
        assert set(row["final_val_dice"]) == {"random", "reddest"}
        assert all(0 <= v <= 1 for values in row["final_val_dice"].values() for v in values)
    assert "test" not in json.dumps(record["candidates"])
    assert ex2_5_best.postprocess_selection(record)["chosen"] in record["candidates"]
    # recomputed from the cached runs: the chosen network's validation predictions, as chosen, post-processed
    from common import seg_eval

    for holdout, spec, config, splits in _chosen_network_runs(record, warwick_dir):
        logits = seg_eval.run_logits(config, spec.build_model, splits.val[0], tta)
        for name, (threshold, fill_holes) in ex2_5_best.POSTPROCESS_CANDIDATES.items():
            expected = seg_eval.mean_dice([seg_eval.foreground_masks(lg, threshold, fill_holes) for lg in logits],
                                          splits.val[1])
            assert record["candidates"][name]["final_val_dice"][holdout] == pytest.approx(expected, abs=1e-7), name


def test_batchnorm_sweep_scores_every_candidate_of_the_chosen_network_on_both_holdouts(warwick_dir, tmp_path):
    record = _run("seg_batchnorm_sweep", warwick_dir, tmp_path)
    post = _run("seg_postprocess_sweep", warwick_dir, tmp_path)
    assert list(record["candidates"]) == ex2_5_best.BATCHNORM_ORDER
    assert record["predictor"] == post["predictor"]
    for name, row in record["candidates"].items():
        assert (row["scope"], row["weight"]) == ex2_5_best.BATCHNORM_CANDIDATES[name]
        assert set(row["final_val_dice"]) == {"random", "reddest"}
        assert all(0 <= v <= 1 for values in row["final_val_dice"].values() for v in values)
    assert "test" not in json.dumps(record["candidates"])
    assert ex2_5_best.batchnorm_selection(record)["chosen"] in record["candidates"]
    # the same networks: with the training statistics, the post-processing sweep's chosen prediction
    assert record["candidates"]["training statistics"]["final_val_dice"] == \
        post["candidates"][ex2_5_best.POSTPROCESS_CHOICE]["final_val_dice"]
    # recomputed from the cached runs, each candidate adapting to the validation images it predicts
    from common import seg_eval

    tta = ex2_5_best.final_choice(ex2_5_best.STAIN_CHOICE, ex2_5_best.SIZE_CHOICE)[2]
    threshold, fill_holes = ex2_5_best.POSTPROCESS_CANDIDATES[ex2_5_best.POSTPROCESS_CHOICE]
    for holdout, spec, config, splits in _chosen_network_runs(record, warwick_dir):
        for name, adapt in ex2_5_best.BATCHNORM_CANDIDATES.items():
            logits = seg_eval.run_logits(config, spec.build_model, splits.val[0], tta, batchnorm=adapt)
            expected = seg_eval.mean_dice([seg_eval.foreground_masks(lg, threshold, fill_holes) for lg in logits],
                                          splits.val[1])
            assert record["candidates"][name]["final_val_dice"][holdout] == pytest.approx(expected, abs=1e-7), name


def test_holdout_sweep_trains_each_candidate_for_its_own_epochs(warwick_dir, monkeypatch):
    """Without --quick every candidate runs its own number of epochs, whatever --epochs says (the
    training itself is replaced by a stub that records what it was asked to run)."""
    import holdout_sweep
    from common import cli

    asked = []

    def fake_run_seeds(spec, splits, seeds, device, **kwargs):
        asked.append((spec.name, spec.num_epochs))
        return {"num_weights": 1, "runs": [{"history": {"epochs": [{"val_score": 0.5}]}} for _ in seeds]}

    monkeypatch.setattr(holdout_sweep.experiment, "run_seeds", fake_run_seeds)
    monkeypatch.setattr(holdout_sweep.seg_eval, "tta_scores", lambda config, *_: [0.6] * len(config["runs"]))
    parser = cli.make_parser(None, epochs=7, batch_size=10, lr=1e-2, num_seeds=2)
    ctx = cli.setup(parser, ["--device", "cpu", "--data-dir", str(warwick_dir), "--no-progress"], __file__)
    record = holdout_sweep.sweep(ctx, {"short": (3, {}), "long": (11, {})})
    assert asked == [("short", 3), ("long", 11)] * 2  # on each hold-out
    assert record["candidates"]["long + TTA"] == {"weights": 1, "epochs": 11,
                                                  "final_val_dice": {"random": [0.6, 0.6], "reddest": [0.6, 0.6]}}
    assert set(record["code"]) == {"commit", "uncommitted_changes"}
