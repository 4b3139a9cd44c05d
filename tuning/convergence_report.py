"""The rule that turns tuning/convergence's validation curves into budgets, its tables and figures.

TOLERANCE is what "converged" allows: 0.15 accuracy points, or 0.008 Dice, about the seed-to-seed spread
of a final validation score. Curves are means over seeds; the test split is never read.

* late gain (``common.metrics.late_gain``): the best validation score in the last quarter of the epochs minus
  the best before it, per seed, averaged over the seeds. Converged: at most TOLERANCE.
* Constant learning rate (one long run per candidate): the plateau is the highest 3-epoch trailing mean
  of the mean validation curve; a candidate's budget is the first epoch (at least 4) whose 3-epoch trailing
  mean lies within TOLERANCE of its plateau and whose seeds' curves up to there are converged. Among the learning rates whose plateau
  lies within TOLERANCE of the best plateau, the one with the smallest budget is chosen (ties: the higher
  plateau).
* Annealed schedule (one run per length): the shortest length whose final validation score lies within
  TOLERANCE of the longest's and whose curve is converged.
* Ex 2.2's weight decay: the strength with the highest final validation Dice (mean over the seeds).
* The networks without batch norm (Ex 2.2's at depth 1; Ex 2.4's at depth 3, plain and residual), at four or
  five learning rates: for each kind the rate with the highest final validation Dice (mean over the seeds), so
  that each kind is compared at the rate that suits it.

Run:  python -m tuning.convergence_report     (prints the tables; writes tuning/convergence/choices.json
                                               and the figures tuning/convergence/*.png)
"""
from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import numpy as np

from common.data import REPO_ROOT
from common.report import candidate_kind
from common.metrics import THRESHOLDS, late_gain

RUNS_DIR = REPO_ROOT / "tuning" / "convergence" / "runs"
TOLERANCE = {score: limits["late_gain"][0] for score, limits in THRESHOLDS.items()}  # 0.15 points, 0.008 Dice
SMOOTH = 3  # epochs of the trailing mean


def load(folder: Path) -> dict[str, list[dict]]:
    """candidate -> its runs' records (one per seed) in ``folder``."""
    out: dict[str, list[dict]] = {}
    for path in sorted(Path(folder).glob("*_seed*.json")):
        record = json.loads(path.read_text())
        out.setdefault(record["candidate"], []).append(record)
    return out


def mean_curve(runs: list[dict], key: str = "val_score") -> np.ndarray:
    return np.mean([[e[key] for e in r["epochs"]] for r in runs], axis=0)


def score_name(runs: list[dict]) -> str:
    return "dice" if runs[0]["options"].get("data") == "warwick" else "accuracy"


def seeds_late_gain(runs: list[dict], epochs: int | None = None) -> float:
    """The late gain (``common.metrics.late_gain``) of each seed's validation curve, up to ``epochs``, averaged
    over the seeds: the convergence check of the fit rule (``common.metrics.fit_verdict``)."""
    return float(np.mean([late_gain([e["val_score"] for e in r["epochs"][:epochs]]) for r in runs]))


def trailing_mean(curve, width: int = SMOOTH) -> np.ndarray:
    curve = np.asarray(curve, dtype=float)
    return np.array([curve[max(0, e - width + 1):e + 1].mean() for e in range(len(curve))])


def constant_budget(runs: list[dict], tol: float) -> dict:
    """Plateau and budget of one long constant-rate run per seed: the plateau is the highest 3-epoch trailing
    mean of the mean validation curve; the budget, the first epoch (at least 4) where that trailing mean lies
    within ``tol`` of the plateau and the seeds' curves up to there are converged."""
    smooth = trailing_mean(mean_curve(runs))
    plateau = float(smooth.max())
    budget = next((e + 1 for e in range(max(SMOOTH, 4) - 1, len(smooth))
                   if smooth[e] >= plateau - tol and seeds_late_gain(runs, e + 1) <= tol), None)
    return {"plateau": plateau, "budget": budget, "plateau_epoch": int(smooth.argmax()) + 1}


def choose_constant(folder: Path) -> dict:
    """The chosen constant-rate candidate of a family: its name, learning rate, batch and budget."""
    runs = load(folder)
    score = score_name(next(iter(runs.values())))
    tol = TOLERANCE[score]
    rows = {name: {**constant_budget(r, tol), "lr": r[0]["options"]["lr"], "batch": r[0]["options"]["batch"],
                   "seeds": len(r)} for name, r in runs.items()}
    best = max(row["plateau"] for row in rows.values())
    eligible = [n for n, row in rows.items() if row["plateau"] >= best - tol and row["budget"] is not None]
    if eligible:
        name = min(eligible, key=lambda n: (rows[n]["budget"], -rows[n]["plateau"]))
    else:  # no curve levelled off within its run (a smoke test's 2 epochs): the highest plateau, unconverged
        name = max(rows, key=lambda n: rows[n]["plateau"])
    return {"candidate": name, **rows[name], "converged": bool(eligible), "rows": rows, "score": score,
            "tolerance": tol}


