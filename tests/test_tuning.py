"""tuning/: every selection round's rule recomputed from its committed record (the choice must be the
*_CHOICE constant, and ex2_5_best.py configured with it), the rules on hand-made records, the
predictions the later rounds compared (batch-norm statistics, thresholds, hole filling), and a
--quick sweep."""
import argparse
import json
import math
import types

import numpy as np
import pytest
import torch
from torch import nn

import ex2_2_regularization
import ex2_4_residual
import ex2_5_best
from common import evaluation, report, train
from common.data import REPO_ROOT
from common.models import SegNet, count_weights
from helpers import stored_runs
from tuning import prediction, selection, sweep

TOL = selection.TOLERANCE


def sweep_ctx(*, quick: bool = False, lr: float = sweep.LR, batch_size: int = sweep.BATCH_SIZE):
    """What ``sweep.config`` reads of a sweep's ``common.cli.Context``: the command line's learning rate and
    batch size (ex2_5_best.py's defaults), and --quick."""
    return types.SimpleNamespace(args=argparse.Namespace(lr=lr, batch_size=batch_size, epochs=sweep.EPOCHS),
                                 quick=quick)


class Trained(Exception):
    """Raised in place of training: carries the configuration a script asked to train."""


@pytest.fixture(scope="module")
def ex2_5_best_config(tmp_path_factory) -> dict:
    """The configuration ex2_5_best.py trains with its default command line, as its main() builds it
    (stopped at its first run: no data read, nothing trained)."""
    def run(name, config, *args, **kwargs):
        raise Trained(config)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(ex2_5_best.warwick, "load_splits", lambda *args, **kwargs: None)
        patch.setattr(ex2_5_best.train, "run", run)
        with pytest.raises(Trained) as trained:
            ex2_5_best.main(["--device", "cpu", "--out-dir", str(tmp_path_factory.mktemp("ex2_5")), "--no-progress"])
    return trained.value.args[0]


def test_the_networks_without_batch_norm_train_at_the_learning_rate_chosen_for_them():
    """The convergence sweep's choice (tuning/convergence_report.py, recomputed from the committed runs and as
    committed in choices.json) is what the scripts configure: for each kind the rate with the best final
    validation Dice."""
    from tuning import convergence_report

    committed = json.loads((REPO_ROOT / "tuning" / "convergence" / "choices.json").read_text())
    for family in ("segnet_nobn", "segnet_depth3_nobn"):
        choice = convergence_report.choose(convergence_report.RUNS_DIR / family)
        assert json.loads(json.dumps(choice, default=float)) == committed[family]
    depth1, depth3 = committed["segnet_nobn"], committed["segnet_depth3_nobn"]
    assert ex2_2_regularization.NO_BN_LR == depth1["lr"] and ex2_2_regularization.NO_BN_INIT == "he"
    assert depth1["rows"][depth1["candidate"]]["final"] == max(row["final"] for row in depth1["rows"].values())
    # Ex 2.4's residual blocks start as their shortcuts: the sweep's kind "residual_zero"
    assert ex2_4_residual.NO_BN_INIT == {"plain": "he", "residual": "he_zero"}
    assert ex2_4_residual.NO_BN_LR == {"plain": depth3["lr_per_kind"]["plain"],
                                       "residual": depth3["lr_per_kind"]["residual_zero"]}
    for kind, name in depth3["chosen_per_kind"].items():
        assert depth3["rows"][name]["final"] == max(row["final"] for n, row in depth3["rows"].items()
                                                    if report.candidate_kind(n) == kind)
    assert ex2_4_residual.DEPTH1_NO_BN_LR == ex2_2_regularization.NO_BN_LR  # Ex 2.4's depth-1 reference is Ex 2.2's


