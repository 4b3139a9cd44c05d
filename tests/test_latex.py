"""The generated LaTeX: number formatting, escaping, the spread rule, and one macro per result."""
import json

import pytest

from common import latex


def test_tex_escape_special_characters():
    assert latex.tex_escape("a_b 50% & #1 ±") == r"a\_b 50\% \& \#1 \ensuremath{\pm}"
    assert latex.tex_escape("p>0.5, a<b") == r"p\ensuremath{>}0.5, a\ensuremath{<}b"  # not the OT1 glyphs ¿ and ¡ (nor a font substitution in \texttt)


@pytest.mark.parametrize("value, text", [(21578, "21{,}578"), (0.1, "0.1"), (13.3419, "13.34"), (0.98853, "0.9885"),
                                         (1e-8, r"\ensuremath{1.00 \times 10^{-8}}"), (True, "yes"), (None, "n/a"),
                                         (123456.7, "123{,}457"), (0.930045, "0.9300"), (0.005, "0.005"),
                                         (12.0, "12"), (1234.56, "1235")])
def test_fmt_number(value, text):
    assert latex.fmt_number(value) == text


def test_score_formats_accuracy_in_percent_and_dice_as_is():
    s = {"mean": 0.98853, "std": 0.00108, "min": 0.9873, "max": 0.9893, "n": 3}
    assert latex.Score("accuracy").mean_std(s) == r"98.85\,$\pm$\,0.11\,\%"
    assert latex.Score("dice").mean_std({**s, "mean": 0.8075, "std": 0.008}) == r"0.807\,$\pm$\,0.008"


def test_diff_applies_the_spread_rule():
    a = {"mean": 0.900, "std": 0.010, "n": 3}
    within = latex.Score("dice").diff(a, {"mean": 0.905, "std": 0.002, "n": 3})
    larger = latex.Score("dice").diff(a, {"mean": 0.880, "std": 0.002, "n": 3})
    assert within.startswith("+0.005") and "within the seed-to-seed spread" in within
    assert larger.startswith("-0.020") and "larger than the seed-to-seed spread" in larger


def _record(exercise="ex9_9_demo"):
    run = {"seed": 0, "wall_time_s": 30.0, "hyperparameters": {"num_epochs": 2, "batch_size": 8, "architecture": "Linear(in_features=4, "
                                          "out_features=3)", "optimizer": {"class": "SGD", "param_groups": [
                                              {"lr": 0.05, "momentum": 0}], "defaults": {"lr": 0.05, "nesterov": False}},
                                          "loss": {"class": "CrossEntropyLoss", "label_smoothing": 0.0}}}
    summary = {"test_accuracy": {"mean": 0.9, "std": 0.01, "min": 0.89, "max": 0.91, "n": 2},
               "final_val_accuracy": {"mean": 0.88, "std": 0.02, "min": 0.86, "max": 0.9, "n": 2},
               "train_time_per_epoch_s": {"mean": 1.234}, "verdicts": ["good fit", "over-fitting"]}
    configs = [{"name": name, "score_name": "accuracy", "num_weights": 15, "summary": summary, "runs": [run]}
               for name in ("base", "variant_1")]
    return {"exercise": exercise, "command": "python ex9_9_demo.py", "seeds": [0, 1], "quick": True,
            "environment": {"python": "3.11", "torch": "2.14.1", "device_name": "CPU"}, "wall_time_s": 90.0,
            "data": {"sizes": {"train": 100, "val": 10, "test": 20}}, "configs": configs,
            "findings": {"ratio": 2.5, "worst": {"name": "Test/image_01.png"}, "per_seed": [0.5, 0.25]}}


def test_write_all_generates_every_macro_and_table(tmp_path):
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "ex9_9_demo.json").write_text(json.dumps(_record()))
    latex.write_all(tmp_path)
    macros = (tmp_path / "generated" / "results.tex").read_text()
    for line in [r"\@namedef{res@ex9_9.base.test}{90.00\,$\pm$\,1.00\,\%}", r"\@namedef{res@ex9_9.variant_1.weights}{15}",
                 r"\@namedef{res@ex9_9.base.verdict}{good fit (1/2 seeds); over-fitting (1/2 seeds)}",
                 r"\@namedef{res@ex9_9.f.ratio}{2.5}", r"\@namedef{res@ex9_9.f.worst.name}{Test/image\_01.png}",
                 r"\@namedef{res@ex9_9.f.per_seed}{0.5, 0.25}", r"\@namedef{res@ex9_9.wall}{1.0}",
                 r"\@namedef{res@ex9_9.base.layers}{4--3}", r"\@namedef{res@ex9_9.data.val}{10}"]:
        assert line in macros
    assert "res@ex9_9.diff.variant_1.base.test" in macros
    hyper = (tmp_path / "generated" / "ex9_9_hyper.tex").read_text()
    assert "momentum=0" in hyper and "nesterov=False" in hyper and "label\\_smoothing=0.0" in hyper
    assert str((tmp_path / "figures").resolve()) in (tmp_path / "generated" / "paths.tex").read_text()


def test_missing_results_is_a_clear_error(tmp_path, capsys):
    assert latex.main(["--root", str(tmp_path)]) == 1
    assert "no results files" in capsys.readouterr().err


