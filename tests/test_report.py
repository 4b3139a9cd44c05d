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
    (1234.56, "1{,}235"), (0.005, "0.00500"), (-0.0123, r"\ensuremath{-}0.0123"), (1e-8, r"\ensuremath{1.00\times 10^{-8}}"),
    (True, "yes"), (None, "n/a"), (float("nan"), "n/a")])
def test_number_gives_three_significant_digits(value, text):
    assert report.number(value) == text


@pytest.mark.parametrize("value, text", [(9.9996, "10.0"), (0.09996, "0.100"), (999.6, "1{,}000"),
                                         (-999.7, r"\ensuremath{-}1{,}000")])
def test_number_rounding_up_to_the_next_power_of_ten(value, text):
    assert report.number(value) == text


def test_number_with_two_digits():
    assert report.number(0.98853, digits=2) == "0.99" and report.number(13.3419, digits=2) == "13"
    assert report.number(99.6, digits=2) == "100" and report.number(0.5, digits=2) == "0.50"


def test_negative_numbers_have_a_minus_sign():
    assert report.number(-0.2583) == r"\ensuremath{-}0.258" and report.number(-1200) == r"\ensuremath{-}1{,}200"


@pytest.mark.parametrize("value, text", [(3.0, "3"), (12.0, "12"), (2.5, "2.50"), (1234567, "1{,}234{,}567"),
                                         (1234567.0, "1{,}234{,}567"), (-4.0, r"\ensuremath{-}4")])
def test_whole_numbers_print_whole(value, text):
    """A mean epoch of 3.0 is 3; at least ``digits`` digits before the point are printed in full."""
    assert report.number(value) == text


def test_tex_escapes_special_characters():
    assert report.tex("a_b 50% & #1 ±") == r"a\_b 50\% \& \#1 \ensuremath{\pm}"
    assert report.tex("p>0.5, a<b") == r"p\ensuremath{>}0.5, a\ensuremath{<}b"  # not the OT1 glyphs ¿ and ¡


def test_keys_and_exercise_ids():
    assert report.exercise_id("ex1_2_cnn") == "ex1_2" and report.exercise_id("other") == "other"
    assert report.key("depth 2, plain") == "depth_2_plain" and report.key("p>0.5 + fill") == "p_0_5_fill"


def test_p_values_have_two_significant_digits():
    assert report.p_value(0.0004) == "$p<0.001$" and report.p_value(0.0123) == "$p=0.012$"
    assert report.p_value(0.5) == "$p=0.5$" and report.p_value(0.456) == "$p=0.46$" and report.p_value(1.0) == "$p=1$"
    assert report.p_value(0.001) == "$p=0.001$" and report.p_value(0.0499) == "$p=0.05$"


def test_scores_print_in_their_units():
    s = {"mean": 0.98853, "std": 0.00108, "n": 3}
    assert report.Score("accuracy").mean_std(s) == r"98.85\,$\pm$\,0.11\,\%"
    assert report.Score("dice").mean_std({**s, "mean": 0.8075, "std": 0.008}) == r"0.807\,$\pm$\,0.008"
    assert report.Score("dice").mean_std({"mean": 0.8075, "std": 0.0, "n": 1}) == "0.807"  # one seed: no spread
    assert report.Score("hd95").signed(-2.04) == r"\ensuremath{-}2.0"


# --- sentences chosen by the statistic -----------------------------------------------------------

A, B = [0.812, 0.804, 0.829, 0.817, 0.801], [0.829, 0.811, 0.842, 0.826, 0.824]  # b higher in every pair: +0.0138


def test_the_words_follow_the_outcome_of_the_comparison():
    better = report.comparison_text(metrics.compare(A, B, score="dice"))
    worse = report.comparison_text(metrics.compare(B, A, score="dice"))
    unresolved = report.comparison_text(metrics.compare(A, [0.83, 0.79, 0.83, 0.81, 0.80], score="dice"))
    assert better == {"relation": "better than", "verdict": "better", "short": "+0.014", "ci": "+0.006 to +0.022",
                      "detail": r"+0.014, 95\,\% CI +0.006 to +0.022"}
    assert worse["relation"] == "worse than" and worse["short"] == r"\ensuremath{-}0.014"
    assert worse["detail"] == r"\ensuremath{-}0.014, 95\,\% CI \ensuremath{-}0.022 to \ensuremath{-}0.006"
    assert unresolved["relation"] == "not distinguishable from" and unresolved["verdict"] == "not distinguishable"
    assert unresolved["ci"] == r"\ensuremath{-}0.015 to +0.014"  # the interval covers 0


