"""The best segmentation model is configured as its stated rules pick from the committed validation
sweeps (tuning/*.json): changing a constant of ex2_5_best.py or a record without the other fails here."""
import argparse
import json

import pytest

import ex2_5_best
from common.models import count_weights


def test_pick_takes_the_cheapest_within_the_tolerance_of_the_best():
    tol = ex2_5_best.SELECTION_TOL
    scores = {"a": 0.90, "b": 0.93 - tol / 2, "c": 0.93, "d": 0.93 - 2 * tol}
    order = ["a", "b", "c", "d"]
    assert ex2_5_best.pick(scores, order.index) == "b"  # a is far off; b within tol of c and cheaper
    assert ex2_5_best.pick(scores, lambda n: -order.index(n)) == "c"  # d is outside the tolerance
    assert ex2_5_best.pick({"only": 0.5}, len) == "only"
    assert ex2_5_best.pick({"best": 0.5, "edge": 0.5 - tol}, ["edge", "best"].index) == "edge"  # within: >=


def test_architecture_sweep_choice_is_the_configured_network_and_epochs():
    selection = ex2_5_best._record_selection(ex2_5_best.SWEEP_RECORD, ex2_5_best.architecture_selection)
    assert "missing" not in selection, selection
    chosen = selection["candidates"][selection["chosen"]]
    assert chosen["epochs"] == ex2_5_best.EPOCHS and chosen["lr"] == ex2_5_best.LR
    assert selection["chosen"].startswith(f"c{ex2_5_best.CHANNELS[0]} res{ex2_5_best.MODEL_OPTIONS['block_depth']} ")


def _committed_selection(record, selection_fn, order, configured) -> dict:
    """What a rule picks from its committed sweep record: every candidate of ``order`` scored, and
    the pick the one ex2_5_best.py configures."""
    selection = ex2_5_best._record_selection(record, selection_fn)
    assert "missing" not in selection, selection
    assert set(selection["mean_final_val_dice"]) == set(order)
    assert selection["chosen"] == configured
    return selection


def test_stain_sweep_choice_is_the_configured_one():
    selection = _committed_selection(ex2_5_best.STAIN_RECORD, ex2_5_best.stain_selection, ex2_5_best.STAIN_ORDER,
                                     ex2_5_best.STAIN_CHOICE)
    for per_holdout in selection["mean_final_val_dice_per_holdout"].values():
        assert set(per_holdout) == {"random", "reddest"}
    assert selection["epochs"] == ex2_5_best.EPOCHS
    for effect in selection["tta_effect"].values():
        assert effect["pairs"] == 4 and 0 <= effect["pairs_better"] <= 4


def test_size_sweep_choice_is_the_configured_one():
    selection = _committed_selection(ex2_5_best.SIZE_RECORD, ex2_5_best.size_selection, ex2_5_best.SIZE_ORDER,
                                     ex2_5_best.SIZE_CHOICE)
    record = json.loads(ex2_5_best.SIZE_RECORD.read_text())
    for name, (_, epochs) in ex2_5_best.SIZE_CANDIDATES.items():  # the record ran what the script names
        assert record["candidates"][name]["epochs"] == record["candidates"][name + " + TTA"]["epochs"] == epochs
    for effect in selection["tta_effect"].values():
        assert effect["pairs"] == 4 and 0 <= effect["pairs_better"] <= 4


def test_stain_choice_names():
    assert ex2_5_best.stain_choice("base") == ("base", False)
    assert ex2_5_best.stain_choice("input norm + TTA") == ("input norm", True)
    with pytest.raises(ValueError, match="unknown stain candidate 'bluer'"):
        ex2_5_best.stain_choice("bluer")


