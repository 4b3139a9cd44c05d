"""The selection rounds behind ex2_5_best.py: each sweep's candidates, the rule that picks one from the
sweep's committed record (tuning/*.json), and the choice. tests/test_tuning.py recomputes every choice
from its record and checks that ex2_5_best.py is configured with it. README.md beside this file tells
the story; the rules are stated here once.

Every rule works on validation Dice only: the random 15-image hold-out of every exercise and, from the
stain round on, also the 15 most red-stained training images (``common.warwick.HOLDOUTS``).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

import numpy as np


TUNING_DIR = Path(__file__).resolve().parent
TOLERANCE = 0.005  # about the seed-to-seed spread of the validation Dice
TTA = " + TTA"  # a trained candidate evaluated with test-time augmentation
WIDE = (16, 32, 64, 128)
BASE = (8, 16, 32, 64)  # ex2_5_best.py's channels

DIHEDRAL = {"class": "SegmentationAugment", "dihedral": True}  # ex2_5_best.py's augmentation
# Round 1, the architecture sweep (random hold-out only): name -> (epochs, lr, changes: sweep.config's options)
ARCHITECTURE = {
    "c8 res2 e40 (current)": (40, 1e-2, {}),
    "c8 res2 e100": (100, 1e-2, {}),
    "c16 res2 e40": (40, 1e-2, {"channels": WIDE}),
    "c16 res2 e100": (100, 1e-2, {"channels": WIDE}),
    "c16 plain e150": (150, 1e-2, {"channels": WIDE, "block_depth": 1, "residual": False}),
    "c16 res2 e150": (150, 1e-2, {"channels": WIDE}),
    "c16 res2 e100 deform": (100, 1e-2, {"channels": WIDE, "augment": {
        "class": "SegmentationAugment", "dihedral": True, "rotate_deg": 10, "scale": 0.1, "shear_deg": 5, "translate": 0.03,
        "elastic_px": 3}}),
    "c16 res2 e100 lr3e-3": (100, 3e-3, {"channels": WIDE}),
    "c16 plain e100": (100, 1e-2, {"channels": WIDE, "block_depth": 1, "residual": False}),
}
ARCHITECTURE_RULE = f"the cheapest candidate (weights x epochs) within {TOLERANCE} of the best mean final validation Dice"
ARCHITECTURE_CHOICE = "c8 res2 e100"

# Round 2, stain robustness (both hold-outs), simplest first; each also with TTA
STAIN_JITTER = {"class": "StainJitter", "log_gain": 0.25, "shift": 0.25}  # contrast x0.78-1.28, brightness +-0.25 std
STAIN = {"base": {}, "stain jitter": {"augment": [DIHEDRAL, STAIN_JITTER]},
         "input norm": {"input_norm": True}}
STAIN_ORDER = [n + t for n in STAIN for t in ("", TTA)]
STAIN_RULE = (f"the first candidate, simplest first ({', '.join(STAIN_ORDER)}), within {TOLERANCE} of the best "
              "mean final validation Dice over both hold-outs and the seeds")
STAIN_CHOICE = "base"

# Round 3, width and epochs again (both hold-outs): name -> (channels, epochs); each also with TTA
SIZE = {"c8 e100": (BASE, 100), "c8 e200": (BASE, 200), "c16 e100": (WIDE, 100), "c16 e150": (WIDE, 150),
        "c16 e200": (WIDE, 200)}
SIZE_ORDER = [n + t for n in SIZE for t in ("", TTA)]
SIZE_RULE = (f"the cheapest candidate (weights x epochs; with TTA just above the same network without) within "
             f"{TOLERANCE} of the best mean final validation Dice over both hold-outs and the seeds")
SIZE_CHOICE = "c8 e100 + TTA"

# Round 4, from probabilities to a mask: name -> (threshold on the gland probability, fill enclosed holes),
# nearest the plain prediction first
POSTPROCESS = {"p>0.5": (0.5, False), "p>0.5 + fill holes": (0.5, True), "p>0.4": (0.4, False), "p>0.6": (0.6, False),
               "p>0.3": (0.3, False), "p>0.7": (0.7, False), "p>0.4 + fill holes": (0.4, True),
               "p>0.6 + fill holes": (0.6, True), "p>0.3 + fill holes": (0.3, True), "p>0.7 + fill holes": (0.7, True)}
POSTPROCESS_RULE = (f"the first candidate, nearest the plain prediction first, within {TOLERANCE} of the best mean "
                    "final validation Dice over both hold-outs and the seeds")
POSTPROCESS_CHOICE = "p>0.5"

# Round 5, the statistics batch norm normalises with when predicting: name -> (scope, weight) of
# tuning.prediction.adapt_batchnorm, nearest the training statistics first
BATCHNORM = {"training statistics": (None, 0.0), "per image 0.25": ("image", 0.25), "per image 0.5": ("image", 0.5),
             "per image 1": ("image", 1.0), "per set": ("set", 1.0)}
BATCHNORM_RULE = (f"the first candidate, nearest the training statistics first, within {TOLERANCE} of the best mean "
                  "final validation Dice over both hold-outs and the seeds")
BATCHNORM_CHOICE = "training statistics"


def pick(mean_val: dict[str, float], cost: Callable[[str], object]) -> str:
    """Every rule's core: among the candidates within TOLERANCE of the best mean validation Dice,
    the one of lowest ``cost``."""
    best = max(mean_val.values())
    return min((name for name, v in mean_val.items() if v >= best - TOLERANCE), key=cost)


def record(name: str) -> dict:
    return json.loads((TUNING_DIR / f"{name}.json").read_text())


def architecture_selection(sweep: dict) -> dict:
    """ARCHITECTURE_RULE applied to the architecture sweep's record."""
    candidates = sweep["candidates"]
    mean_val = {name: float(np.mean(c["final_val_dice"])) for name, c in candidates.items()}
    chosen = pick(mean_val, lambda n: candidates[n]["weights"] * candidates[n]["epochs"])
    return {"mean_final_val_dice": mean_val, "chosen": chosen, "candidates": candidates}