@pytest.mark.parametrize("outcome, relation", [
    ("better", "better than"), ("worse", "worse than"), ("unresolved", "not distinguishable from"),
    ("better on the test images", "better on these test images than"),
    ("worse on the test images", "worse on these test images than")])
def test_a_changed_result_changes_the_words(outcome, relation):
    """The same numbers with another outcome: the wording may not stay."""
    comparison = metrics.compare(A, B, score="accuracy")
    assert report.comparison_text(comparison)["relation"] == "better than"
    comparison["outcome"] = outcome
    text = report.comparison_text(comparison)
    assert text["relation"] == relation and text["verdict"] == relation.removesuffix(" than").removesuffix(" from")
    assert text["detail"] == r"+1.38 points, 95\,\% CI +0.58 to +2.18"  # accuracy in points


def test_comparison_text_with_images_and_with_one_seed():
    images = [0.5, 0.6, 0.7, 0.8, 0.9, 0.95], [0.6, 0.7, 0.8, 0.9, 0.95, 0.99]
    six = report.comparison_text(metrics.compare(A, B, *images, score="dice"))
    assert six["relation"] == "better than"
    assert six["detail"] == (r"+0.014, 95\,\% CI +0.006 to +0.022; better on 6 and worse on 0 of the 6 test images, "
                             "Wilcoxon $p=0.031$")
    # 5 of 5 images: p = 2/32 decides nothing, and does not contradict the seeds
    five = report.comparison_text(metrics.compare(A, B, images[0][:5], images[1][:5], score="dice"))
    assert five["relation"] == "better than" and "better on 5 and worse on 0 of the 5 test images, Wilcoxon $p=0.062$" \
        in five["detail"]
    single = report.comparison_text(metrics.compare([0.8], [0.9], score="dice"))
    assert single["detail"] == "+0.100, 1 seed pair" and single["ci"] == "n/a"
    assert single["relation"] == "not distinguishable from"


def test_comparison_text_of_a_difference_only_the_test_images_show():
    noisy = [0.83, 0.79, 0.83, 0.81, 0.80]  # seeds: -0.001, interval -0.015 to +0.014
    text = report.comparison_text(metrics.compare(A, noisy, [0.5, 0.6, 0.7, 0.8, 0.9, 0.95],
                                                  [0.6, 0.7, 0.8, 0.9, 0.95, 0.99], score="dice"))
    assert text["relation"] == "better on these test images than" and text["short"] == r"\ensuremath{-}0.001"
    assert text["detail"].endswith("; better on 6 and worse on 0 of the 6 test images, Wilcoxon $p=0.031$")
    # HD95 (lower is better) 1 px lower on every image: better on them, although the seeds' mean rose
    hd95 = report.comparison_text(metrics.compare([10.0, 12.0, 11.0], [11.0, 10.0, 12.5], [5.0, 6, 7, 8, 9, 10],
                                                  [4.0, 5, 6, 7, 8, 9.5], score="hd95", lower_is_better=True))
    assert hd95["relation"] == "better on these test images than"
    assert hd95["detail"] == (r"+0.2\,px, 95\,\% CI \ensuremath{-}4.5 to +4.9; better on 6 and worse on 0 of the 6 "
                              "test images, Wilcoxon $p=0.031$")