def test_ex2_4_trains_without_batch_norm_with_the_schedule_its_warm_up_check_kept():
    """tuning/nobn_warmup.json: per kind, the schedule with the higher mean final validation Dice over Ex 2.4's seeds,
    with its runs stuck at one class counted; Ex 2.4 trains that schedule."""
    from tuning import nobn_warmup

    record = json.loads((REPO_ROOT / "tuning" / "nobn_warmup.json").read_text())
    assert record["seeds"] == list(range(ex2_4_residual.NO_BN_SEEDS)) and record["epochs"] == ex2_4_residual.EPOCHS
    ex2_4 = ex2_4_residual.segnet_config(types.SimpleNamespace(lr=ex2_4_residual.LR, epochs=ex2_4_residual.EPOCHS,
                                                               batch_size=ex2_4_residual.BATCH_SIZE))
    schedule = ex2_4["schedule"]
    for kind in ("plain", "residual"):  # the check's networks are Ex 2.4's, so its cosine runs are Ex 2.4's own
        assert nobn_warmup.config(kind, schedule["class"], ex2_4_residual.EPOCHS, ex2_4_residual.BATCH_SIZE) == \
            ex2_4_residual.deeper(ex2_4, ex2_4_residual.DEPTH, kind == "residual", batch_norm=False)
    for kind, rows in record["kinds"].items():
        assert record["chosen"][kind] == max(rows, key=lambda s: rows[s]["mean"]) == schedule["class"]
        assert rows[schedule["class"]]["lr"] == ex2_4_residual.NO_BN_LR[kind]
        assert rows[schedule["class"]]["init"] == ex2_4_residual.NO_BN_INIT[kind]
        for row in rows.values():
            assert len(row["final_val_dice"]) == ex2_4_residual.NO_BN_SEEDS and 0 <= row["stuck"] <= ex2_4_residual.NO_BN_SEEDS


def test_a_candidates_kind_is_its_name_before_the_setting():
    kinds = {name: report.candidate_kind(name) for name in
             ("residual_zero_lr0.003", "residual_lr0.01", "plain_lr1e-04", "lr0.2_batch128", "lr0.01_e80", "wd0.001",
              "plain_e40", "e80")}
    assert kinds == {"residual_zero_lr0.003": "residual_zero", "residual_lr0.01": "residual", "plain_lr1e-04": "plain",
                     "lr0.2_batch128": "", "lr0.01_e80": "", "wd0.001": "", "plain_e40": None, "e80": None}


def test_ex2_2_weight_decay_is_the_strength_chosen_on_validation():
    from tuning import convergence_report

    choice = convergence_report.choose(convergence_report.RUNS_DIR / "segnet_wd")
    committed = json.loads((REPO_ROOT / "tuning" / "convergence" / "choices.json").read_text())["segnet_wd"]
    assert json.loads(json.dumps(choice, default=float)) == committed
    assert ex2_2_regularization.WEIGHT_DECAY == choice["weight_decay"]
    assert choice["rows"][choice["candidate"]]["final"] == max(row["final"] for row in choice["rows"].values())
    assert len(choice["rows"]) == 3  # three strengths tried


# --- the sweeps train ex2_5_best.py's configuration ----------------------------------------------------

def test_sweep_restates_ex2_5_best_configuration(ex2_5_best_config):
    """tuning/ imports no exercise script: sweep.py restates ex2_5_best.py's configuration, and the two agree."""
    assert sweep.UNET == ex2_5_best.UNET and sweep.LR == ex2_5_best.LR
    assert sweep.BATCH_SIZE == ex2_5_best.BATCH_SIZE and sweep.EPOCHS == ex2_5_best.EPOCHS
    assert selection.DIHEDRAL == ex2_5_best.DIHEDRAL and selection.BASE == ex2_5_best.UNET["channels"]
    assert ex2_5_best_config["schedule"] == {"class": "OneCycleLR"} and ex2_5_best_config["augment"] == selection.DIHEDRAL
    assert ex2_5_best_config["optimizer"] == {"class": "Adam", "lr": ex2_5_best.LR}
    # the whole configuration: what a sweep trains with no changes is what ex2_5_best.py trains
    assert sweep.config(sweep_ctx(), sweep.EPOCHS) == ex2_5_best_config
    defaults = sweep.parser(None).parse_args([])
    assert (defaults.epochs, defaults.batch_size, defaults.lr) == (ex2_5_best.EPOCHS, ex2_5_best.BATCH_SIZE,
                                                                 ex2_5_best.LR)


def test_sweep_config_changes_what_a_candidate_says_and_nothing_else():
    ctx = sweep_ctx(lr=0.02, batch_size=4)
    base = sweep.config(ctx, 150)
    assert (base["epochs"], base["optimizer"]["lr"], base["batch_size"]) == (150, 0.02, 4)  # the command line's lr
    changed = sweep.config(ctx, 150, 3e-3, augment=None, channels=selection.WIDE, residual=False)
    assert changed == {**base, "optimizer": {"class": "Adam", "lr": 3e-3}, "augment": None,
                       "model": {**sweep.UNET, "channels": selection.WIDE, "residual": False}}
    assert sweep.UNET["channels"] == selection.BASE and ctx.args.lr == 0.02  # neither is changed
    assert sweep.config(sweep_ctx(quick=True), 150)["epochs"] == 1  # --quick: one epoch, whatever the candidate's