def choose_annealed(folder: Path, runs: dict | None = None) -> dict:
    """The chosen schedule length of a family whose candidates differ only in their length. ``established``:
    a longer schedule was tried and does not do better (False where the longest is chosen, or none is)."""
    runs = runs if runs is not None else load(folder)
    score = score_name(next(iter(runs.values())))
    tol = TOLERANCE[score]
    rows = {name: {"epochs": r[0]["options"]["epochs"], "final": float(mean_curve(r)[-1]),
                   "late_gain": seeds_late_gain(r), "seeds": len(r)} for name, r in runs.items()}
    longest = max(rows.values(), key=lambda row: row["epochs"])
    eligible = [n for n, row in rows.items() if row["final"] >= longest["final"] - tol and row["late_gain"] <= tol]
    name = min(eligible, key=lambda n: rows[n]["epochs"]) if eligible else None
    established = name is not None and rows[name]["epochs"] < longest["epochs"]
    return {"candidate": name, **(rows[name] if name else {}), "established": established, "rows": rows,
            "score": score, "tolerance": tol}


def choose_annealed_per_kind(folder: Path) -> dict:
    """Plain and residual networks ("<kind>_e<epochs>"), each kind's length chosen by ``choose_annealed``; the
    family's budget is the longer of the two, so that both are converged."""
    runs = load(folder)
    kinds = {}
    for name, r in runs.items():
        kinds.setdefault(name.split("_e")[0], {})[name] = r
    per_kind = {kind: choose_annealed(folder, r) for kind, r in kinds.items()}
    chosen = {kind: c["candidate"] for kind, c in per_kind.items()}
    budget = None if None in chosen.values() else max(per_kind[k]["epochs"] for k in per_kind)
    return {"candidate": None, "chosen_per_kind": chosen, "budget": budget,
            "established": all(c["established"] for c in per_kind.values()),
            "rows": {n: row for c in per_kind.values() for n, row in c["rows"].items()}, "score": "dice",
            "tolerance": TOLERANCE["dice"]}


def fixed_lr(lr: float):
    """A constant-rate family whose learning rate the exercise fixes (Ex 1.1: Assignment 2's): only its budget."""
    def rule(folder: Path) -> dict:
        choice = choose_constant(folder)
        name = next(n for n, row in choice["rows"].items() if row["lr"] == lr)
        return {**choice, "candidate": name, **choice["rows"][name]}
    return rule


def final_rows(folder: Path, option: str) -> dict:
    """Candidates that differ in one ``option``, each with its final validation score (mean curve's last value), its
    seeds' finals and late gain: the rows of a rule that takes the best final score."""
    return {name: {option: r[0]["options"][option], "final": float(mean_curve(r)[-1]), "late_gain": seeds_late_gain(r),
                   "seeds": len(r), "finals": [float(x["epochs"][-1]["val_score"]) for x in r]}
            for name, r in load(folder).items()}


def choose_lr_per_kind(folder: Path) -> dict:
    """The learning rate of the networks without batch norm: candidates "<kind>_lr<lr>" (depth 3: plain and
    residual) or "lr<lr>" (depth 1, one kind); for each kind by the same rule, the rate with the highest final
    validation Dice (mean over seeds). The two kinds are compared each at its own rate: at one shared rate the
    comparison would follow whichever kind the rate suits."""
    rows = final_rows(folder, "lr")
    kinds: dict[str, list[str]] = {}
    for name in rows:
        kinds.setdefault(candidate_kind(name), []).append(name)
    chosen = {kind: max(names, key=lambda n: rows[n]["final"]) for kind, names in kinds.items()}
    lrs = {kind: rows[name]["lr"] for kind, name in chosen.items()}
    one = next(iter(chosen.values())) if len(chosen) == 1 else None
    return {"candidate": one, **({"lr": rows[one]["lr"]} if one else {"chosen_per_kind": chosen, "lr_per_kind": lrs}),
            "rows": rows, "score": "dice", "tolerance": TOLERANCE["dice"]}


