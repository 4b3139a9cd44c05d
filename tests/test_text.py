"""common.text: numbers as the scripts print them and the report quotes them, on hand-computed values:
accuracy in percent with 2 decimals (differences in points), Dice and boundary F1 with 3, HD95 in pixels
with 1; a minus sign is "−" (U+2212), never a hyphen."""
import pytest

from common import metrics, text

MINUS = "\u2212"
A, B = [0.812, 0.804, 0.829, 0.817, 0.801], [0.829, 0.811, 0.842, 0.826, 0.824]  # b higher in every pair: +0.0138


@pytest.mark.parametrize("name, value, expected", [
    ("accuracy", 0.97123, "97.12 %"), ("accuracy", 1.0, "100.00 %"), ("accuracy", 0.98855, "98.86 %"),
    ("dice", 0.348, "0.348"), ("dice", 0.8075, "0.807"), ("boundary_f1_2px", 0.8, "0.800"),
    ("hd95", 12.34, "12.3 px"), ("hd95", 0.0, "0.0 px")])
def test_a_score_prints_at_the_reports_precision(name, value, expected):
    assert text.score(name, value) == expected


@pytest.mark.parametrize("name, value, expected", [
    ("accuracy", 0.0031, "+0.31 points"), ("accuracy", -0.0031, f"{MINUS}0.31 points"), ("accuracy", 0.0, "+0.00 points"),
    ("dice", 0.012, "+0.012"), ("dice", -0.012, f"{MINUS}0.012"), ("hd95", -2.04, f"{MINUS}2.0 px"),
    ("hd95", 1.26, "+1.3 px"),
    # a difference that rounds to zero keeps its side with more decimals (an interval's bound near 0)
    ("dice", 0.00042, "+0.0004"), ("dice", -0.000042, f"{MINUS}0.00004"), ("dice", 0.0000004, "+0.00000"),
    ("dice", -0.0000004, f"{MINUS}0.00000"), ("hd95", -0.0004, f"{MINUS}0.000 px")])
def test_a_difference_is_signed_in_the_scores_units(name, value, expected):
    assert text.signed(name, value) == expected
    assert "-" not in text.signed(name, value)  # a minus sign, not a hyphen
    assert text.signed(name, value, unit=False) == expected.removesuffix(" points").removesuffix(" px")


def test_mean_and_std_print_to_the_same_decimals():
    # 0.9864, 0.9876, 0.9888: mean 0.9876, sample std 0.0012
    assert text.mean_std("accuracy", [0.9864, 0.9876, 0.9888]) == "98.76 ± 0.12 %"
    assert text.mean_std("dice", [0.80234, 0.81234, 0.82234]) == "0.812 ± 0.010"  # std 0.01
    assert text.mean_std("hd95", [10.0, 12.0]) == "11.0 ± 1.4 px"  # std sqrt(2)
    assert text.mean_std("dice", [0.7]) == "0.700" and text.mean_std("accuracy", [0.9864]) == "98.64 %"  # one seed


