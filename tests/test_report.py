"""The README's results table is generated from the results files, never typed."""
import json

import pytest

from common import report
from common.cache import REPO_ROOT


def test_committed_readme_table_matches_the_committed_results():
    assert report.main(["--check"]) == 0, "README.md results table is stale: run `make readme`"


def test_table_rows_come_from_results_files(tmp_path):
    config = {"name": "cnn_sgd", "score_name": "accuracy", "num_weights": 21578,
              "summary": {"test_accuracy": {"mean": 0.98765, "std": 0.001, "n": 3},
                          "train_time_per_epoch_s": {"mean": 3.21}, "verdicts": ["good fit", "good fit"]}}
    record = {"exercise": "ex1_2_cnn", "configs": [config], "environment": {"device_name": "CPU: test"}}
    (tmp_path / "ex1_2_cnn.json").write_text(json.dumps(record))
    table = report.results_table(tmp_path)
    assert "| ex1_2_cnn | cnn_sgd | accuracy 98.77 ± 0.10 % | 3 | 21,578 | 3.21 | good fit |" in table
    assert "CPU: test" in table


def test_replace_block_needs_markers():
    assert report.replace_block(f"a\n{report.START}\nold\n{report.END}\nb", "new") == \
        f"a\n{report.START}\nnew\n{report.END}\nb"
    with pytest.raises(ValueError, match="markers"):
        report.replace_block("no markers here", "x")


def test_readme_mentions_every_exercise_script():
    readme = (REPO_ROOT / "README.md").read_text()
    for script in sorted(REPO_ROOT.glob("ex[0-9]_[0-9]_*.py")):
        assert f"`{script.name}`" in readme, f"README.md does not describe {script.name}"


def test_quick_results_are_left_out_of_the_table_with_a_warning(tmp_path, capsys):
    config = {"name": "cnn_sgd", "score_name": "accuracy", "num_weights": 21578,
              "summary": {"test_accuracy": {"mean": 0.98765, "std": 0.001, "n": 3},
                          "train_time_per_epoch_s": {"mean": 3.21}, "verdicts": ["good fit"]}}
    for exercise, quick, device in (("ex1_2_cnn", False, "CPU: full"), ("ex1_3_pool_order", True, "CPU: smoke")):
        record = {"exercise": exercise, "quick": quick, "command": f"python {exercise}.py" + " --quick" * quick,
                  "configs": [config], "environment": {"device_name": device}}
        (tmp_path / f"{exercise}.json").write_text(json.dumps(record))
    table = report.results_table(tmp_path)
    assert "| ex1_2_cnn |" in table and "ex1_3_pool_order" not in table and "CPU: smoke" not in table
    err = capsys.readouterr().err
    assert err.startswith("warning: skipped") and "ex1_3_pool_order.json" in err and "--quick" in err


def test_footer_counts_a_run_shared_by_two_exercises_once(tmp_path):
    def run(seed: int, seconds: float) -> dict:
        return {"hyperparameters": {"lr": 0.05}, "seed": seed, "wall_time_s": seconds,
                "history": {"epochs": [{"train_loss": 0.5 - seed / 10}]}}
    summary = {"test_accuracy": {"mean": 0.98, "std": 0.001, "n": 2}, "train_time_per_epoch_s": {"mean": 1.0},
               "verdicts": ["good fit"]}
    shared = {"name": "cnn_sgd", "score_name": "accuracy", "num_weights": 10, "summary": summary,
              "runs": [run(0, 600.0), run(1, 600.0)]}
    other = {**shared, "name": "cnn_adam", "runs": [run(2, 1200.0)]}
    for exercise, configs in (("ex1_2_cnn", [shared]), ("ex1_4_adam", [shared, other])):
        record = {"exercise": exercise, "configs": configs, "environment": {"device_name": "CPU: test"}}
        (tmp_path / f"{exercise}.json").write_text(json.dumps(record))
    assert "; 40 minutes of training in all (each run once)" in report.results_table(tmp_path)