@pytest.mark.parametrize("candidate", [*(f"architecture: {n}" for n in selection.ARCHITECTURE),
                                       *(f"stain: {n}" for n in selection.STAIN), *(f"size: {n}" for n in selection.SIZE)])
def test_every_candidate_of_a_sweep_builds(candidate):
    """Each candidate's changes name options of the U-Net or an augmentation that exist."""
    round_, name = candidate.split(": ", 1)
    ctx = sweep_ctx()
    if round_ == "architecture":
        epochs, lr, options = selection.ARCHITECTURE[name]
        config = sweep.config(ctx, epochs, lr, **options)
    elif round_ == "stain":
        config = sweep.config(ctx, ctx.args.epochs, **selection.STAIN[name])
    else:
        channels, epochs = selection.SIZE[name]
        config = sweep.config(ctx, epochs, channels=channels)
    model, optimizer, scheduler, loss, transform = train.build(config, 9, torch.device("cpu"))
    assert isinstance(model, SegNet) and type(scheduler) is torch.optim.lr_scheduler.OneCycleLR
    assert transform is not None


# --- the rule's core ---------------------------------------------------------------------------------

def test_pick_takes_the_cheapest_within_the_tolerance_of_the_best():
    scores = {"a": 0.90, "b": 0.93 - TOL / 2, "c": 0.93, "d": 0.93 - 2 * TOL}
    order = ["a", "b", "c", "d"]
    assert selection.pick(scores, order.index) == "b"  # a is far off; b within the tolerance of c and cheaper
    assert selection.pick(scores, lambda n: -order.index(n)) == "c"  # d is outside the tolerance
    assert selection.pick({"only": 0.5}, len) == "only"
    assert selection.pick({"best": 0.5, "edge": 0.5 - TOL / 2}, ["edge", "best"].index) == "edge"


# --- each round recomputed from its committed record -----------------------------------------------

def test_every_round_chooses_its_configured_candidate():
    chosen = {name: s["chosen"] for name, s in selection.selections().items()}
    assert chosen == {"architecture": selection.ARCHITECTURE_CHOICE, "stain": selection.STAIN_CHOICE,
                      "size": selection.SIZE_CHOICE, "postprocess": selection.POSTPROCESS_CHOICE,
                      "batchnorm": selection.BATCHNORM_CHOICE}


def test_the_architecture_round_chose_the_configured_network_and_epochs():
    sweep_record = selection.record("seg_best_sweep")
    assert set(sweep_record["candidates"]) == set(selection.ARCHITECTURE)
    chosen = selection.architecture_selection(sweep_record)
    means = chosen["mean_final_val_dice"]
    assert means[chosen["chosen"]] >= max(means.values()) - TOL  # within the tolerance of the best
    candidate = sweep_record["candidates"][selection.ARCHITECTURE_CHOICE]
    epochs, lr, options = selection.ARCHITECTURE[selection.ARCHITECTURE_CHOICE]
    assert (candidate["epochs"], candidate["lr"]) == (epochs, lr) and options == {}  # ex2_5_best's network as it is
    assert lr == ex2_5_best.LR and ex2_5_best.UNET["block_depth"] == 2 and ex2_5_best.UNET["residual"]
    assert ex2_5_best.UNET["channels"][0] == 8  # "c8 res2"


def _holdout_round(name, order) -> dict:
    sweep_record = selection.record(name)
    assert list(sweep_record["candidates"]) == list(order) and sweep_record["holdouts"] == ["random", "reddest"]
    for row in sweep_record["candidates"].values():
        assert set(row["final_val_dice"]) == {"random", "reddest"}
        assert all(len(v) == len(sweep_record["seeds"]) for v in row["final_val_dice"].values())
    return sweep_record


def test_the_stain_round_chose_no_stain_measure_and_ex2_5_best_uses_none(ex2_5_best_config):
    sweep_record = _holdout_round("seg_stain_sweep", selection.STAIN_ORDER)
    chosen = selection.holdout_selection(sweep_record, selection.STAIN_ORDER.index)
    assert chosen["chosen"] == selection.STAIN_CHOICE
    for effect in chosen["tta_effect"].values():
        assert effect["pairs"] == 4 and 0 <= effect["pairs_better"] <= 4
    # ex2_5_best.py trains the chosen candidate: the same network and augmentation as its own configuration
    options = selection.STAIN[selection.STAIN_CHOICE.removesuffix(selection.TTA)]
    assert sweep.config(sweep_ctx(), ex2_5_best.EPOCHS, **options) == ex2_5_best_config