def test_stain_rule_averages_both_holdouts_and_prefers_the_simpler():
    def record(scores):  # name -> (random, reddest) final val Dice of seeds 0 and 1
        return {"device": "cpu", "seeds": [0, 1], "epochs": 1, "holdouts": ["random", "reddest"], "red_share": {},
                "candidates": {n: {"final_val_dice": {"random": [r, r], "reddest": [d, d]}}
                               for n, (r, d) in scores.items()}}

    # best on the random hold-out alone would be "base"; over both hold-outs "stain jitter" wins clearly
    scores = {"base": (0.93, 0.86), "base + TTA": (0.93, 0.86), "stain jitter": (0.92, 0.90),
              "stain jitter + TTA": (0.92, 0.89)}
    selection = ex2_5_best.stain_selection(record(scores))
    assert selection["chosen"] == "stain jitter"
    assert selection["mean_final_val_dice"]["stain jitter"] == pytest.approx(0.91)
    assert selection["tta_effect"]["stain jitter"] == {"mean_gain": pytest.approx(-0.005), "pairs_better": 0,
                                                       "pairs": 4}
    # a gain within the tolerance does not pay for a later (more complex) candidate
    close = {"base": (0.93, 0.86), "stain jitter": (0.93, 0.86 + 1.8 * ex2_5_best.SELECTION_TOL)}
    assert ex2_5_best.stain_selection(record(close))["chosen"] == "base"  # mean gain 0.9 x tol
    with pytest.raises(ValueError, match="unknown stain candidate"):
        ex2_5_best.stain_selection(record({"base": (0.9, 0.9), "mystery": (0.95, 0.95)}))


@pytest.mark.parametrize("name", list(ex2_5_best.STAIN_CANDIDATES))
def test_stain_candidates_keep_the_chosen_network(name):
    args = argparse.Namespace(lr=1e-2, epochs=1, batch_size=10)
    spec = ex2_5_best.best_spec(args, **ex2_5_best.STAIN_CANDIDATES[name])
    assert count_weights(spec.build_model()) == 126_914  # neither stain measure adds weights


def _size_record(scores):  # name -> (weights, epochs, random, reddest) for seeds 0 and 1
    return {"device": "cuda", "seeds": [0, 1], "holdouts": ["random", "reddest"], "red_share": {},
            "candidates": {n: {"weights": w, "epochs": e, "final_val_dice": {"random": [r, r], "reddest": [d, d]}}
                           for n, (w, e, r, d) in scores.items()}}


def test_size_rule_takes_the_cheapest_within_the_tolerance_over_both_holdouts():
    tol = ex2_5_best.SELECTION_TOL
    scores = {"c16 e200": (400, 200, 0.935, 0.90), "c8 e100 + TTA": (100, 100, 0.93, 0.87),
              "c8 e100": (100, 100, 0.93, 0.86), "c16 e100": (400, 100, 0.93, 0.90)}
    selection = ex2_5_best.size_selection(_size_record(scores))
    # c16 e200 is best (0.9175); c16 e100 is 0.0025 below at half the cost (the same weights: epochs
    # decide); c8 is 0.015+ below
    assert selection["chosen"] == "c16 e100" and selection["best"] == "c16 e200"
    assert selection["best_minus_chosen"] == pytest.approx({"mean": 0.0025, "tolerance_left": tol - 0.0025,
                                                            "random": 0.005, "reddest": 0.0})
    assert selection["mean_final_val_dice_per_holdout"]["c16 e100"] == {"random": 0.93, "reddest": 0.90}
    assert selection["tta_effect"]["c8 e100"] == {"mean_gain": pytest.approx(0.005), "pairs_better": 2, "pairs": 4}
    # TTA costs no training: it is taken before a more expensive network when that is not clearly better...
    near = {"c8 e100 + TTA": (100, 100, 0.93, 0.87), "c8 e100": (100, 100, 0.93, 0.86),
            "c16 e100": (400, 100, 0.93, 0.87 + tol)}
    assert ex2_5_best.size_selection(_size_record(near))["chosen"] == "c8 e100 + TTA"
    # ...and after the same network without it, when TTA's gain is within the tolerance
    near["c8 e100 + TTA"] = (100, 100, 0.93, 0.86 + 1.8 * tol)
    near["c16 e100"] = (400, 100, 0.93, 0.86 + 1.8 * tol)
    assert ex2_5_best.size_selection(_size_record(near))["chosen"] == "c8 e100"
    with pytest.raises(ValueError, match="unknown size candidate 'c64 e1000'"):
        ex2_5_best.size_selection(_size_record({"c64 e1000": (1, 1, 0.9, 0.9)}))


