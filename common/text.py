"""Numbers in words, as the scripts print them and the report quotes them (plain text; common.report.tex escapes it).

A score prints at the report's precision: accuracy in percent with 2 decimals ("98.85 %", a difference in
points), HD95 in pixels with 1, Dice and boundary F1 with 3. A comparison (``metrics.compare``) prints as its
outcome ("better", "worse", "not distinguishable") and its paired difference with the 95 % interval.
"""
from __future__ import annotations

import math
import re
import statistics

from .metrics import ALPHA, most_frequent

FORMATS = {"accuracy": (100, 2, " %", " points"), "hd95": (1, 1, " px", " px")}  # scale, decimals, unit, of a difference
OUTCOMES = {"better": "better", "worse": "worse", "unresolved": "not distinguishable"}
RELATIONS = {"better": "better than", "worse": "worse than", "unresolved": "not distinguishable from"}
CLAIM = re.compile(r"⟨([^|⟩]*)\|([^⟩]*)⟩")  # ``claim``'s mark: ⟨table row|the phrase that states its outcome⟩


def p_value(p: float) -> str:
    """A test's p-value as a table gives it: "p = 0.37", "p < 0.01"."""
    return "p < 0.01" if p < 0.01 else f"p = {p:.2f}"


def score(name: str, x: float) -> str:
    """``x`` of the score ``name``: "97.12 %", "0.348", "12.3 px"."""
    scale, decimals, unit, _ = FORMATS.get(name, (1, 3, "", ""))
    return f"{scale * x:.{decimals}f}{unit}".replace("-", "−")  # a minus sign, not a hyphen


def signed(name: str, x: float, unit: bool = True) -> str:
    """A difference of the score ``name``: "+0.31 points", "−0.012"; one that rounds to zero with up to two more
    decimals, so that an interval's bound keeps its side of zero: "+0.0004", not "+0.000"."""
    scale, decimals, _, diff_unit = FORMATS.get(name, (1, 3, "", ""))
    shown = f"{abs(scale * x):.{decimals}f}"
    for more in (1, 2):
        if float(shown) == 0 and x != 0:
            shown = f"{abs(scale * x):.{decimals + more}f}"
    sign = "−" if x < 0 else "+"  # the side of zero, however small
    return f"{sign}{shown}" + (diff_unit if unit else "")


def mean_std(name: str, values) -> str:
    """Mean ± standard deviation over seeds: "98.85 ± 0.07 %" (one value: that value)."""
    values = [float(v) for v in values]
    mean = sum(values) / len(values)
    if len(values) < 2:
        return score(name, mean)
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))
    scale, decimals, unit, _ = FORMATS.get(name, (1, 3, "", ""))
    return f"{scale * mean:.{decimals}f} ± {scale * std:.{decimals}f}{unit}"


def outcome(comparison: dict, row: str | None = None) -> str:
    """"better", "worse" or "not distinguishable" (``metrics.compare``'s outcome); with ``row``, marked as the
    table row's outcome (``claim``)."""
    return claim(OUTCOMES[comparison["outcome"]], row)


def relation(comparison: dict, row: str | None = None, other: str = "") -> str:
    """"better than", "worse than" or "not distinguishable from", for a sentence, and ``other`` after it ("better
    than SGD's"); with ``row``, the label of the table row that states the same comparison, marked (``claim``)."""
    return claim(" ".join(filter(None, (RELATIONS[comparison["outcome"]], other))), row)


def claim(phrase: str, row: str | None) -> str:
    """``phrase``, which states a comparison's outcome; with ``row``, marked as the outcome of that table row: "⟨row|phrase⟩". The
    report resolves the mark when it is built (``common.report.resolve_claims``): to the phrase; where other seeds
    did not give the row's direction, to the phrase and which seeds did and did not ("better than the baseline with
    seeds 0–4 but not with new seeds"), so that a sentence never states a direction the report leaves open."""
    return phrase if row is None else f"⟨{row}|{phrase}⟩"