def test_the_size_round_chose_the_configured_width_epochs_and_tta():
    sweep_record = _holdout_round("seg_size_sweep", selection.SIZE_ORDER)
    chosen = selection.holdout_selection(sweep_record, selection._size_cost(sweep_record))
    assert chosen["chosen"] == selection.SIZE_CHOICE
    channels, epochs = selection.SIZE[selection.SIZE_CHOICE.removesuffix(selection.TTA)]
    assert tuple(ex2_5_best.UNET["channels"]) == tuple(channels) and ex2_5_best.EPOCHS == epochs
    assert selection.SIZE_CHOICE.endswith(selection.TTA)  # ex2_5_best.py always predicts with TTA
    assert ex2_5_best.VALIDATED_AS == selection.SIZE_CHOICE
    assert ex2_5_best.VALIDATION_RECORD.name == "seg_size_sweep.json"


def test_the_size_candidates_weights_are_recorded_and_hand_checked():
    sweep_record = selection.record("seg_size_sweep")
    weights = {name: count_weights(train.build_model(sweep.config(sweep_ctx(), epochs, channels=channels)))
               for name, (channels, epochs) in selection.SIZE.items()}
    assert weights == {"c8 e100": 126_914, "c8 e200": 126_914, "c16 e100": 504_962, "c16 e150": 504_962,
                       "c16 e200": 504_962}
    for name, row in sweep_record["candidates"].items():
        assert (row["weights"], row["epochs"]) == (weights[name.removesuffix(selection.TTA)],
                                                   selection.SIZE[name.removesuffix(selection.TTA)][1])


@pytest.mark.parametrize("name,candidates,configured", [
    ("seg_postprocess_sweep", selection.POSTPROCESS, (0.5, False)),  # ex2_5_best predicts the arg-max, no filling
    ("seg_batchnorm_sweep", selection.BATCHNORM, (None, 0.0)),  # ... with the training statistics
])
def test_the_prediction_rounds_chose_what_ex2_5_best_does(name, candidates, configured):
    sweep_record = _holdout_round(name, list(candidates))
    choice = selection.POSTPROCESS_CHOICE if name == "seg_postprocess_sweep" else selection.BATCHNORM_CHOICE
    assert selection.holdout_selection(sweep_record, list(candidates).index)["chosen"] == choice
    assert candidates[choice] == configured
    size = selection.SIZE_CHOICE.removesuffix(selection.TTA)
    assert sweep_record["predictor"] == {"stain": selection.STAIN_CHOICE, "size": size,
                                         "channels": list(selection.SIZE[size][0]), "epochs": selection.SIZE[size][1],
                                         "tta": selection.SIZE_CHOICE.endswith(selection.TTA)}


def test_the_prediction_rounds_share_their_reference_prediction():
    """The batch-norm round's training statistics are the post-processing round's chosen prediction:
    the same networks predicting the same way."""
    post, bn = selection.record("seg_postprocess_sweep"), selection.record("seg_batchnorm_sweep")
    assert bn["candidates"]["training statistics"]["final_val_dice"] == \
        post["candidates"][selection.POSTPROCESS_CHOICE]["final_val_dice"]
    assert bn["code"]["uncommitted_changes"] is False  # ran the pre-registered, committed code


def test_candidates_are_listed_nearest_the_plain_prediction_first():
    def distance(name):
        threshold, fill_holes = selection.POSTPROCESS[name]
        return (threshold != 0.5) + fill_holes, round(abs(threshold - 0.5), 6), threshold

    assert list(selection.POSTPROCESS) == sorted(selection.POSTPROCESS, key=distance)
    for name, (threshold, fill_holes) in selection.POSTPROCESS.items():
        assert name == f"p>{threshold}" + (" + fill holes" if fill_holes else "")
    scopes = [scope for scope, _ in selection.BATCHNORM.values()]
    assert scopes == [None, "image", "image", "image", "set"]  # the per-set prediction, using other images, last
    weights = [w for scope, w in selection.BATCHNORM.values() if scope == "image"]
    assert weights == sorted(weights)


# --- the rules on hand-made records ----------------------------------------------------------------

def _record(scores, weights=None):
    """name -> (random, reddest) final validation Dice, the same for seeds 0 and 1."""
    return {"holdouts": ["random", "reddest"], "candidates": {
        n: {"final_val_dice": {"random": [r, r], "reddest": [d, d]}, **(weights or {}).get(n, {})}
        for n, (r, d) in scores.items()}}