def test_timing_text_says_faster_or_slower_when_the_sign_test_says_so():
    faster = report.timing_text({"speedup": 1.234, "agreeing_repeats": 7, "repeats": 7, "p": 0.0156})
    assert faster == {"relation": r"1.23$\times$ faster than", "short": r"1.23$\times$ faster", "speedup": "1.23",
                      "detail": "median speed-up 1.23, 7 of 7 paired repeats above 1, sign test $p=0.016$"}
    slower = report.timing_text({"speedup": 0.5, "agreeing_repeats": 15, "repeats": 15, "p": 6.1e-5})
    assert slower["relation"] == r"2.00$\times$ slower than" and slower["short"] == r"2.00$\times$ slower"
    assert slower["speedup"] == "0.50" and slower["detail"] == "median speed-up 0.50, 15 of 15 paired repeats below 1, sign test $p<0.001$"


def test_timing_text_of_a_ratio_the_sign_test_does_not_confirm_is_about_as_fast():
    for speedup in (0.5, 1.6):
        text = report.timing_text({"speedup": speedup, "agreeing_repeats": 5, "repeats": 7, "p": 0.45})
        assert text["relation"] == "about as fast as" and text["short"] == "about as fast"
        assert text["speedup"] == f"{speedup:.2f}" and text["detail"] == (
            f"median speed-up {speedup:.2f}, 5 of 7 paired repeats {'above' if speedup > 1 else 'below'} 1, "
            "sign test $p=0.45$")
    at_the_threshold = report.timing_text({"speedup": 2.0, "agreeing_repeats": 6, "repeats": 6, "p": 0.05})
    assert at_the_threshold["relation"] == "about as fast as"  # p < 0.05 is needed
    assert report.timing_text({"speedup": 2.0, "agreeing_repeats": 6, "repeats": 6, "p": 0.049})["relation"] == \
        r"2.00$\times$ faster than"


def test_verdict_cell_gives_one_verdict_or_every_verdict_with_its_count():
    assert report.verdict_cell(["good fit"] * 3) == "good fit"
    assert report.verdict_cell(["good fit", "over-fitting", "good fit"]) == "good fit 2, over-fitting 1"
    assert report.verdict_cell(["over-fitting", "good fit"]) == "over-fitting 1, good fit 1"  # a tie: as they come
    assert report.verdict_cell(["one class", "good fit", "diverged", "good fit", "one class", "good fit"]) == \
        "good fit 3, one class 2, diverged 1"


def test_flatten_gives_every_scalar_and_the_text_of_comparisons():
    findings = {"ratio": 2.5, "name": "Test/image_01.png", "per_seed": [0.5, 0.25], "nested": {"n": 3},
                "versus": metrics.compare(A, B, score="dice"),
                "long": list(range(13)), "records": [{"epoch": 21}, {"epoch": None}]}
    flat = dict(report.flatten("ex9_9.f", findings))
    assert flat["ex9_9.f.ratio"] == "2.50" and flat["ex9_9.f.name"] == r"Test/image\_01.png"
    assert flat["ex9_9.f.per_seed"] == "0.500, 0.250" and flat["ex9_9.f.nested.n"] == "3"
    for k, v in report.comparison_text(findings["versus"]).items():
        assert flat[f"ex9_9.f.versus.{k}"] == v
    assert flat["ex9_9.f.versus.relation"] == "better than"
    assert flat["ex9_9.f.versus.outcome"] == "better" and flat["ex9_9.f.versus.ci_low"] == report.number(
        findings["versus"]["ci_low"])
    assert not any(k.startswith("ex9_9.f.long") for k in flat)  # a long list is no macro
    assert flat["ex9_9.f.records.0.epoch"] == "21" and flat["ex9_9.f.records.1.epoch"] == "never"  # None: never