def test_a_comparison_prints_as_its_outcome_and_a_table_row_with_the_interval():
    better = metrics.compare(A, B, score="accuracy")  # +1.38 points, interval +0.58 to +2.18
    assert text.outcome(better) == "better" and text.relation(better) == "better than"
    # naming the table row it states: marked, for the report to resolve (common.report.resolve_claims)
    assert text.relation(better, "B vs A") == "⟨B vs A|better than⟩" and text.outcome(better, "x") == "⟨x|better⟩"
    # not distinguishable: marked too (the report resolves every mark the same way)
    assert text.relation(metrics.compare(A, A, score="dice"), "same") == "⟨same|not distinguishable from⟩"
    # a marked predicate groups only once its mark is resolved (common.report.exercise_macros)
    assert text.grouped([("a", text.relation(better, "row a") + " x"), ("b", "better than x"),
                         ("c", "not distinguishable from x")]) == \
        "a is ⟨row a|better than⟩ x, b is better than x, and c is not distinguishable from x"
    assert text.row("B vs A", better) == {"row": "B vs A", "a": "81.26 ± 1.11 %", "b": "82.64 ± 1.11 %",
                                          "difference": "+1.38", "ci": "+0.58 to +2.18", "images": "–",
                                          "outcome": "better"}
    worse = metrics.compare(B, A, score="dice")
    assert text.outcome(worse) == "worse" and text.relation(worse) == "worse than"
    assert (text.row("", worse)["difference"], text.row("", worse)["ci"]) == (f"{MINUS}0.014", f"{MINUS}0.022 to {MINUS}0.006")
    unresolved = metrics.compare(A, [0.83, 0.79, 0.83, 0.81, 0.80], score="dice")  # -0.001, -0.015 to +0.014
    assert text.relation(unresolved) == "not distinguishable from"
    assert text.row("", unresolved)["ci"] == f"{MINUS}0.015 to +0.014"
    single = metrics.compare([0.8], [0.9], score="accuracy")  # one seed pair: no interval
    assert text.outcome(single) == "not distinguishable" and text.row("", single)["ci"] == "–"
    hd95 = metrics.compare([10.0, 12.0, 11.0], [8.0, 10.1, 8.9], score="hd95", lower_is_better=True)
    assert text.outcome(hd95) == "better" and text.row("", hd95)["difference"] == f"{MINUS}2.0"
    cells = text.cells("acc", better)
    assert cells["acc_relation"] == "better than" and cells["acc_ci"] == "+0.58 to +2.18" and "acc_row" not in cells


def test_a_table_row_counts_the_seeds_whose_image_test_agrees_and_disagrees():
    a_images = [[0.8] * 20, [0.8] * 20]  # seed 0: b higher on every image; seed 1: lower on every image
    b_images = [[0.9] * 10 + [0.85] * 10, [0.7] * 20]
    c = metrics.compare([0.80, 0.80], [0.875, 0.70], a_images, b_images, score="dice")
    assert text.row("", c)["images"] == "1 / 1"  # the mean difference's sign: +; one seed for, one against


def test_epochs_to_a_threshold_print_with_their_count_and_outcome():
    sooner = {"a_epochs": [9, 10, 12, None], "b_epochs": [3, 4, 4, 5], "both_reach": 3, "difference": -6.667,
              "ci_low": -9.5, "ci_high": -3.8, "outcome": "sooner"}
    row = text.epochs_row("epochs", sooner)
    assert (row["a"], row["b"], row["difference"], row["ci"]) == ("10.3 (3 of 4)", "4.0 (4 of 4)", f"{MINUS}6.7 (3 pairs)",
                                                                   f"{MINUS}9.5 to {MINUS}3.8")
    assert row["outcome"] == "sooner" and text.when(sooner, "SGD") == "sooner than SGD"
    wide = {**sooner, "ci_low": -15.0, "ci_high": 1.2, "outcome": "unresolved"}
    assert text.epochs_row("", wide)["outcome"] == "not distinguishable"
    assert text.when(wide, "SGD") == "neither measurably sooner nor later than SGD"
    never = {"a_epochs": [None, None], "b_epochs": [None, 7], "both_reach": 0, "pairs": 2, "difference": float("nan"),
             "ci_low": float("nan"), "ci_high": float("nan"), "outcome": "unresolved"}
    row = text.epochs_row("", never)
    assert (row["a"], row["b"], row["difference"], row["outcome"]) == ("never (0 of 2)", "7.0 (1 of 2)", "–",
                                                                       "too few pairs")
    assert text.when(never, "SGD") == "too rarely alongside SGD to compare the epochs (0 of 2 pairs)"
    one_pair = {**never, "a_epochs": [5, None], "both_reach": 1, "difference": 2.0}  # a difference, no interval
    assert (text.epochs_row("", one_pair)["difference"], text.epochs_row("", one_pair)["outcome"]) == ("+2.0 (1 pair)", "too few pairs")


def test_a_timing_is_faster_or_slower_only_where_the_sign_test_says_so():
    assert text.speed({"speedup": 1.333, "p": 0.0156}) == "1.33× faster"
    assert text.speed({"speedup": 0.8, "p": 0.0156}) == "1.25× slower"  # 1 / 0.8
    assert text.speed({"speedup": 2.0, "p": 0.05}) == "about as fast"  # p < 0.05 is needed
    assert text.speed({"speedup": 0.5, "p": 0.45}) == "about as fast"
    # the direction alone, as the replication check compares it
    assert [text.speed_outcome({"speedup": s, "p": p}) for s, p in ((1.333, 0.0156), (0.8, 0.0156), (2.0, 0.05))] == \
        ["faster", "slower", "about as fast"]
    assert text.speed({"speedup": 1.333, "p": 0.0156}, relation=True) == "1.33× faster than"
    assert text.speed({"speedup": 0.5, "p": 0.45}, relation=True) == "about as fast as"