def test_the_stain_rule_averages_both_holdouts_and_prefers_the_simpler():
    # best on the random hold-out alone would be "base"; over both hold-outs "stain jitter" wins clearly
    scores = {"base": (0.93, 0.86), "base + TTA": (0.93, 0.86), "stain jitter": (0.92, 0.90),
              "stain jitter + TTA": (0.92, 0.89)}
    chosen = selection.holdout_selection(_record(scores), selection.STAIN_ORDER.index)
    assert chosen["chosen"] == chosen["best"] == "stain jitter"
    assert chosen["mean_final_val_dice"]["stain jitter"] == pytest.approx(0.91)
    assert chosen["tta_effect"]["stain jitter"] == {"mean_gain": pytest.approx(-0.005), "pairs_better": 0, "pairs": 4}
    close = {"base": (0.93, 0.86), "stain jitter": (0.93, 0.86 + 1.8 * TOL)}  # a mean gain of 0.9 x the tolerance
    assert selection.holdout_selection(_record(close), selection.STAIN_ORDER.index)["chosen"] == "base"


def test_the_size_rule_takes_the_cheapest_within_the_tolerance():
    costs = {"c16 e200": (400, 200), "c8 e100 + TTA": (100, 100), "c8 e100": (100, 100), "c16 e100": (400, 100)}
    weights = {n: {"weights": w, "epochs": e} for n, (w, e) in costs.items()}
    scores = {"c16 e200": (0.935, 0.90), "c8 e100 + TTA": (0.93, 0.87), "c8 e100": (0.93, 0.86),
              "c16 e100": (0.93, 0.90)}
    record = _record(scores, weights)
    chosen = selection.holdout_selection(record, selection._size_cost(record))
    # c16 e200 is best (0.9175); c16 e100 is 0.0025 below at half the cost; c8 is 0.015 and more below
    assert chosen["chosen"] == "c16 e100" and chosen["best"] == "c16 e200"
    assert chosen["tta_effect"]["c8 e100"] == {"mean_gain": pytest.approx(0.005), "pairs_better": 2, "pairs": 4}
    # TTA costs no training: taken before a more expensive network that is not clearly better...
    near = {"c8 e100 + TTA": (0.93, 0.87), "c8 e100": (0.93, 0.86), "c16 e100": (0.93, 0.87 + TOL)}
    record = _record(near, weights)
    assert selection.holdout_selection(record, selection._size_cost(record))["chosen"] == "c8 e100 + TTA"
    # ...and after the same network without it, when TTA's gain is within the tolerance
    near.update({"c8 e100 + TTA": (0.93, 0.86 + 1.8 * TOL), "c16 e100": (0.93, 0.86 + 1.8 * TOL)})
    record = _record(near, weights)
    assert selection.holdout_selection(record, selection._size_cost(record))["chosen"] == "c8 e100"


def test_the_postprocess_and_batchnorm_rules_take_the_nearest_candidate_within_the_tolerance():
    scores = {"p>0.5": (0.93, 0.87), "p>0.5 + fill holes": (0.93, 0.87 + TOL), "p>0.4": (0.93, 0.87 + 1.5 * TOL),
              "p>0.3": (0.925, 0.87 + 3 * TOL), "p>0.4 + fill holes": (0.93, 0.87 + 3 * TOL)}
    chosen = selection.holdout_selection(_record(scores), list(selection.POSTPROCESS).index)
    # best: p>0.4 + fill holes; p>0.5 + fill holes is 1 tolerance below on one hold-out, half of it on the mean
    assert chosen["best"] == "p>0.4 + fill holes" and chosen["chosen"] == "p>0.5 + fill holes"
    scores["p>0.5 + fill holes"] = (0.93, 0.87 + 0.9 * TOL)  # now just outside: the next nearest, p>0.4
    assert selection.holdout_selection(_record(scores), list(selection.POSTPROCESS).index)["chosen"] == "p>0.4"
    bn = {"training statistics": (0.93, 0.87), "per image 0.25": (0.93, 0.87 + 1.5 * TOL),
          "per image 0.5": (0.93, 0.87 + 3 * TOL), "per set": (0.93, 0.87 + 4 * TOL)}
    assert selection.holdout_selection(_record(bn), list(selection.BATCHNORM).index)["chosen"] == "per image 0.5"


# --- predictions: batch-norm statistics --------------------------------------------------------------

def trained_like(model: nn.Module, seed: int = 0) -> nn.Module:
    """``model`` with made-up running statistics and affine parameters, as after training, in eval mode."""
    gen = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=gen))
            m.running_var.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
            m.weight.data.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
            m.bias.data.copy_(torch.randn(m.num_features, generator=gen))
    return model.eval()