def test_flatten_words_counts_savings_wilcoxon_tests_and_milliseconds():
    counts = dict(report.flatten("c", metrics.compare_counts(4, 0, 4, 4)))
    assert counts["c.text"] == "4 of 4 runs, against 0 of 4 (Fisher's exact test $p=0.029$)"
    assert counts["c.resolved"] == "a difference" and counts["c.a_runs"] == "4"
    few = dict(report.flatten("c", metrics.compare_counts(1, 0, 1, 1)))
    assert few["c.text"] == "1 of 1 runs, against 0 of 1 (Fisher's exact test $p=1$)"
    assert few["c.resolved"] == "too few runs to call it a difference"
    saving = {"saving": {"ReLU": 2.0, "tanh": 2.5}, "larger": "tanh", "agreeing_repeats": 14, "repeats": 15,
              "p": 0.00098}
    flat = dict(report.flatten("s", saving))
    assert flat["s.text"] == "larger with tanh (in 14 of 15 paired repeats, sign test $p<0.001$)"
    assert flat["s.saving.tanh"] == "2.50" and "s.relation" not in flat  # no timing sentence: no speedup
    unsure = dict(report.flatten("s", {**saving, "agreeing_repeats": 9, "p": 0.61}))
    assert unsure["s.text"] == ("not distinguishable between the two (larger with tanh in 9 of 15 paired repeats, "
                                "sign test $p=0.61$)")
    wilcoxon = metrics.compare(A, B, [0.5, 0.6, 0.7, 0.8, 0.9, 0.95], [0.6, 0.7, 0.8, 0.9, 0.95, 0.99], score="dice")
    flat = dict(report.flatten("w", wilcoxon))
    assert flat["w.wilcoxon.p_text"] == "$p=0.031$" and flat["w.wilcoxon.better"] == "6"
    seconds = dict(report.flatten("t", {"per_batch_s": 0.0123, "per_epoch_s": 11.6, "steps": 3, "whole_s": 1.0}))
    assert seconds == {"t.per_batch_s": "0.0123", "t.per_batch_ms": "12.3", "t.per_epoch_s": "11.6", "t.steps": "3",
                       "t.whole_s": "1"}  # below a second also in ms


def test_flatten_prints_targets_and_thresholds_in_the_scores_units():
    findings = {"reach": {"target": 0.98765, "per_seed": [{"epoch": 3}]}, "dice_threshold": 0.75,
                "groups": [{"threshold": 0.75}, {"threshold": 1}]}
    flat = dict(report.flatten("f", findings, report.Score("accuracy")))
    assert flat["f.reach.target"] == r"98.77\,\%" and flat["f.groups.0.threshold"] == r"75.00\,\%"
    assert flat["f.dice_threshold"] == "0.750" and flat["f.groups.1.threshold"] == "1"  # other keys; whole numbers
    assert dict(report.flatten("f", findings, report.Score("dice")))["f.reach.target"] == "0.988"
    assert dict(report.flatten("f", findings))["f.reach.target"] == "0.988"  # no score: a plain number


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

    findings = {"versus": evaluation.compare_runs(*runs, toy_splits().test[1]), "ratio": 2.5}
    results.write(ctx, "ex9_9_demo", runs, toy_splits(), findings)
    return root, runs


def _macros(text: str) -> dict[str, str]:
    import re

    return dict(re.findall(r"^\\@namedef\{res@(.+?)\}\{(.*)\}$", text, flags=re.MULTILINE))


