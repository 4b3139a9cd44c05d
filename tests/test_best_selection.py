"""The best segmentation model is configured as its stated rules pick from the committed validation
sweeps (tuning/*.json): changing a constant of ex2_5_best.py or a record without the other fails here."""
import argparse

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


def test_architecture_sweep_choice_is_the_configured_network_and_epochs():
    selection = ex2_5_best._selection()
    assert "missing" not in selection, selection
    chosen = selection["candidates"][selection["chosen"]]
    assert chosen["epochs"] == ex2_5_best.EPOCHS and chosen["lr"] == ex2_5_best.LR
    assert selection["chosen"].startswith(f"c{ex2_5_best.CHANNELS[0]} res{ex2_5_best.MODEL_OPTIONS['block_depth']} ")


def test_stain_sweep_choice_is_the_configured_one():
    selection = ex2_5_best._stain_selection()
    assert "missing" not in selection, selection
    assert set(selection["mean_final_val_dice"]) == set(ex2_5_best.STAIN_ORDER)
    for per_holdout in selection["mean_final_val_dice_per_holdout"].values():
        assert set(per_holdout) == {"random", "reddest"}
    assert selection["chosen"] == ex2_5_best.STAIN_CHOICE
    assert selection["epochs"] == ex2_5_best.EPOCHS
    assert ex2_5_best.TTA == ex2_5_best.STAIN_CHOICE.endswith(" + TTA")


@pytest.mark.parametrize("name", list(ex2_5_best.STAIN_CANDIDATES))
def test_stain_candidates_keep_the_chosen_network(name):
    args = argparse.Namespace(lr=1e-2, epochs=1, batch_size=10)
    spec = ex2_5_best.best_spec(args, **ex2_5_best.STAIN_CANDIDATES[name])
    assert count_weights(spec.build_model()) == 126_914  # neither stain measure adds weights