def single_bn(channels: int = 3) -> nn.Module:
    return trained_like(nn.Sequential(nn.BatchNorm2d(channels)))


def test_image_statistics_are_blended_with_the_training_ones_as_computed_by_hand():
    torch.manual_seed(0)
    model = single_bn()
    bn = model[0]
    x = torch.randn(2, 3, 5, 4) * 3 + 1
    w = 0.25
    out = prediction.adapt_batchnorm(model, "image", w)(x)
    xs = x.double().numpy()
    mean = (1 - w) * bn.running_mean.double().numpy()[None, :, None, None] + w * xs.mean(axis=(2, 3), keepdims=True)
    var = (1 - w) * bn.running_var.double().numpy()[None, :, None, None] + w * xs.var(axis=(2, 3), keepdims=True)
    expected = ((xs - mean) / np.sqrt(var + bn.eps) * bn.weight.detach().double().numpy()[None, :, None, None]
                + bn.bias.detach().double().numpy()[None, :, None, None])
    assert np.allclose(out.detach().numpy(), expected, atol=1e-5)


def test_weight_one_is_instance_normalisation_with_the_layers_scale_and_shift():
    torch.manual_seed(1)
    model = single_bn()
    bn = model[0]
    x = torch.randn(3, 3, 6, 6) * 2 - 1
    out = prediction.adapt_batchnorm(model, "image", 1.0)(x)
    expected = nn.functional.instance_norm(x, weight=bn.weight, bias=bn.bias, eps=bn.eps)
    assert torch.allclose(out, expected, atol=1e-5)


def test_a_constant_channel_gives_the_layers_shift():
    """An image whose channel is constant has variance 0: normalised with its own statistics alone
    (weight 1), eps keeps the result finite and equal to the layer's shift."""
    model = single_bn(2)
    x = torch.full((1, 2, 4, 4), 3.0)
    out = prediction.adapt_batchnorm(model, "image", 1.0)(x)
    assert torch.equal(out, model[0].bias.detach().view(1, 2, 1, 1).expand(1, 2, 4, 4))


def test_training_statistics_leave_the_model_as_it_is():
    model = trained_like(SegNet(channels=(4, 8), batch_norm=True))
    assert prediction.adapt_batchnorm(model, None) is model


def test_per_image_prediction_depends_on_its_own_image_only():
    torch.manual_seed(2)
    model = trained_like(SegNet(channels=(4, 8), batch_norm=True, skip="concat"))
    x = torch.randn(4, 2, 16, 16)
    with torch.no_grad():
        adapted = prediction.adapt_batchnorm(model, "image", 0.5)
        together, alone = adapted(x), torch.cat([adapted(x[i:i + 1]) for i in range(4)])
        assert torch.allclose(together, alone, atol=1e-5)
        assert not torch.allclose(adapted(x), model(x), atol=1e-3)  # it does change the prediction


def test_set_statistics_are_each_layers_input_statistics_over_the_set():
    """After AdaBN every batch-norm layer's running mean and variance are the mean and variance
    (biased, as batch norm normalises in training) over the set of its input, as the adapted layers
    before it produce it in eval mode."""
    torch.manual_seed(3)
    model = trained_like(SegNet(channels=(4, 8, 16), batch_norm=True, skip="concat", block_depth=2, residual=True))
    x = torch.randn(5, 2, 16, 16) * 2 + 0.5
    before = {k: v.clone() for k, v in model.state_dict().items()}
    adapted = prediction.adapt_batchnorm(model, "set", inputs=x)
    inputs_seen = {}
    hooks = [m.register_forward_hook(lambda mod, args, out, name=name: inputs_seen.__setitem__(name, args[0]))
             for name, m in adapted.named_modules() if isinstance(m, nn.BatchNorm2d)]
    with torch.no_grad():
        adapted(x)
    for h in hooks:
        h.remove()
    assert len(inputs_seen) == sum(isinstance(m, nn.BatchNorm2d) for m in model.modules()) > 5
    for name, seen in inputs_seen.items():
        bn = adapted.get_submodule(name)
        assert torch.allclose(bn.running_mean, seen.mean(dim=(0, 2, 3)), atol=1e-5), name
        assert torch.allclose(bn.running_var, seen.var(dim=(0, 2, 3), unbiased=False), rtol=1e-4, atol=1e-6), name
    assert not adapted.training
    # the trained model is untouched, and a set prediction depends on the other images of the set
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items()) and not model.training
    other = prediction.adapt_batchnorm(model, "set", inputs=x[:2])
    with torch.no_grad():
        assert not torch.allclose(adapted(x[:1]), other(x[:1]), atol=1e-3)