def test_write_all_defines_a_macro_for_every_result(results_root):
    root, runs = results_root
    paths = report.write_all(root)
    assert {p.name for p in paths} == {"results.tex", "paths.tex", "hyper.tex"}
    macros = _macros((root / "generated" / "results.tex").read_text())
    summary = results.summary(runs[0])
    assert macros["ex9_9.toy.test"] == report.Score("accuracy").mean_std(summary["test_accuracy"])
    assert macros["ex9_9.toy.weights"] == "154" and macros["ex9_9.toy.seeds"] == "2"
    assert macros["ex9_9.toy.epochs"] == "2" and macros["ex9_9.toy.batch"] == "16"
    assert macros["ex9_9.toy.label"] == "toy net" and macros["ex9_9.wide_50.epochs"] == "3"  # keys: A-Za-z0-9_
    assert macros["ex9_9.toy.lr"] == "0.1" and macros["ex9_9.toy.weight_decay"] == "0"
    assert macros["ex9_9.toy.model"] == "Sequential"  # not a partial of a known class: its class name
    assert macros["ex9_9.toy.verdict"] == report.verdict_cell(summary["verdicts"])
    top = max(summary["verdicts"], key=summary["verdicts"].count)
    assert macros["ex9_9.toy.why"] == report.tex(next(d["why"] for d in summary["verdict_details"]
                                                     if d["verdict"] == top)) != ""
    # the fit rule's margins in the score's units (accuracy: percent)
    assert {k for k in macros if k.startswith("ex9_9.toy.tol_")} == {
        f"ex9_9.toy.tol_{k}" for k in summary["verdict_tolerances"]}
    assert (macros["ex9_9.toy.tol_gap"], macros["ex9_9.toy.tol_rise"], macros["ex9_9.toy.tol_improve"]) == (
        r"1.00\,\%", r"10\,\%", r"0.20\,\%")
    assert (macros["ex9_9.toy.tol_one_class"], macros["ex9_9.toy.tol_diverged"], macros["ex9_9.toy.tol_annealed"]) == (
        r"99\,\%", "2", r"10\,\%")
    versus = json.loads((root / "results" / "ex9_9_demo.json").read_text())["findings"]["versus"]
    assert macros["ex9_9.f.ratio"] == "2.50" and macros["ex9_9.f.versus.relation"] == \
        report.comparison_text(versus)["relation"]
    assert macros["ex9_9.f.versus.wilcoxon.images"] == "40"  # the test images paired (toy_splits: 40)
    assert macros["ex9_9.command"] == r"python ex9\_9\_demo.py --device cpu --out-dir " + \
        report.tex(str(root)) + " --no-progress --workers 1"
    assert macros["env.device"] == "cpu" and "ex9_9.f.unknown" not in macros
    assert not any(k.startswith("env.make_report") for k in macros)  # only for report/ itself
    assert str((root / "figures").resolve()) in (root / "generated" / "paths.tex").read_text()
    defaults, rows = _hyper_tables((root / "generated" / "hyper.tex").read_text())
    assert defaults == [r"SGD & momentum=0, dampening=0, weight\_decay=0, nesterov=False \\",
                        r"CrossEntropyLoss & reduction=mean, ignore\_index=-100, label\_smoothing=0.0 \\"]
    assert rows == [["9.9", "toy net", "Sequential", "SGD, lr 0.1; constant", "none", "2 / 16", "0, 1"],
                    ["9.9", r"wide\_50\%", "Sequential", "SGD, lr 0.1; constant", "none", "3 / 16", "0, 1"]]


def _hyper_tables(text: str) -> tuple[list[str], list[list[str]]]:
    """hyper.tex -> Table A1's rows, Table A2's rows split into cells (every row ends in \\)."""
    a1 = text.split(r"class & settings \\\midrule" + "\n", 1)[1].split("\n" + r"\bottomrule", 1)[0].splitlines()
    a2 = text.split(r"\endhead" + "\n", 1)[1].split("\n" + r"\bottomrule", 1)[0].splitlines()
    assert all(row.endswith(r" \\") for row in a1 + a2)
    return a1, [row.removesuffix(r" \\").split(" & ") for row in a2]


def test_make_report_times_are_macros_of_the_report_folder_only(results_root, tmp_path, monkeypatch):
    """report/make_report.json (the last `make report` from an empty cache) gives env.make_report_*,
    for report/ (here a stand-in repository root), not for another results folder."""
    root, _ = results_root
    fake_repo = tmp_path / "repo"
    shutil.copytree(root / "results", fake_repo / "report" / "results")
    made = fake_repo / "report" / "make_report.json"
    made.write_text(json.dumps({"minutes": 27.96, "workers": 2, "date": "2026-12-06"}))
    monkeypatch.setattr(report, "REPO_ROOT", fake_repo)
    monkeypatch.setattr(report, "MAKE_REPORT", made)
    report.write_all(fake_repo / "report")
    macros = _macros((fake_repo / "report" / "generated" / "results.tex").read_text())
    assert (macros["env.make_report_minutes"], macros["env.make_report_workers"], macros["env.make_report_date"]) == (
        "28", "2", "2026-12-06")
    report.write_all(root)  # another folder: no make report time
    assert "env.make_report_minutes" not in _macros((root / "generated" / "results.tex").read_text())