@pytest.mark.parametrize("seconds, expected", [(0.00096, "0.960"), (0.0042, "4.20"), (0.00155, "1.55"), (0.0099949, "9.99"),
                                               (0.0099951, "10.0"), (0.012, "12.0"), (0.0123, "12.3"), (0.0456, "45.6"),
                                               (0.0997, "99.7"), (0.09996, "100"), (0.153, "153"), (0.1234, "123")])
def test_milliseconds_to_three_significant_digits(seconds, expected):
    assert text.ms(seconds) == expected


@pytest.mark.parametrize("seconds", [0.0997, 1.5])
def test_milliseconds_never_print_in_exponent_notation(seconds):
    assert "e" not in text.ms(seconds)


def test_outcomes_of_several_subjects_read_as_one_sentence():
    assert text.join(["a"]) == "a" and text.join(["a", "b"]) == "a and b" and text.join(["a", "b", "c"]) == "a, b and c"
    pairs = [("batch norm", "better than the baseline"), ("tanh", "not distinguishable from the baseline"),
             ("augmentation", "better than the baseline")]
    assert text.grouped(pairs) == ("batch norm and augmentation are better than the baseline, and tanh is not "
                                   "distinguishable from the baseline")
    assert text.grouped([("a", "x"), ("b", "x")]) == "a and b are x" and text.grouped([("a", "x")]) == "a is x"
    assert text.grouped([("a", "x"), ("b", "y"), ("c", "z")]) == "a is x, b is y, and c is z"


def test_fit_comment_names_each_most_frequent_verdict_once_with_what_the_curves_show():
    def summary(*verdicts):
        return {"verdicts": list(verdicts), "verdict_details": [
            {"verdict": v, "states": {"rise": "exceeded"}, "borderline": [], "why": v} for v in verdicts]}

    over = summary("over-fitting", "over-fitting")
    good = summary("good fit", "good fit", "over-fitting")  # the verdict most seeds share counts: "mostly"
    assert text.fit_comment([("a", over, "accuracy")]) == "the network over-fits (its validation loss rises again after its minimum)"
    assert text.fit_comment([("a (Ex 1.2)", over, "accuracy"), ("b", good, "accuracy")]) == \
        "a over-fits (its validation loss rises again after its minimum); b mostly fits well"
    assert text.fit_comment([("a", good, "accuracy"), ("b", good, "accuracy")]) == "both networks mostly fit well"
    assert text.fit_comment([("a", over, "dice")] * 3) == "all 3 networks over-fit"
    # the networks of one verdict together
    assert text.fit_comment([("a", good, "accuracy"), ("b, c", over, "accuracy"), ("d", over, "accuracy")]) == \
        "a mostly fits well; “b, c” and d over-fit"
    # no verdict that most seeds share (the most frequent of five has two): none is claimed
    mixed = summary("over-fitting", "over-fitting", "borderline", "borderline", "good fit")
    assert text.fit_comment([("a", good, "accuracy"), ("b", over, "accuracy"), ("c", mixed, "accuracy")]) == \
        "a mostly fits well; b over-fits; the fit of c varies between seeds"
    assert text.fit_comment([("a", mixed, "accuracy")]) == "the fit of the network varies between seeds"
    near = {"verdicts": ["borderline"], "verdict_details": [{"verdict": "borderline", "borderline": ["gap", "floor"]}]}
    assert text.fit_comment([("a", near, "dice")]) == "the network is borderline"
    assert text.fit_comment([("NumPy (ours)", over, "accuracy"), ("PyTorch", good, "accuracy")]) == \
        "NumPy over-fits (its validation loss rises again after its minimum); PyTorch mostly fits well"
    # where the seeds recorded the epoch of their lowest validation loss, the reason points at it (the median)
    dated = {"verdicts": ["over-fitting"] * 3, "verdict_details": [
        {"verdict": "over-fitting", "states": {"rise": "exceeded"}, "best_val_loss_epoch": e} for e in (8, 10, 13)]}
    assert text.fit_comment([("a", dated, "accuracy")]) == \
        "the network over-fits (its validation loss bottoms out near epoch 10, then rises)"
    assert text.fit_verb("borderline", True, mostly=True) == "is mostly borderline"
    assert text.fit_verb("not converged", False, mostly=True) == "have mostly not converged"
    assert text.fit_verb("over-fitting", True, mostly=True) == "mostly over-fits" and text.fit_verb("good fit", False) == "fit well"
    assert text.fit_comment([]) == ""