def test_set_statistics_ignore_dropout():
    torch.manual_seed(4)
    model = trained_like(SegNet(channels=(4, 8), batch_norm=True, dropout=0.5))
    x = torch.randn(3, 2, 16, 16)
    first, second = (prediction.adapt_batchnorm(model, "set", inputs=x) for _ in range(2))
    for a, b in zip(first.state_dict().values(), second.state_dict().values()):
        assert torch.equal(a, b)


@pytest.mark.parametrize("scope, weight, inputs, message", [
    ("batch", 1.0, None, "unknown batch-norm scope 'batch'"),
    ("image", 0.0, None, r"must lie in \(0, 1\], got 0.0"),
    ("image", 1.5, None, r"must lie in \(0, 1\], got 1.5"),
    ("set", 0.5, torch.zeros(1, 2, 8, 8), "weight must be 1, got 0.5"),
    ("set", 1.0, None, "need the inputs"),
])
def test_bad_arguments_are_rejected(scope, weight, inputs, message):
    with pytest.raises(ValueError, match=message):
        prediction.adapt_batchnorm(single_bn(2), scope, weight, inputs=inputs)


def test_a_network_without_batch_norm_is_rejected():
    with pytest.raises(ValueError, match="SegNet has no BatchNorm2d"):
        prediction.adapt_batchnorm(SegNet(channels=(4, 8)), "image", 0.5)


# --- predictions: thresholds and hole filling -------------------------------------------------------

def logits_for(p_gland: torch.Tensor) -> torch.Tensor:
    """(N, H, W) gland probabilities -> (N, 2, H, W) logits with exactly those probabilities."""
    return torch.stack([torch.zeros_like(p_gland), torch.logit(p_gland.double())], dim=1)


def test_threshold_keeps_the_pixels_above_it():
    p = torch.tensor([[[0.25, 0.35], [0.45, 0.55]], [[0.65, 0.75], [0.05, 0.95]]])
    expected = {0.3: [[[0, 1], [1, 1]], [[1, 1], [0, 1]]], 0.5: [[[0, 0], [0, 1]], [[1, 1], [0, 1]]],
                0.7: [[[0, 0], [0, 0]], [[0, 1], [0, 1]]]}
    for threshold, mask in expected.items():
        assert prediction.foreground_masks(logits_for(p), threshold).tolist() == torch.tensor(mask).bool().tolist()


def test_half_is_exactly_the_argmax_ties_included():
    torch.manual_seed(0)
    logits = torch.randn(3, 2, 16, 16)
    logits[0, 1, :4] = logits[0, 0, :4]  # ties: the arg-max takes class 0
    logits[1, 1, :4] = logits[1, 0, :4] + 1e-7  # a difference float32 softmax would round away
    assert torch.equal(prediction.foreground_masks(logits), logits.argmax(dim=1) == 1)


def test_threshold_is_on_the_probability_of_the_logits():
    logits = torch.tensor([0.0, math.log(0.4 / 0.6)]).view(1, 2, 1, 1) + 3.0  # p(gland) = 0.4, shifted logits
    assert prediction.foreground_masks(logits, 0.39).item() and not prediction.foreground_masks(logits, 0.41).item()


def test_fill_holes_fills_enclosed_background_only():
    ring = torch.zeros(7, 7)
    ring[1:6, 1:6] = 1
    ring[2:5, 2:5] = 0  # a gland with a 3x3 lumen
    open_ring = ring.clone()
    open_ring[3, 5] = 0  # the lumen reaches the background through a gap: not a hole
    border = torch.zeros(7, 7)
    border[:4, :4] = 1
    border[0, 1] = 0  # a notch on the image border: not enclosed
    p = torch.stack([ring, open_ring, border]) * 0.98 + 0.01
    filled = prediction.foreground_masks(logits_for(p), fill_holes=True)
    expected_ring = torch.zeros(7, 7, dtype=torch.bool)
    expected_ring[1:6, 1:6] = True
    assert torch.equal(filled[0], expected_ring)
    assert torch.equal(filled[1], open_ring.bool())
    assert torch.equal(filled[2], border.bool())
    assert torch.equal(prediction.foreground_masks(logits_for(p))[0], ring.bool())  # without: unchanged