def choose_weight_decay(folder: Path) -> dict:
    """Ex 2.2's weight decay: candidates "wd<strength>" at one rate and length; the strength with the highest final
    validation Dice (mean over seeds)."""
    rows = final_rows(folder, "weight_decay")
    name = max(rows, key=lambda n: rows[n]["final"])
    return {"candidate": name, "weight_decay": rows[name]["weight_decay"], "rows": rows, "score": "dice",
            "tolerance": TOLERANCE["dice"]}


def budgets_each(folder: Path) -> dict:
    """The one-change variants of the Ex 1.2 network, at its learning rate and batch: each one's budget and the
    largest of them (the Ex 1.2 family's budget is the larger of that and the network's own, so that every
    member is converged)."""
    runs = load(folder)
    rows = {name: {**constant_budget(r, TOLERANCE["accuracy"]), "lr": r[0]["options"]["lr"],
                   "seeds": len(r)} for name, r in runs.items()}
    budgets = [row["budget"] for row in rows.values()]
    return {"candidate": None, "budget": None if None in budgets else max(budgets), "rows": rows, "score": "accuracy",
            "tolerance": TOLERANCE["accuracy"]}


def choose_lr(folder: Path) -> dict:
    """The encoder-decoder's learning rate and length: stage 3's runs ("lr<lr>_e<epochs>") with stage 1's at 3e-3
    (folder segnet) of the same lengths; the shortest schedule whose final validation Dice is within the
    tolerance of the best and converged, the higher final score among equally short ones."""
    runs = load(folder)
    lengths = {r[0]["options"]["epochs"] for r in runs.values()}
    for name, r in load(folder.parent / "segnet").items():
        if r[0]["options"]["epochs"] in lengths:
            runs[f"lr{r[0]['options']['lr']:g}_e{r[0]['options']['epochs']}"] = r
    rows = {name: {"lr": r[0]["options"]["lr"], "epochs": r[0]["options"]["epochs"], "final": float(mean_curve(r)[-1]),
                   "late_gain": seeds_late_gain(r), "seeds": len(r)} for name, r in runs.items()}
    tol = TOLERANCE["dice"]
    best = max(row["final"] for row in rows.values())
    eligible = [n for n, row in rows.items() if row["final"] >= best - tol and row["late_gain"] <= tol]
    name = min(eligible, key=lambda n: (rows[n]["epochs"], -rows[n]["final"])) if eligible else None
    return {"candidate": name, **(rows[name] if name else {}), "rows": rows, "score": "dice", "tolerance": tol,
            "established": name is not None and rows[name]["epochs"] < max(lengths)}


RULES = {"segnet_lr": choose_lr, "segnet_wd": choose_weight_decay, "segnet_depth3_nobn": choose_lr_per_kind, "segnet_nobn": choose_lr_per_kind,
         "cnn_variants": budgets_each, "segnet_depth3": choose_annealed_per_kind,
         "fc": fixed_lr(0.1)}  # Ex 1.1 imitates Assignment 2's learning parameters: its rate stays, its epochs are chosen  # the other families: by their schedule


def choose(folder: Path) -> dict:
    if folder.name in RULES:
        return RULES[folder.name](folder)
    annealed = bool(next(iter(load(folder).values()))[0]["options"].get("schedule"))
    return choose_annealed(folder) if annealed else choose_constant(folder)