def test_size_candidates_are_the_chosen_network_wider_or_longer():
    args = argparse.Namespace(lr=1e-2, epochs=1, batch_size=10)
    weights = {name: count_weights(ex2_5_best.best_spec(args, channels=channels).build_model())
               for name, (channels, _) in ex2_5_best.SIZE_CANDIDATES.items()}
    assert weights == {"c8 e100": 126_914, "c8 e200": 126_914, "c16 e100": 504_962, "c16 e150": 504_962,
                       "c16 e200": 504_962}
    assert ex2_5_best.SIZE_CANDIDATES["c8 e100"] == (ex2_5_best.CHANNELS, ex2_5_best.EPOCHS)
    assert ex2_5_best.size_choice("c16 e150 + TTA") == ("c16 e150", True)


def test_final_choice_combines_at_most_one_departure_from_the_reference():
    assert ex2_5_best.final_choice("base", "c8 e100 + TTA") == ("base", "c8 e100", True)
    assert ex2_5_best.final_choice("input norm", "c8 e100") == ("input norm", "c8 e100", False)
    assert ex2_5_best.final_choice("base + TTA", "c16 e150") == ("base", "c16 e150", True)
    with pytest.raises(ValueError, match="never validated together"):
        ex2_5_best.final_choice("stain jitter", "c16 e200")


def test_postprocess_candidates_are_listed_nearest_the_plain_prediction_first():
    def distance(name):
        threshold, fill_holes = ex2_5_best.POSTPROCESS_CANDIDATES[name]
        return (threshold != 0.5) + fill_holes, round(abs(threshold - 0.5), 6), threshold

    assert ex2_5_best.POSTPROCESS_ORDER == sorted(ex2_5_best.POSTPROCESS_ORDER, key=distance)
    assert ex2_5_best.POSTPROCESS_ORDER[0] == "p>0.5"  # the arg-max: how every other exercise predicts
    for name, (threshold, fill_holes) in ex2_5_best.POSTPROCESS_CANDIDATES.items():
        assert name == f"p>{threshold}" + (" + fill holes" if fill_holes else "")


def _postprocess_record(scores):  # name -> (random, reddest) for seeds 0 and 1
    return {"device": "cpu", "seeds": [0, 1], "holdouts": ["random", "reddest"], "red_share": {},
            "predictor": {"tta": True},
            "candidates": {n: {"final_val_dice": {"random": [r, r], "reddest": [d, d]}} for n, (r, d) in scores.items()}}


def test_postprocess_rule_takes_the_nearest_candidate_within_the_tolerance():
    tol = ex2_5_best.SELECTION_TOL
    scores = {"p>0.5": (0.93, 0.87), "p>0.5 + fill holes": (0.93, 0.87 + tol), "p>0.4": (0.93, 0.87 + 1.5 * tol),
              "p>0.3": (0.925, 0.87 + 3 * tol), "p>0.4 + fill holes": (0.93, 0.87 + 3 * tol)}
    selection = ex2_5_best.postprocess_selection(_postprocess_record(scores))
    # best: p>0.4 + fill holes (mean 0.9 + 1.5 tol); p>0.4 is 0.75 tol below it, p>0.5 + fill holes 1 tol
    assert selection["best"] == "p>0.4 + fill holes" and selection["chosen"] == "p>0.5 + fill holes"
    assert selection["best_minus_chosen"]["mean"] == pytest.approx(tol)
    assert selection["tta_effect"] == {} and selection["predictor"] == {"tta": True}
    scores["p>0.5 + fill holes"] = (0.93, 0.87 + 0.9 * tol)  # now just outside: the next nearest, p>0.4
    assert ex2_5_best.postprocess_selection(_postprocess_record(scores))["chosen"] == "p>0.4"
    assert ex2_5_best.postprocess_selection(_postprocess_record({"p>0.5": (0.9, 0.9), "p>0.7": (0.9, 0.9)}))[
        "chosen"] == "p>0.5"
    with pytest.raises(ValueError, match="unknown post-processing candidate 'p>0.45'"):
        ex2_5_best.postprocess_selection(_postprocess_record({"p>0.45": (0.9, 0.9)}))