def test_a_diagonal_gap_does_not_open_a_hole():
    ring = torch.ones(5, 5)
    ring[1:4, 1:4] = 0
    ring[0, 0] = 0  # the corner touches the lumen only diagonally: background counts as 4-connected
    filled = prediction.foreground_masks(logits_for((ring * 0.98 + 0.01)[None]), fill_holes=True)[0]
    expected = torch.ones(5, 5, dtype=torch.bool)
    expected[0, 0] = False
    assert torch.equal(filled, expected)


@pytest.mark.parametrize("threshold", [0.0, 1.0, -0.1, 1.5])
def test_threshold_outside_zero_one_is_refused(threshold):
    with pytest.raises(ValueError, match=f"threshold must lie strictly between 0 and 1, got {threshold}"):
        prediction.foreground_masks(torch.zeros(1, 2, 4, 4), threshold)


def test_logits_of_the_wrong_shape_are_refused():
    with pytest.raises(ValueError, match=r"expected logits of shape \(N, 2, H, W\), got \(1, 3, 4, 4\)"):
        prediction.foreground_masks(torch.zeros(1, 3, 4, 4))


# --- the sweeps' shared code ---------------------------------------------------------------------------

def test_tta_masks_adapt_each_runs_network_to_the_inputs_it_predicts(tmp_path):
    torch.manual_seed(5)
    nets = [trained_like(SegNet(channels=(4, 8), batch_norm=True), seed=s) for s in range(2)]
    runs = stored_runs(tmp_path, models=nets, model={"class": "SegNet", "channels": (4, 8), "batch_norm": True})
    x = torch.randn(3, 2, 8, 8)
    masks = sweep.tta_masks(runs, x, batchnorm=("set", 1.0), threshold=0.4, fill_holes=True)
    for net, m in zip(nets, masks):
        logits = evaluation.dihedral_tta_logits(prediction.adapt_batchnorm(net, "set", inputs=x), x)
        assert torch.equal(m, prediction.foreground_masks(logits, 0.4, fill_holes=True))
    plain = sweep.tta_masks(runs, x)  # training statistics, the arg-max
    for net, m in zip(nets, plain):
        assert torch.equal(m, evaluation.gland_masks(evaluation.dihedral_tta_logits(net.eval(), x)))


def test_sweep_dice_is_the_mean_per_seed():
    target = torch.tensor([[[1, 1], [0, 0]], [[0, 0], [0, 0]]])
    masks = [torch.tensor([[[1, 0], [0, 0]], [[0, 0], [0, 0]]]).bool(), target.bool()]
    # seed 0: image 1 Dice 2*1/(1+2) = 2/3, image 2 both empty -> 1; seed 1: perfect
    assert sweep.dice(masks, target) == pytest.approx([(2 / 3 + 1) / 2, 1.0])


def test_a_quick_sweep_records_validation_dice_and_nothing_of_the_test_set(warwick_dir, tmp_path):
    from tuning import seg_size_sweep

    record = seg_size_sweep.main(["--quick", "--device", "cpu", "--data-dir", str(warwick_dir), "--out-dir",
                                  str(tmp_path), "--no-progress", "--num-seeds", "1",
                                  "--only", "c8 e100"])
    assert json.loads((tmp_path / "seg_size_sweep.json").read_text())["candidates"] == record["candidates"]
    assert list(record["candidates"]) == ["c8 e100", "c8 e100 + TTA"] and record["holdouts"] == ["random", "reddest"]
    for row in record["candidates"].values():
        assert row["weights"] == 126_914 and row["epochs"] == 1  # --quick: one epoch
        assert set(row["final_val_dice"]) == {"random", "reddest"}
        assert all(len(v) == 1 and 0 <= v[0] <= 1 for v in row["final_val_dice"].values())
    reddest = record["red_share"]["reddest"]
    assert reddest["val_min"] > reddest["train_max"]  # validated on staining outside the training range
    assert "test" not in json.dumps(record["candidates"])
    assert set(record["code"]) == {"commit", "uncommitted_changes"}


def test_a_quick_warm_up_check_writes_its_record_and_nothing_of_the_test_set(warwick_dir, tmp_path):
    from tuning import nobn_warmup

    record = nobn_warmup.main(["--quick", "--device", "cpu", "--data-dir", str(warwick_dir), "--out-dir", str(tmp_path),
                               "--no-progress", "--num-seeds", "1"])
    assert json.loads((tmp_path / "nobn_warmup.json").read_text()) == json.loads(json.dumps(record))
    assert set(record["kinds"]) == {"plain", "residual"} and set(record["chosen"]) == {"plain", "residual"}
    assert all(set(rows) == set(nobn_warmup.SCHEDULES) for rows in record["kinds"].values())
    assert "test" not in json.dumps(record["kinds"])
