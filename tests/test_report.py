"""common.report: numbers and sentences for the report from the results files (a sentence's wording
follows its statistic, so a changed result cannot leave a wrong sentence), the LaTeX macros, the
README's table and `make report`'s runner."""
import json
import shutil
import subprocess

import pytest

from common import cli, experiment, metrics, report, results
from common.data import REPO_ROOT
from helpers import toy_config, toy_splits


@pytest.mark.parametrize("value, text", [
    (21578, "21{,}578"), (0, "0"), (0.1, "0.100"), (13.3419, "13.3"), (0.98853, "0.989"), (123456.7, "123{,}457"),
    (1234.56, "1{,}235"), (0.005, "0.00500"), (-0.0123, "-0.0123"), (1e-8, r"\ensuremath{1.00\times 10^{-8}}"),
    (True, "yes"), (None, "n/a"), (float("nan"), "n/a")])
def test_number_gives_three_significant_digits(value, text):
    assert report.number(value) == text


@pytest.mark.parametrize("value, text", [(9.9996, "10.0"), (0.09996, "0.100"), (999.6, "1{,}000"),
                                         (-999.7, "-1{,}000")])
def test_number_rounding_up_to_the_next_power_of_ten(value, text):
    assert report.number(value) == text


def test_number_with_two_digits():
    assert report.number(0.98853, digits=2) == "0.99" and report.number(13.3419, digits=2) == "13"


def test_tex_escapes_special_characters():
    assert report.tex("a_b 50% & #1 ±") == r"a\_b 50\% \& \#1 \ensuremath{\pm}"
    assert report.tex("p>0.5, a<b") == r"p\ensuremath{>}0.5, a\ensuremath{<}b"  # not the OT1 glyphs ¿ and ¡


def test_keys_and_exercise_ids():
    assert report.exercise_id("ex1_2_cnn") == "ex1_2" and report.exercise_id("other") == "other"
    assert report.key("depth 2, plain") == "depth_2_plain" and report.key("p>0.5 + fill") == "p_0_5_fill"


def test_p_values():
    assert report.p_value(0.0004) == "$p<0.001$" and report.p_value(0.0123) == "$p=0.012$"
    assert report.p_value(0.5) == "$p=0.50$"


def test_scores_print_in_their_units():
    s = {"mean": 0.98853, "std": 0.00108, "n": 3}
    assert report.Score("accuracy").mean_std(s) == r"98.85\,$\pm$\,0.11\,\%"
    assert report.Score("dice").mean_std({**s, "mean": 0.8075, "std": 0.008}) == r"0.807\,$\pm$\,0.008"
    assert report.Score("dice").mean_std({"mean": 0.8075, "std": 0.0, "n": 1}) == "0.807"  # one seed: no spread
    assert report.Score("hd95").signed(-2.04) == r"\ensuremath{-}2.0"


# --- sentences chosen by the statistic -----------------------------------------------------------

A, B = [0.812, 0.804, 0.829, 0.817, 0.801], [0.829, 0.811, 0.842, 0.826, 0.824]  # b higher in every pair: +0.0138


def test_the_sentence_follows_the_outcome_of_the_comparison():
    better = report.comparison_text(metrics.compare(A, B, score="dice"))
    worse = report.comparison_text(metrics.compare(B, A, score="dice"))
    unresolved = report.comparison_text(metrics.compare(A, [0.83, 0.79, 0.83, 0.81, 0.80], score="dice"))
    assert better["outcome"] == "better" and better["text"].startswith("better: +0.014 (95\\,\\% CI +")
    assert worse["outcome"] == "worse" and worse["text"].startswith(r"worse: \ensuremath{-}0.014")
    assert unresolved["outcome"] == "not distinguishable" and unresolved["text"].startswith("not distinguishable:")
    assert "5 seed pairs" in better["text"] and better["short"] == "+0.014"


def test_a_changed_result_changes_the_sentence():
    """The same comparison with the numbers turned round: the wording may not stay."""
    comparison = metrics.compare(A, B, score="accuracy")
    assert report.comparison_text(comparison)["text"].startswith("better: +1.38 points")
    comparison["outcome"] = "unresolved"
    assert report.comparison_text(comparison)["text"].startswith("not distinguishable: +1.38 points")


