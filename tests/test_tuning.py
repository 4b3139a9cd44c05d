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