def _config(verdicts, whys, **group) -> dict:
    """A results file's configuration by hand: three seeds of the Ex 1.5 best model."""
    hyper = {"model": "MnistCNN", "model_options": {"channels": [16, 32, 64], "activation": "relu", "pool_first": False,
                                                    "batch_norm": True, "dropout": 0.0, "num_classes": 10,
                                                    "image_size": 28},
             "optimizer": {"param_groups": [group]}, "num_epochs": 6, "batch_size": 128}
    runs = [{"seed": k, "test": {"accuracy": acc}, "hyperparameters": hyper,
             "history": {"epochs": [{"val_score": v} for v in vals]}}
            for k, (acc, vals) in enumerate(((0.9921, (0.97, 0.99)), (0.9934, (0.95, 0.992)), (0.991, (0.96, 0.99))))]
    return {"name": "best", "label": "best: combined", "score_name": "accuracy", "num_weights": 54778, "runs": runs,
            "summary": {"test_accuracy": {"mean": 0.99217, "std": 0.0012, "n": 3},
                        "final_val_accuracy": {"mean": 0.99067, "std": 0.0011, "n": 3},
                        "train_time_per_epoch_s": {"mean": 12.34}, "verdicts": verdicts,
                        "verdict_details": [{"verdict": v, "why": w} for v, w in zip(verdicts, whys)],
                        "verdict_tolerances": {"gap": 0.01, "rise": 0.1, "improve": 0.002, "one_class": 0.99,
                                               "diverged": 2.0, "annealed": 0.1}}}


def test_config_macros_by_hand():
    config = _config(["over-fitting", "good fit", "good fit"], ["gap 2%", "level_ly", "level"],
                     lr=0.004, initial_lr=0.004, max_lr=0.1, weight_decay=5e-4)
    m = {k.removeprefix("ex1_5.best."): v for k, v in report.config_macros("ex1_5", config).items()}
    assert m["test"] == r"99.22\,$\pm$\,0.12\,\%" and m["val"] == r"99.07\,$\pm$\,0.11\,\%"
    assert (m["test_mean"], m["test_std"], m["seeds"], m["epochs"], m["batch"]) == ("99.22", "0.12", "3", "6", "128")
    assert (m["weights"], m["epoch_s"], m["label"]) == ("54{,}778", "12", "best: combined")
    assert m["lr"] == "0.1" and m["weight_decay"] == "0.0005"  # one-cycle: its peak; %g
    assert m["model"] == "CNN 16-32-64, BN" and m["verdict"] == "good fit 2, over-fitting 1"
    assert m["why"] == r"level\_ly"  # the first reason given for the most frequent verdict
    assert (m["tol_gap"], m["tol_rise"], m["tol_improve"], m["tol_one_class"], m["tol_diverged"],
            m["tol_annealed"]) == (r"1.00\,\%", r"10\,\%", r"0.20\,\%", r"99\,\%", "2", r"10\,\%")
    assert m["test_seeds"] == r"99.21, 99.34, 99.10\,\%"
    assert (m["val_low"], m["val_low_epoch"], m["val_low_seed"]) == (r"95.00\,\%", "1", "1")
    plain = {k.removeprefix("ex1_5.best."): v for k, v in report.config_macros("ex1_5", _config(
        ["good fit"] * 3, ["level"] * 3, lr=0.05, weight_decay=0)).items()}
    assert plain["lr"] == "0.05" and plain["weight_decay"] == "0" and plain["verdict"] == "good fit"
    no_decay = _config(["good fit"] * 3, ["level"] * 3, lr=1e-3)  # Adam without weight_decay recorded
    assert report.config_macros("ex1_4", no_decay)["ex1_4.best.weight_decay"] == "0"
    assert report.config_macros("ex1_4", no_decay)["ex1_4.best.lr"] == "0.001"