def test_batchnorm_candidates_are_listed_nearest_the_training_statistics_first():
    assert ex2_5_best.BATCHNORM_CANDIDATES[ex2_5_best.BATCHNORM_ORDER[0]] == (None, 0.0)  # as every exercise predicts
    scopes = [ex2_5_best.BATCHNORM_CANDIDATES[n][0] for n in ex2_5_best.BATCHNORM_ORDER]
    assert scopes == [None, "image", "image", "image", "set"]  # the per-set prediction, depending on other images, last
    image_weights = [w for scope, w in ex2_5_best.BATCHNORM_CANDIDATES.values() if scope == "image"]
    assert image_weights == sorted(image_weights)  # the smallest change first


def test_batchnorm_rule_takes_the_first_candidate_within_the_tolerance():
    tol = ex2_5_best.SELECTION_TOL
    scores = {"training statistics": (0.93, 0.87), "per image 0.25": (0.93, 0.87 + 1.5 * tol),
              "per image 0.5": (0.93, 0.87 + 3 * tol), "per image 1": (0.92, 0.87 + 3 * tol),
              "per set": (0.93, 0.87 + 4 * tol)}
    selection = ex2_5_best.batchnorm_selection(_postprocess_record(scores))
    # best: per set (mean 0.9 + 2 tol); per image 0.5 is 0.5 tol below it, per image 0.25 1.25 tol
    assert (selection["best"], selection["chosen"]) == ("per set", "per image 0.5")
    scores["per image 0.5"] = (0.925, 0.87)
    assert ex2_5_best.batchnorm_selection(_postprocess_record(scores))["chosen"] == "per set"
    with pytest.raises(ValueError, match="unknown batch-norm candidate 'per batch'"):
        ex2_5_best.batchnorm_selection(_postprocess_record({"per batch": (0.9, 0.9)}))


def test_postprocess_sweep_choice_is_the_configured_one_and_its_reference_is_the_stain_sweeps():
    selection = _committed_selection(ex2_5_best.POSTPROCESS_RECORD, ex2_5_best.postprocess_selection,
                                     ex2_5_best.POSTPROCESS_ORDER, ex2_5_best.POSTPROCESS_CHOICE)
    stain, size, tta = ex2_5_best.final_choice(ex2_5_best.STAIN_CHOICE, ex2_5_best.SIZE_CHOICE)
    assert selection["predictor"] == {"stain": stain, "size": size, "channels": list(ex2_5_best.SIZE_CANDIDATES[size][0]),
                                      "epochs": ex2_5_best.SIZE_CANDIDATES[size][1], "tta": tta}
    # the same CPU runs as the stain sweep's chosen candidate: p>0.5 (the arg-max) reproduces its scores
    post = json.loads(ex2_5_best.POSTPROCESS_RECORD.read_text())
    stain_record = json.loads(ex2_5_best.STAIN_RECORD.read_text())
    assert post["device"] == stain_record["device"] == "cpu"
    assert post["candidates"]["p>0.5"]["final_val_dice"] == \
        stain_record["candidates"][stain + ex2_5_best.TTA_SUFFIX * tta]["final_val_dice"]


def test_batchnorm_sweep_choice_is_the_configured_one_and_its_reference_is_the_postprocess_sweeps():
    _committed_selection(ex2_5_best.BATCHNORM_RECORD, ex2_5_best.batchnorm_selection, ex2_5_best.BATCHNORM_ORDER,
                         ex2_5_best.BATCHNORM_CHOICE)
    record = json.loads(ex2_5_best.BATCHNORM_RECORD.read_text())
    post = json.loads(ex2_5_best.POSTPROCESS_RECORD.read_text())
    assert record["code"]["uncommitted_changes"] is False  # ran the pre-registered, committed code
    assert record["predictor"] == post["predictor"] and record["device"] == post["device"] == "cpu"
    # the same networks: with the training statistics, the post-processing sweep's chosen prediction
    assert record["candidates"]["training statistics"]["final_val_dice"] == \
        post["candidates"][ex2_5_best.POSTPROCESS_CHOICE]["final_val_dice"]