def test_comparison_text_with_images_and_with_one_seed():
    six = metrics.compare(A, B, [0.5, 0.6, 0.7, 0.8, 0.9, 0.95], [0.6, 0.7, 0.8, 0.9, 0.95, 0.99], score="dice")
    text = report.comparison_text(six)["text"]
    assert "higher on 6 of 6 test images, Wilcoxon $p=0.031$" in text and text.startswith("better")
    five = metrics.compare(A, B, [0.5, 0.6, 0.7, 0.8, 0.9], [0.6, 0.7, 0.8, 0.9, 0.95], score="dice")
    text = report.comparison_text(five)["text"]  # 5 of 5 images: p = 2/32, the images do not confirm it
    assert "higher on 5 of 5 test images, Wilcoxon $p=0.062$" in text and text.startswith("not distinguishable")
    single = report.comparison_text(metrics.compare([0.8], [0.9], score="dice"))
    assert single["text"] == "not distinguishable: +0.100 (1 seed pair)" and single["ci"] == "n/a"


def test_timing_text_says_faster_or_slower():
    faster = report.timing_text({"speedup": 1.234, "agreeing_repeats": 7, "repeats": 7, "p": 0.0156})
    slower = report.timing_text({"speedup": 0.5, "agreeing_repeats": 5, "repeats": 7, "p": 0.45})
    assert faster["text"].startswith(r"1.23$\times$ faster") and "7 of 7 paired repeats" in faster["text"]
    assert slower["text"].startswith(r"2.00$\times$ slower") and "sign test $p=0.45$" in slower["text"]


def test_verdict_cell_gives_the_most_frequent_verdict_and_its_count():
    assert report.verdict_cell(["good fit"] * 3) == "good fit"
    assert report.verdict_cell(["good fit", "over-fitting", "good fit"]) == "good fit (2/3)"
    assert report.verdict_cell(["over-fitting", "good fit"]) == "over-fitting (1/2)"  # a tie: the first


def test_flatten_gives_every_scalar_and_the_text_of_comparisons():
    findings = {"ratio": 2.5, "name": "Test/image_01.png", "per_seed": [0.5, 0.25], "nested": {"n": 3},
                "versus": metrics.compare(A, B, score="dice"),
                "long": list(range(13)), "records": [{"epoch": 21}, {"epoch": None}]}
    flat = dict(report.flatten("ex9_9.f", findings))
    assert flat["ex9_9.f.ratio"] == "2.50" and flat["ex9_9.f.name"] == r"Test/image\_01.png"
    assert flat["ex9_9.f.per_seed"] == "0.500, 0.250" and flat["ex9_9.f.nested.n"] == "3"
    assert flat["ex9_9.f.versus.text"] == report.comparison_text(findings["versus"])["text"]
    assert flat["ex9_9.f.versus.outcome"] == "better" and flat["ex9_9.f.versus.ci_low"] == report.number(
        findings["versus"]["ci_low"])
    assert not any(k.startswith("ex9_9.f.long") for k in flat)  # a long list is no macro
    assert flat["ex9_9.f.records.0.epoch"] == "21" and flat["ex9_9.f.records.1.epoch"] == "n/a"


# --- the LaTeX macros from a results folder ------------------------------------------------------

@pytest.fixture(scope="module")
def results_root(tmp_path_factory):
    """A results folder as an exercise writes it: two toy configurations, their comparison as a finding."""
    root = tmp_path_factory.mktemp("report_root")
    parser = cli.make_parser("test", epochs=2, batch_size=16, lr=0.1, num_seeds=2)
    ctx = cli.setup(parser, ["--device", "cpu", "--out-dir", str(root), "--no-progress", "--workers", "1"],
                    "ex9_9_demo.py")
    configs = [toy_config(label="toy net", epochs=2), toy_config(name="wide_50%", epochs=3)]
    runs = experiment.run_all(configs, toy_splits(), ctx)
    from common import evaluation

    results.write(ctx, "ex9_9_demo", runs, toy_splits(), {"versus": evaluation.compare_runs(*runs), "ratio": 2.5})
    return root, runs


def _macros(text: str) -> dict[str, str]:
    import re

    return dict(re.findall(r"^\\@namedef\{res@(.+?)\}\{(.*)\}$", text, flags=re.MULTILINE))