def figure(choices: dict, path: Path) -> None:
    """One panel per family: each candidate's validation curve (mean over seeds), its budget marked (constant
    rate) or its final value marked (annealed); the chosen candidate drawn thick."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(choices)
    cols = 3
    fig, axes = plt.subplots(-(-n // cols), cols, figsize=(9, 2.6 * -(-n // cols)), squeeze=False)
    for ax, (family, choice) in zip(axes.flat, choices.items()):
        runs = load(RUNS_DIR / family)
        for k, (name, r) in enumerate(sorted(runs.items(), key=lambda t: t[1][0]["options"]["epochs"])):
            curve = mean_curve(r)
            scale = 100 if choice["score"] == "accuracy" else 1
            chosen = name in (choice.get("chosen_per_kind") or {}).values() or (choice["candidate"] is not None and (
                name == choice["candidate"] or name.endswith("_" + choice["candidate"])))
            line, = ax.plot(np.arange(1, len(curve) + 1), scale * curve, linewidth=1.8 if chosen else 0.8,
                            label=name + (" (chosen)" if chosen else ""))
            row = choice["rows"][name]
            if row.get("budget"):
                ax.plot(row["budget"], scale * curve[row["budget"] - 1], "o", color=line.get_color(), markersize=4)
        ax.set_title(family, fontsize=9)
        ax.set_xlabel("epoch", fontsize=8)
        ax.set_ylabel("validation " + ("accuracy (%)" if choice["score"] == "accuracy" else "Dice"), fontsize=8)
        top = max(scale * mean_curve(r).max() for r in runs.values())
        ax.set_ylim(top - (1.5 if choice["score"] == "accuracy" else 0.15), top + (0.2 if choice["score"] == "accuracy" else 0.02))
        ax.tick_params(labelsize=7)
        ax.legend(fontsize=6, loc="lower right")
        ax.grid(alpha=0.3)
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    fig.tight_layout()
    for suffix in (".png", ".pdf"):
        fig.savefig(path.with_suffix(suffix), dpi=130)
    plt.close(fig)


START, END = "<!-- convergence:start -->", "<!-- convergence:end -->"
FAMILIES = {  # folder -> what it sets
    "fc": "Ex 1.1: the fully connected network, plain SGD, batch 64",
    "cnn_sgd": "Ex 1.2: the prescribed CNN, plain SGD (learning rate and batch)",
    "cnn_adam": "Ex 1.4: the same CNN with Adam",
    "cnn_variants": "Ex 1.3, 1.5: its one-change variants at its learning rate",
    "cnn_combination": "Ex 1.5: the combination, one-cycle (schedule length)",
    "segnet": "Ex 2.1-2.2: the encoder-decoder, Adam + cosine (schedule length)",
    "segnet_skip": "Ex 2.3: with U-Net skips (schedule length)",
    "segnet_depth3": "Ex 2.4: blocks of 3, batch norm, plain and residual (schedule length)",
    "segnet_depth3_nobn": "Ex 2.4: blocks of 3 without batch norm (learning rate, 80 epochs)",
    "segnet_lr": "Ex 2.1-2.4: the encoder-decoder's learning rate at its chosen length",
    "segnet_nobn": "Ex 2.2: the encoder-decoder without batch norm (learning rate, at that length)",
    "segnet_wd": "Ex 2.2: the encoder-decoder's weight decay (Adam's L2 penalty, at its rate and length)",
}


def markdown(choices: dict) -> str:
    """The tables of tuning/README.md: per family each candidate's numbers and the choice."""
    lines = []
    for family, choice in choices.items():
        scale, unit = (100, " %") if choice["score"] == "accuracy" else (1, "")
        chosen = ", ".join(f"`{name}`" for name in (choice.get("chosen_per_kind") or {"": choice["candidate"]}).values())
        lines += ["", f"**{family}**: {FAMILIES.get(family, '')}; chosen: {chosen}"
                  + (f", {choice['budget']} epochs" if choice.get("budget") else "")
                  + ("" if choice.get("established", True) else " (not established: the longest length tried)"), "",
                  "| candidate | seeds | plateau or final | budget | late gain |", "|---|---|---|---|---|"]
        for name, row in sorted(choice["rows"].items()):
            value = row.get("plateau", row.get("final"))
            gain = row.get("late_gain")
            digits = 2 if choice["score"] == "accuracy" else 3
            lines.append(f"| {name} | {row['seeds']} | {scale * value:.{digits}f}{unit} | {row.get('budget') or '-'} | "
                         + (f"{scale * gain:+.{digits}f}" if gain is not None else "-") + " |")
    return "\n".join(lines)


def update_readme(choices: dict) -> None:
    readme = RUNS_DIR.parent.parent / "README.md"
    text = readme.read_text() if readme.is_file() else ""
    if START in text and END in text:
        head, rest = text.split(START, 1)
        readme.write_text(f"{head}{START}\n{markdown(choices)}\n{END}{rest.split(END, 1)[1]}")


def main(argv=None) -> None:
    choices = {}
    for folder in sorted(p for p in RUNS_DIR.iterdir() if p.is_dir() and load(p)):
        choices[folder.name] = choice = choose(folder)
        print(f"\n{folder.name}: chosen {choice.get('chosen_per_kind') or choice['candidate']}, budget "
              f"{choice.get('budget')}" + ("" if choice.get("established", True) else
                                           " (NOT established: no longer schedule does as well or better)"))
        for name, row in choice["rows"].items():
            print(f"  {name:24s} " + ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}"
                                                for k, v in row.items() if k != "finals"))
    out = RUNS_DIR.parent
    (out / "choices.json").write_text(json.dumps(choices, indent=1, default=float) + "\n")
    figure(choices, out / "convergence")
    update_readme(choices)
    print(f"\nwrote {out / 'choices.json'} and {out / 'convergence.png'} (.pdf)")


if __name__ == "__main__":
    main(sys.argv[1:])