def holdout_selection(sweep: dict, cost: Callable[[str], object]) -> dict:
    """A rule over both hold-outs applied to a sweep record: the means it compares, the choice, and per
    trained candidate what TTA changes (mean gain, in how many (hold-out, seed) pairs it helps)."""
    candidates = sweep["candidates"]
    per_holdout = {n: {h: float(np.mean(v)) for h, v in c["final_val_dice"].items()} for n, c in candidates.items()}
    mean_val = {n: float(np.mean(list(v.values()))) for n, v in per_holdout.items()}
    tta = {}
    for name in candidates:
        if name + TTA in candidates:
            plain, with_tta = (np.concatenate([candidates[n]["final_val_dice"][h] for h in sweep["holdouts"]])
                               for n in (name, name + TTA))
            tta[name] = {"mean_gain": round(float((with_tta - plain).mean()), 4),
                         "pairs_better": int((with_tta > plain).sum()), "pairs": len(plain)}
    return {"mean_final_val_dice": mean_val, "mean_final_val_dice_per_holdout": per_holdout, "tta_effect": tta,
            "best": max(mean_val, key=mean_val.get), "chosen": pick(mean_val, cost)}


def _size_cost(sweep: dict) -> Callable[[str], tuple]:
    candidates = sweep["candidates"]
    return lambda n: (candidates[n]["weights"] * candidates[n]["epochs"], n.endswith(TTA))


def selections() -> dict:
    """Every round's selection from its committed record."""
    return {"architecture": architecture_selection(record("seg_best_sweep")),
            "stain": holdout_selection(record("seg_stain_sweep"), STAIN_ORDER.index),
            "size": holdout_selection(record("seg_size_sweep"), _size_cost(record("seg_size_sweep"))),
            "postprocess": holdout_selection(record("seg_postprocess_sweep"), list(POSTPROCESS).index),
            "batchnorm": holdout_selection(record("seg_batchnorm_sweep"), list(BATCHNORM).index)}


CHOICES = {"architecture": ARCHITECTURE_CHOICE, "stain": STAIN_CHOICE, "size": SIZE_CHOICE,
           "postprocess": POSTPROCESS_CHOICE, "batchnorm": BATCHNORM_CHOICE}
START, END = "<!-- selection:start -->", "<!-- selection:end -->"


def summary() -> str:
    """Markdown: per round, each candidate's mean final validation Dice (per hold-out where there are
    two) and the choice, from the committed records."""
    out = []
    for round_, s in selections().items():
        per_holdout = s.get("mean_final_val_dice_per_holdout")
        out += [f"**{round_}** (chosen: `{s['chosen']}`)", "",
                "| candidate | " + ("random | reddest | " if per_holdout else "") + "mean |",
                "|---|" + ("---|---|" if per_holdout else "") + "---|"]
        for name, mean in s["mean_final_val_dice"].items():
            cells = [f"{per_holdout[name]['random']:.3f}", f"{per_holdout[name]['reddest']:.3f}"] if per_holdout else []
            mark = "**" if name == s["chosen"] else ""
            out.append(f"| {mark}{name}{mark} | " + " | ".join([*cells, f"{mean:.3f}"]) + " |")
        out.append("")
    return "\n".join(out).rstrip()


def main() -> None:
    """Rewrite the tables of tuning/README.md from the records; fail if a choice is not what its rule picks."""
    wrong = {r: (s["chosen"], CHOICES[r]) for r, s in selections().items() if s["chosen"] != CHOICES[r]}
    if wrong:
        raise SystemExit(f"a rule picks other than configured (picked, configured): {wrong}")
    readme = TUNING_DIR / "README.md"
    text = readme.read_text()
    head, rest = text.split(START, 1)
    readme.write_text(f"{head}{START}\n{summary()}\n{END}{rest.split(END, 1)[1]}")
    print(f"updated {readme}")


if __name__ == "__main__":
    main()