def test_beyond_spread_is_strict_and_ignores_missing_stds():
    assert latex.beyond_spread(-0.02, 0.01, None)
    assert not latex.beyond_spread(0.01, 0.01, 0.002)  # equal to the larger std: within
    assert latex.beyond_spread(1e-9, None, None)  # no spread known: any difference counts


def test_training_minutes_count_each_run_once():
    runs = [{"wall_time_s": 60.0, "cache_key": "a"}, {"wall_time_s": 120.0, "cache_key": "b"}]
    tta_copy = [dict(r) for r in runs]  # a configuration re-evaluating the same runs (e.g. with TTA)
    record = {"configs": [{"runs": runs}, {"runs": tta_copy}, {"runs": [{"wall_time_s": 30.0, "cache_key": "c"}]}]}
    assert latex.training_minutes(record) == pytest.approx(3.5)
    assert latex.training_minutes({"configs": [{"runs": [{"wall_time_s": 6.0}, {"wall_time_s": 6.0}]}]}) == \
        pytest.approx(0.2)  # without keys: each run counts


def test_a_configuration_without_validation_gets_no_validation_score():
    config = _record()["configs"][0]
    summary = {k: v for k, v in config["summary"].items() if k != "final_val_accuracy"}
    macros = latex.config_macros("ex9_9", {**config, "name": "refit", "summary": {**summary, "verdicts": ["refit"]}})
    assert macros["ex9_9.refit.val"] == macros["ex9_9.refit.val_mean"] == latex.NO_VALUE
    assert macros["ex9_9.refit.test"] == r"90.00\,$\pm$\,1.00\,\%" and macros["ex9_9.refit.verdict"] == "refit (1 seed)"


def test_verdict_text_counts_seeds():
    assert latex.verdict_text(["good fit"] * 3) == "good fit (all 3 seeds)"
    assert latex.verdict_text(["good fit", "over-fitting", "good fit"]) == "good fit (2/3 seeds); over-fitting (1/3 seeds)"
    assert latex.verdict_text(["good fit"]) == "good fit (1 seed)"


def test_verdict_thresholds_read_back_the_recorded_rule():
    from common import metrics
    epochs = [{"val_loss": 1.0, "train_eval_score": 0.5, "val_score": 0.5}] * 4
    rule = metrics.fit_verdict(epochs, gap_tol=0.03, rise_tol=0.25, improve_tol=1e-3)["rule"]
    assert latex.verdict_thresholds(rule) == {"rise_tol": 0.25, "gap_tol": 0.03, "improve_tol": 1e-3}
    assert latex.verdict_thresholds("some other rule") == {}  # the report's macro is then missing: the build stops


def test_layer_summary_abbreviates_a_models_repr():
    import torch
    from torch import nn

    from common.segnets import SegNet
    model = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Dropout(0.25), nn.Identity(), nn.Linear(1568, 10), nn.ReLU(), nn.ReLU())
    assert latex.layer_summary(repr(model)) == ("Conv 1→8 3×3 no bias, BN, ReLU, MaxPool 2, Dropout 0.25, "
                                                "Linear 1568→10, ReLU ×2")
    net = latex.layer_summary(repr(SegNet(channels=(4, 8), skip="concat", up_kernel=4)))
    assert "ConvT 8→4 4×4/2" in net and "merge concat" in net and net.endswith("Conv 4→2 1×1")
    assert latex.layer_summary(repr(torch.nn.Sequential(torch.nn.ReLU(), torch.nn.ReLU()))) == "ReLU ×2"


def test_hyperparameter_values_are_rounded_and_private_state_left_out():
    assert latex._value_text({"lr": 0.0003999999999999993, "betas": (0.9, 0.999), "_step_count": 3,
                              "state": {"T_max": 40, "_last_lr": [0.1]}}) == "lr=0.0004, betas=[0.9, 0.999], state=T_max=40"
    assert latex._dict_text(None) == "none" and latex._dict_text("a_b") == r"a\_b"


def test_a_run_recorded_under_two_code_versions_counts_once():
    def run(key, losses, seed=0):
        return {"hyperparameters": {"lr": 0.1}, "seed": seed, "cache_key": key, "wall_time_s": 60.0,
                "history": {"epochs": [{"train_loss": x} for x in losses]}}
    records = [{"environment": {"device": "cpu"}, "configs": [{"runs": [run("old", [0.5, 0.4])]}]},
               {"environment": {"device": "cpu"}, "configs": [{"runs": [run("new", [0.5, 0.4]), run("new2", [0.5, 0.3]),
                                                                        run("new3", [0.5, 0.4], seed=1)]}]}]
    # the same hyperparameters, seed and losses under two cache keys: once; other losses or seed: another run
    assert latex.environment_macros(records)["env.total_wall_min"] == "3.0"


def test_a_short_list_of_records_also_gives_each_field_as_one_list():
    macros = dict(latex.flatten("f.x", [{"epoch": 21, "s": 1.5}, {"epoch": None, "s": 2.0}, {"epoch": 14, "s": 3.0}]))
    assert macros["f.x.0.epoch"] == "21" and macros["f.x.epoch"] == "21, n/a, 14" and macros["f.x.s"] == "1.5, 2, 3"