def test_model_short_from_the_recorded_options():
    import functools

    from common import experiment, models

    def short(cls, **options):
        return report.model_short({"model": cls.__name__, "model_options": experiment.model_options(
            toy_config(model=functools.partial(cls, **options)))})

    assert short(models.MLP) == "MLP 784-128-64-10" and short(models.MLP, hidden=(32,)) == "MLP 784-32-10"
    assert short(models.MnistCNN) == "CNN 8-16-32"
    assert short(models.MnistCNN, activation="tanh", pool_first=True) == "CNN 8-16-32, tanh, pool first"
    assert short(models.MnistCNN, channels=(16, 32, 64), batch_norm=True, dropout=0.25) == \
        "CNN 16-32-64, BN, dropout 0.25"
    assert short(models.SegNet, channels=(8, 16, 32, 64), up_kernel=4, init="kaiming", batch_norm=True) == \
        "encoder-decoder 8-16-32-64, BN, 4×4 up-sampling, He init"
    assert short(models.SegNet, channels=(8, 16, 32, 64), skip="concat", block_depth=2, residual=True,
                 batch_norm=True) == "encoder-decoder 8-16-32-64, U-Net skips, blocks of 2, residual, BN, 2×2 up-sampling"
    assert short(models.SegNet, channels=(8, 16), block_depth=3, batch_norm=False, init="he", input_norm=True) == \
        "encoder-decoder 8-16, blocks of 3, no BN, 2×2 up-sampling, He init (true fan-in), input standardisation"
    assert report.model_short({"model": "Sequential", "model_options": {}}) == "Sequential"


def test_augmentation_text_of_each_recorded_transform():
    from common import augment

    assert report.augmentation_text(None) == "none" and report.augmentation_text("") == "none"
    assert report.augmentation_text(repr(augment.RandomAffine(max_rotation_deg=10.0, max_shift=2.0, max_scale=0.1))) \
        == "rotation ±10°, shift ±2 px, scale ±10 %"
    assert report.augmentation_text(repr(augment.SegmentationAugment(dihedral=True))) == "flips, 90° rotations"
    deform = augment.SegmentationAugment(dihedral=False, rotate_deg=15.0, scale=0.1, shear_deg=5.0, translate=0.05,
                                         elastic_px=3.0)
    assert report.augmentation_text(repr(deform)) == "rotation ±15°; scale ±0.1; shear ±5°; shift ±0.05; elastic ±3 px"
    stain = augment.Compose((augment.SegmentationAugment(dihedral=True), augment.StainJitter(log_gain=0.25, shift=0.5)))
    assert report.augmentation_text(repr(stain)) == "flips, 90° rotations; stain contrast ×e^±0.25, brightness ±0.5"
    assert report.augmentation_text("Cutout(size=4)") == "Cutout(size=4)"  # unknown: as recorded


def _hyper(optimizer: str = "SGD", lr: float = 0.1, loss=None, **settings) -> dict:
    defaults = {"SGD": {"lr": lr, "momentum": 0, "dampening": 0, "weight_decay": 0, "nesterov": False,
                        "maximize": False, "foreach": None},
                "Adam": {"lr": lr, "betas": (0.9, 0.999), "eps": 1e-08, "weight_decay": 0, "amsgrad": False,
                         "maximize": False, "foreach": None}}[optimizer]
    return {"model": "MLP", "model_options": {"in_features": 784, "hidden": [128, 64], "num_classes": 10},
            "optimizer": {"class": optimizer, "defaults": {**defaults, **settings}, "param_groups": [{"lr": lr}]},
            "scheduler": None, "loss": {"class": "CrossEntropyLoss", "reduction": "mean", "label_smoothing": 0.0,
                                        **(loss or {})},
            "augmentation": None, "num_epochs": 5, "batch_size": 64}


def _record(exercise: str, *configs) -> dict:
    return {"exercise": exercise, "configs": [{"name": name, "label": label, "runs": [
        {"seed": s, "hyperparameters": h} for s in (0, 1, 2)]} for name, label, h in configs]}