def row(label: str, comparison: dict) -> dict[str, str]:
    """One row of an exercise's comparison table (``common.report``): b against a, each as mean ± std over the
    seeds, their paired difference b − a with its 95 % interval, the seeds whose test over the test images
    (p < 0.05) agrees / disagrees with the difference's sign, and the outcome."""
    name, c = comparison["score"], comparison
    images = c.get("images")
    return {"row": label, "a": mean_std(name, c["a"]), "b": mean_std(name, c["b"]), "difference": signed(name, c["difference"], unit=False),
            "ci": (f"{signed(name, c['ci_low'], unit=False)} to {signed(name, c['ci_high'], unit=False)}"
                   if math.isfinite(c["ci_low"]) else "–"),
            "images": f"{images['agree']} / {images['disagree']}" if images else "–", "outcome": outcome(c)}


def plain_row(label: str, a: str, b: str, outcome: str) -> dict[str, str]:
    """A table row of two values and an outcome that has no paired difference or interval over seeds (a
    timing, a count), in ``row``'s layout: "–" in the cells it lacks."""
    return {"row": label, "a": a, "b": b, "difference": "–", "ci": "–", "images": "–", "outcome": outcome}


def cells(prefix: str, comparison: dict) -> dict[str, str]:
    """``row``'s cells and the ``relation`` as numbers named ``<prefix>_a``, ``<prefix>_difference``, ...,
    for a table or sentence the report writes itself."""
    return {f"{prefix}_{k}": v for k, v in {**row("", comparison), "relation": relation(comparison)}.items() if k != "row"}


def compared(sooner: dict) -> bool:
    """Whether ``evaluation.paired_epochs_to_threshold`` had the two pairs (or more) an interval needs."""
    return sooner["both_reach"] > 1 and math.isfinite(sooner["ci_low"])


def epochs_row(label: str, sooner: dict) -> dict[str, str]:
    """A table row for ``evaluation.paired_epochs_to_threshold``: the first epoch each reaches the threshold
    (mean over the seeds that reach it, with their count), b − a over the pairs that both reach it (their count) with its
    95 % interval, and its outcome: "sooner", "later" or "not distinguishable" (b against a), or "too few pairs"
    where fewer than two pairs both reach it (no interval)."""
    def reach(side: str) -> str:
        epochs = [e for e in sooner[f"{side}_epochs"] if e is not None]
        mean = f"{sum(epochs) / len(epochs):.1f}" if epochs else "never"
        return f"{mean} ({len(epochs)} of {len(sooner[f'{side}_epochs'])})"

    finite = compared(sooner)
    return {"row": label, "a": reach("a"), "b": reach("b"),
            "difference": (f"{sooner['difference']:+.1f} ({sooner['both_reach']} pair{'s' * (sooner['both_reach'] > 1)})"
                           .replace("-", "−") if sooner["both_reach"] else "–"),
            "ci": f"{sooner['ci_low']:+.1f} to {sooner['ci_high']:+.1f}".replace("-", "−") if finite else "–",
            "images": "–", "outcome": OUTCOMES.get(sooner["outcome"], sooner["outcome"]) if finite else "too few pairs"}


def when(sooner: dict, other: str, row: str | None = None) -> str:
    """The outcome of ``evaluation.paired_epochs_to_threshold`` in words, against ``other``: "sooner than SGD",
    "later than SGD", "neither measurably sooner nor later than SGD" (not distinguishable), or, where fewer than two pairs of seeds
    both reach it, "too rarely alongside SGD to compare the epochs (1 of 8 pairs)"; with ``row``, marked as the
    table row's outcome (``claim``)."""
    if not compared(sooner):
        return f"too rarely alongside {other} to compare the epochs ({sooner['both_reach']} of {sooner['pairs']} pairs)"
    return claim({"sooner": f"sooner than {other}", "later": f"later than {other}",
                  "unresolved": f"neither measurably sooner nor later than {other}"}[sooner["outcome"]], row)