def test_write_all_defines_a_macro_for_every_result(results_root):
    root, runs = results_root
    paths = report.write_all(root)
    assert {p.name for p in paths} == {"results.tex", "paths.tex", "hyper.tex"}
    macros = _macros((root / "generated" / "results.tex").read_text())
    test = results.summary(runs[0])["test_accuracy"]
    assert macros["ex9_9.toy.test"] == report.Score("accuracy").mean_std(test)
    assert macros["ex9_9.toy.weights"] == "154" and macros["ex9_9.toy.seeds"] == "2"
    assert macros["ex9_9.toy.epochs"] == "2"
    assert macros["ex9_9.toy.label"] == "toy net" and macros["ex9_9.wide_50.epochs"] == "3"  # keys: A-Za-z0-9_
    assert macros["ex9_9.f.ratio"] == "2.50" and macros["ex9_9.f.versus.text"].split(":")[0] in (
        "better", "worse", "not distinguishable")
    assert macros["ex9_9.command"] == r"python ex9\_9\_demo.py --device cpu --out-dir " + \
        report.tex(str(root)) + " --no-progress --workers 1"
    assert macros["env.device"] == "cpu" and "ex9_9.f.unknown" not in macros
    assert str((root / "figures").resolve()) in (root / "generated" / "paths.tex").read_text()
    hyper = (root / "generated" / "hyper.tex").read_text().splitlines()
    assert len(hyper) == 2 and all(row.endswith(r"\\") for row in hyper) and "momentum=0" in hyper[0]


@pytest.mark.skipif(shutil.which("pdflatex") is None, reason="needs pdflatex")
def test_latex_stops_at_a_key_no_results_file_defines(results_root, tmp_path):
    root, _ = results_root
    report.write_all(root)
    for name, body, ok in (("known", r"\R{ex9_9.toy.weights}", True), ("unknown", r"\R{ex9_9.toy.nonsense}", False)):
        results_tex = root / "generated" / "results.tex"
        (tmp_path / f"{name}.tex").write_text("\\documentclass{article}\n\\input{" + str(results_tex) + "}\n"
                                              "\\begin{document}\n" + body + "\n\\end{document}\n")
        done = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", f"{name}.tex"], cwd=tmp_path,
                              capture_output=True, text=True)
        assert (done.returncode == 0) == ok, done.stdout[-1500:]
        if not ok:
            assert "No result 'ex9_9.toy.nonsense'" in done.stdout


def test_latex_command_without_results_is_one_error(tmp_path, capsys):
    assert report.main(["latex", "--root", str(tmp_path)]) == 1
    assert "no results files" in capsys.readouterr().err


def test_a_configuration_several_exercises_share_is_one_row_of_the_hyperparameter_table(results_root):
    root, _ = results_root
    record = json.loads((root / "results" / "ex9_9_demo.json").read_text())
    again = {**record, "exercise": "ex9_8_other", "configs": record["configs"][:1]}  # the toy net, reused
    rows = report.hyper_rows([record, again])
    assert len(rows) == 2 and rows[0].startswith("9.9, 9.8 & toy net & ") and rows[1].startswith("9.9 & wide\\_50")
    assert "SGD(lr=0.1, momentum=0" in rows[0] and "constant" in rows[0] and "CrossEntropyLoss(" in rows[0]


def test_training_minutes_count_each_run_once():
    runs = [{"wall_time_s": 60.0, "cache_key": "a"}, {"wall_time_s": 120.0, "cache_key": "b"}]
    tta_copy = [dict(r) for r in runs]  # a configuration re-evaluating the same runs (e.g. with TTA)
    record = {"configs": [{"runs": runs}, {"runs": tta_copy}, {"runs": [{"wall_time_s": 30.0, "cache_key": "c"}]}]}
    shared = {"configs": [{"runs": [dict(runs[0])]}]}  # the Ex 1.2 run in another exercise
    assert report.training_minutes([record, shared]) == pytest.approx(3.5)


# --- README --------------------------------------------------------------------------------------

def _results_file(folder, exercise, quick=False, device="CPU: test"):
    config = {"name": "cnn_sgd", "label": "CNN, SGD", "score_name": "accuracy", "num_weights": 21578,
              "summary": {"test_accuracy": {"mean": 0.98765, "std": 0.001, "n": 3},
                          "train_time_per_epoch_s": {"mean": 3.21},
                          "verdicts": ["good fit", "good fit", "over-fitting"]}}
    record = {"exercise": exercise, "quick": quick, "configs": [config], "environment": {"device_name": device}}
    (folder / f"{exercise}.json").write_text(json.dumps(record))