def test_prose_names_drop_a_closing_bracket_unless_two_would_read_alike_and_name_a_change_as_its_network():
    assert text.prose_names(["NumPy (our own)", "baseline (Ex 1.2)", "a (b (c))", "depth 3, plain"]) == \
        ["NumPy", "the baseline", "a (b (c))", "“depth 3, plain”"]
    assert text.prose_names(["no batch norm", "+ weight decay 0.001"]) == \
        ["the network without batch norm", "the network with weight decay 0.001"]
    assert text.prose_names(["PyTorch (CPU)", "PyTorch (CUDA)"]) == ["PyTorch (CPU)", "PyTorch (CUDA)"]
    assert text.prose_names(["SGD, lr 0.1", "Adam, lr 0.001"]) == ["SGD", "Adam"]  # the rate is in the table
    assert text.capitalised("“b, c” fit") == "“B, c” fit" and text.capitalised("+ weight decay") == "+ Weight decay"
    assert text.capitalised("") == ""


def test_a_score_against_the_target_an_exercise_asks_for():
    assert text.against_target("accuracy", [0.985, 0.99], 0.98) == "above the 98.00 % asked for (every seed)"
    assert text.against_target("accuracy", [0.975, 0.99, 0.99], 0.98) == \
        "above the 98.00 % asked for on average (2 of 3 seeds)"
    assert text.against_target("dice", [0.6, 0.7], 0.7) == "below the 0.700 asked for"  # a mean at the target: not above


def test_the_reason_for_a_fit_verdict_is_what_most_seeds_with_that_verdict_show():
    def detail(verdict, rise=False, borderline=()):
        return {"verdict": verdict, "states": {"rise": "exceeded" if rise else "clear"}, "borderline": list(borderline)}

    def summary(*details):
        return {"verdicts": [d["verdict"] for d in details], "verdict_details": list(details)}

    risen = summary(detail("over-fitting", rise=True), detail("over-fitting", rise=True), detail("good fit"))
    assert text.fit_reason(risen) == "its validation loss rises again after its minimum"
    gap = summary(detail("over-fitting"), detail("over-fitting"), detail("over-fitting", rise=True))
    assert text.fit_reason(gap) == "its training score stays above its validation score"  # the rise decided 1 of 3
    assert text.fit_reason(summary(detail("under-fitting"))) == "its training score stays low"
    assert text.fit_reason(summary(detail("not converged"))) == "its validation score still rises at the end"
    assert text.fit_reason(summary(detail("borderline", borderline=["rise"]))) == ""
    assert text.fit_reason(summary(detail("good fit"), detail("borderline", borderline=["gap"]), detail("good fit"))) == ""
    assert text.fit_reason(summary(detail("one class"))) == ""


def test_a_plain_row_has_rows_layout_with_dashes_where_it_has_no_difference():
    assert text.plain_row("ms per step", "438", "463", "1.06× slower") == {
        "row": "ms per step", "a": "438", "b": "463", "difference": "–", "ci": "–", "images": "–",
        "outcome": "1.06× slower"}
    assert set(text.plain_row("x", "1", "2", "y")) == set(text.row("x", metrics.compare([0.1, 0.2], [0.2, 0.3], score="dice")))


def test_p_values_to_two_decimals_and_small_ones_as_a_bound():
    assert text.p_value(0.366) == "p = 0.37" and text.p_value(0.05) == "p = 0.05"
    assert text.p_value(0.004) == "p < 0.01" and text.p_value(0.0) == "p < 0.01"