def against_target(name: str, seeds: list[float], target: float) -> str:
    """Where the seeds' scores lie against the ``target`` an exercise asks for: "above the 98.00 % asked for
    (every seed)", "above the 98.00 % asked for on average (3 of 5 seeds)", "below the 98.00 % asked for"."""
    above, shown = sum(s > target for s in seeds), score(name, target)
    if sum(seeds) / len(seeds) <= target:
        return f"below the {shown} asked for"
    return f"above the {shown} asked for " + ("(every seed)" if above == len(seeds) else
                                               f"on average ({above} of {len(seeds)} seeds)")


def join(items: list[str]) -> str:
    """"a", "a and b", "a, b and c"."""
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"


def grouped(pairs: list[tuple[str, str]]) -> str:
    """(subject, predicate) pairs as one sentence, the subjects of one predicate together, in the order the
    predicates first appear: [("batch norm", "better than the baseline"), ("tanh", "not distinguishable from
    the baseline"), ("augmentation", "better than the baseline")] -> "batch norm and augmentation are better
    than the baseline, and tanh is not distinguishable from the baseline" (clauses joined by ", and "). The
    report groups a script's pairs once their claims are resolved (``common.report.exercise_macros``)."""
    predicates = dict.fromkeys(q for _, q in pairs)
    clauses = []
    for p in predicates:
        subjects = [s for s, q in pairs if q == p]
        clauses.append(f"{join(subjects)} {'is' if len(subjects) == 1 else 'are'} {p}")
    return clauses[0] if len(clauses) == 1 else f"{', '.join(clauses[:-1])}, and {clauses[-1]}"


# a fit verdict (metrics.fit_verdict) as a verb: plural, singular
FIT_VERBS = {"over-fitting": ("over-fit", "over-fits"), "under-fitting": ("under-fit", "under-fits"),
             "good fit": ("fit well", "fits well"), "not converged": ("have not converged", "has not converged"),
             "borderline": ("are borderline", "is borderline"), "diverged": ("diverged", "diverged"),
             "one class": ("predict one class", "predicts one class"),
             "no hold-out": ("trained on their validation images", "trained on its validation images")}


def prose_names(labels: list[str]) -> list[str]:
    """Configurations' labels as the subjects of a sentence: without a closing bracket or learning rate ("NumPy (our
    own)" -> "NumPy", "Adam, lr 0.001" -> "Adam", "baseline (Ex 1.2)" -> "the baseline") unless two would then read
    alike ("PyTorch (CPU)", "PyTorch (CUDA)"); a change as the network it makes ("no augmentation" -> "the network
    without augmentation", "+ weight decay 0.001" -> "the network with weight decay 0.001"); quoted where a comma
    would split a list ("“depth 3, plain”")."""
    short = [re.sub(r"\s*\([^()]*\)$|, lr [0-9.e-]+$", "", label) for label in labels]
    names = short if len(set(short)) == len(short) else labels
    names = [f"the network without {n[3:]}" if n.startswith("no ") else f"the network with {n[2:]}" if n.startswith("+ ")
             else f"the {n}" if n == "baseline" else n for n in names]
    return [f"“{name}”" if "," in name else name for name in names]


def capitalised(phrase: str) -> str:
    """``phrase`` with its first letter upper-case, after any opening quote or sign: "“b, c” fit" -> "“B, c” fit"."""
    return re.sub(r"[^\W\d_]", lambda m: m.group(0).upper(), phrase, count=1)