def test_readme_table_rows_come_from_results_files_and_quick_ones_are_left_out(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(report, "MAKE_REPORT", tmp_path / "none.json")
    _results_file(tmp_path, "ex1_2_cnn")
    _results_file(tmp_path, "ex1_3_pool_order", quick=True, device="CPU: smoke")
    table = report.readme_table(tmp_path)
    assert "| ex1_2_cnn | CNN, SGD | 98.77 ± 0.10 % | 3 | 21,578 | good fit (2/3) |" in table
    assert "ex1_3_pool_order" not in table and "CPU: smoke" not in table and "trained on CPU: test" in table
    err = capsys.readouterr().err
    assert err.startswith("warning: skipped") and "ex1_3_pool_order.json" in err and "--quick" in err
    assert report.readme_table(tmp_path / "empty") == "_No results yet: run `make report`._"


def test_update_readme_replaces_only_the_marked_block(tmp_path, monkeypatch):
    monkeypatch.setattr(report, "MAKE_REPORT", tmp_path / "none.json")
    _results_file(tmp_path, "ex1_2_cnn")
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{report.START}\nold table\n{report.END}\nafter\n")
    report.update_readme(readme, tmp_path)
    text = readme.read_text()
    assert text.startswith(f"intro\n{report.START}\n| exercise |") and text.endswith(f"{report.END}\nafter\n")
    assert "old table" not in text
    readme.write_text("no markers here")
    with pytest.raises(ValueError, match="markers"):
        report.update_readme(readme, tmp_path)


def test_readme_mentions_every_exercise_script():
    readme = (REPO_ROOT / "README.md").read_text()
    for script in report.EXERCISES:
        assert f"`{script}`" in readme, f"README.md does not describe {script}"
    assert len(report.EXERCISES) == 10


# --- make report -----------------------------------------------------------------------------------

def test_run_with_one_worker_runs_each_script_in_turn_and_stops_at_the_first_failure(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(report, "EXERCISES", ["ex1_1_fc.py", "ex1_2_cnn.py", "ex1_3_pool_order.py"])
    monkeypatch.setattr(report.subprocess, "call",
                        lambda cmd, cwd: calls.append(cmd[1:]) or (3 if len(calls) == 2 else 0))  # the second fails
    args = ["--quick", "--device", "cpu", "--workers", "1"]
    assert report.run_scripts(args, tmp_path) == 3
    assert calls == [["ex1_1_fc.py", *args], ["ex1_2_cnn.py", *args]]


FAKE_SCRIPT = """
import sys
sys.path.insert(0, {tests!r})
from helpers import fake_ctx, toy_config, toy_splits
from pathlib import Path
from common import experiment

def main(argv):
    ctx = fake_ctx(Path({cache!r}), seeds=(0, 1))
    [runs] = experiment.run_all([toy_config(name={name!r})], toy_splits(), ctx)
    Path({out!r}).write_text(str(len(runs.records)))
"""


def test_run_trains_every_scripts_runs_together_once_then_runs_the_scripts_again(tmp_path, monkeypatch, capsys):
    """Two scripts that train the same configuration: planned together, trained once (the pool dedupes
    by cache key), then each script finishes from the cache."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("DLIA_CACHE_DIR", str(cache))
    for name in ("fake_a", "fake_b"):
        (tmp_path / f"{name}.py").write_text(FAKE_SCRIPT.format(tests=str(REPO_ROOT / "tests"), cache=str(cache),
                                                                 name=name, out=str(tmp_path / f"{name}.out")))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(report, "EXERCISES", ["fake_a.py", "fake_b.py"])
    monkeypatch.setattr(report, "MAKE_REPORT", tmp_path / "make_report.json")
    assert report.run_scripts(["--device", "cpu", "--workers", "2", "--quick"], tmp_path) == 0
    out = capsys.readouterr().out
    assert "training 2 runs" in out  # seeds 0 and 1 of the one configuration, not 4 runs
    assert (tmp_path / "fake_a.out").read_text() == (tmp_path / "fake_b.out").read_text() == "2"
    assert len(list((cache / "runs").glob("*/record.json"))) == 2
    assert not (tmp_path / "make_report.json").exists()  # --quick is no report's timing


def test_the_run_command_passes_script_options_on(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(report, "EXERCISES", ["ex1_1_fc.py"])
    monkeypatch.setattr(report.subprocess, "call", lambda cmd, cwd: calls.append(cmd[1:]) or 0)
    args = ["--quick", "--device", "cpu", "--out-dir", str(tmp_path), "--no-progress", "--workers", "1"]
    assert report.main(["run", *args]) == 0
    assert calls == [["ex1_1_fc.py", *args]]