def test_hyper_tables_give_each_class_once_and_each_configuration_once():
    base = ("fc", "MLP, SGD", _hyper())
    first = _record("ex1_1_fc", base, ("fc_adam", "MLP, Adam", _hyper("Adam", 1e-3)), ("fc_twin", "twin", _hyper()))
    second = _record("ex1_5_variants", base, ("tuned", "tuned", _hyper(momentum=0.9, nesterov=True,
                                                                       loss={"label_smoothing": 0.1})))
    defaults, rows = _hyper_tables(report.hyper_tables([first, second]))
    # Table A1: each class's settings the first time it is used (the learning rate is in Table A2)
    assert defaults == [r"SGD & momentum=0, dampening=0, weight\_decay=0, nesterov=False \\",
                        r"CrossEntropyLoss & reduction=mean, label\_smoothing=0.0 \\",
                        r"Adam & betas=(0.9, 0.999), eps=1e-08, weight\_decay=0, amsgrad=False \\"]
    # Table A2: the shared configuration once, with both exercises and its names in the exercise that trains
    # it (not the other exercise's); what differs from Table A1 spelled out
    assert rows == [["1.1, 1.5", "MLP, SGD; twin", "MLP 784-128-64-10", "SGD, lr 0.1; constant", "none", "5 / 64", "0, 1, 2"],
                    ["1.1", "MLP, Adam", "MLP 784-128-64-10", "Adam, lr 0.001; constant", "none", "5 / 64", "0, 1, 2"],
                    ["1.5", "tuned", "MLP 784-128-64-10",
                     r"SGD, lr 0.1; momentum=0.9, nesterov=True; constant; label\_smoothing=0.1", "none", "5 / 64",
                     "0, 1, 2"]]


def test_a_configuration_several_exercises_share_is_one_row_of_the_hyperparameter_table(results_root):
    root, _ = results_root
    record = json.loads((root / "results" / "ex9_9_demo.json").read_text())
    again = {**record, "exercise": "ex9_8_other", "configs": record["configs"][:1]}  # the toy net, reused
    _, rows = _hyper_tables(report.hyper_tables([record, again]))
    assert [row[:2] for row in rows] == [["9.9, 9.8", "toy net"], ["9.9", r"wide\_50\%"]]
    assert all(len(row) == 7 for row in rows)


def test_every_table_a2_row_of_the_committed_results_has_seven_cells():
    records = [json.loads(p.read_text()) for p in sorted((REPO_ROOT / "report" / "results").glob("*.json"))]
    if not records:
        pytest.skip("no committed results")
    defaults, rows = _hyper_tables(report.hyper_tables(records))
    assert all(len(row) == 7 for row in rows), [row for row in rows if len(row) != 7]
    assert len({tuple(row[2:]) for row in rows}) == len(rows)  # no configuration twice
    assert len(defaults) == len({row.split(" & ")[0] for row in defaults})  # each class once


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
    assert "| ex1_2_cnn | CNN, SGD | 98.77 ± 0.10 % | 3 | 21,578 | good fit 2, over-fitting 1 |" in table
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


def test_readme_table_lists_a_configuration_several_exercises_train_once(tmp_path, monkeypatch):
    """Ex 1.2's CNN is also Ex 1.3's and Ex 1.4's baseline: the same runs (cache keys) and test score
    are one row, under the first exercise; a configuration with other runs keeps its own row."""
    monkeypatch.setattr(report, "MAKE_REPORT", tmp_path / "none.json")
    for exercise in ("ex1_2_cnn", "ex1_4_adam"):
        _results_file(tmp_path, exercise)
        record = json.loads((tmp_path / f"{exercise}.json").read_text())
        record["configs"][0]["runs"] = [{"cache_key": "k0"}, {"cache_key": "k1"}]
        (tmp_path / f"{exercise}.json").write_text(json.dumps(record))
    _results_file(tmp_path, "ex1_5_variants")  # no recorded runs: always shown
    table = report.readme_table(tmp_path)
    assert "| ex1_2_cnn | CNN, SGD |" in table and "| ex1_4_adam |" not in table and "| ex1_5_variants |" in table


def test_flatten_gives_a_spread_two_significant_digits():
    flat = dict(report.flatten("m", {"hd95": {"mean": 22.4123, "std": 1.6543}, "dice": {"mean": 0.77129, "std": 0.018468}}))
    assert flat == {"m.hd95.mean": "22.4", "m.hd95.std": "1.7", "m.dice.mean": "0.771", "m.dice.std": "0.018"}