def fit_comment(configs: list[tuple[str, dict, str]]) -> str:
    """The configurations' fit (label, ``results.summary``, score name) as a clause, by the verdict most of each
    one's seeds share (Table 1 gives the counts; "mostly" where not all do), the networks of one verdict together:
    "batch norm fits well; tanh and augmentation mostly over-fit"; where no verdict has most seeds, "the fit of the
    combination varies between seeds". What the curves show (``fit_reason``) follows a verdict of one network in a
    clause of at most two verdicts: "the network over-fits (its validation loss bottoms out near epoch 10, then
    rises)". Networks are named as in prose (``prose_names``); no configurations: ""."""
    # (verdict, shared by all seeds?) -> networks; verdict None: no verdict has most seeds
    groups: dict[tuple[str | None, bool], list[tuple[str, dict]]] = {}
    for name, (_, summary, _) in zip(prose_names([label for label, _, _ in configs]), configs):
        top, n = most_frequent(summary["verdicts"]), len(summary["verdicts"])
        share = summary["verdicts"].count(top)
        groups.setdefault((None, False) if share * 2 <= n else (top, share == n), []).append((name, summary))
    clauses = []
    for (verdict, unanimous), members in groups.items():
        if len(groups) == 1:
            subject = {1: "the network", 2: "both networks"}.get(len(members), f"all {len(members)} networks")
        else:
            subject = join([name for name, _ in members])
        if verdict is None:
            clauses.append(f"the fit of {subject} varies between seeds")
            continue
        reason = fit_reason(members[0][1]) if len(members) == 1 and len(groups) <= 2 else ""
        clauses.append(f"{subject} {fit_verb(verdict, len(members) == 1, mostly=not unanimous)}"
                       + (f" ({reason})" if reason else ""))
    return "; ".join(clauses)


def fit_verb(verdict: str, singular: bool, mostly: bool = False) -> str:
    """A verdict as a verb (``FIT_VERBS``); ``mostly`` where only most seeds share it: "mostly over-fits", "is mostly
    borderline", "have mostly not converged"."""
    verb = FIT_VERBS[verdict][singular]
    if not mostly:
        return verb
    first, _, rest = verb.partition(" ")
    return f"{first} mostly {rest}" if first in ("is", "are", "has", "have") else f"mostly {verb}"


def fit_reason(summary: dict) -> str:
    """What the curves show behind a configuration's most frequent fit verdict (``results.summary``), in words, from
    the seeds that share it: for over-fitting, "its validation loss bottoms out near epoch 10, then rises" (the
    median epoch of those seeds' minima) where the rise decided it in most of them, else "its training score stays
    above its validation score"; "its training score stays low" (under-fitting); "its validation score still rises
    at the end" (not converged); "" where the verdict says it all (good fit, borderline, one class, diverged, no
    hold-out)."""
    top = most_frequent(summary["verdicts"])
    details = [d for d in summary["verdict_details"] if d["verdict"] == top]
    if top == "over-fitting":
        rising = [d for d in details if d["states"]["rise"] == "exceeded"]
        epochs = [d["best_val_loss_epoch"] for d in rising if d.get("best_val_loss_epoch")]
        if len(rising) * 2 < len(details):
            return "its training score stays above its validation score"
        return (f"its validation loss bottoms out near epoch {round(statistics.median(epochs))}, then rises" if epochs
                else "its validation loss rises again after its minimum")
    return {"under-fitting": "its training score stays low",
            "not converged": "its validation score still rises at the end"}.get(top, "")


def speed_outcome(versus: dict) -> str:
    """A paired timing's (``timing.versus``) direction: "about as fast" where its sign test does not resolve
    one, else "faster" or "slower"."""
    if versus["p"] >= ALPHA:
        return "about as fast"
    return "faster" if versus["speedup"] >= 1 else "slower"


def speed(versus: dict, relation: bool = False) -> str:
    """A paired timing (``timing.versus``: the median speed-up over paired repeats and its sign test):
    "1.33× faster", "1.25× slower" or "about as fast"; with ``relation``, for a sentence: "1.33× faster
    than", "about as fast as"."""
    s, outcome = versus["speedup"], speed_outcome(versus)
    if outcome == "about as fast":
        return outcome + (" as" if relation else "")
    return (f"{s:.2f}× faster" if outcome == "faster" else f"{1 / s:.2f}× slower") + (" than" if relation else "")


def ms(seconds: float) -> str:
    """Milliseconds to three significant digits, so that a ratio of two shown can be checked against the speed-up
    beside them: "0.962", "4.21", "12.4", "153"."""
    v = 1000 * seconds
    return f"{v:.0f}" if v >= 99.95 else f"{v:.1f}" if v >= 9.995 else f"{v:.2f}" if v >= 0.9995 else f"{v:.3f}"
