"""Numbers in words, as the scripts print them and the report quotes them (plain text; common.latex escapes it).

A score prints at the report's precision: accuracy in percent with 2 decimals ("98.85 %", a difference in
points), HD95 in pixels with 1, Dice and boundary F1 with 3. A comparison (``metrics.compare``) prints as its
outcome ("better", "worse", "not distinguishable") and its paired difference with the 95 % interval.
"""
from __future__ import annotations

import math

FORMATS = {"accuracy": (100, 2, " %", " points"), "hd95": (1, 1, " px", " px")}  # scale, decimals, unit, of a difference
OUTCOMES = {"better": "better", "worse": "worse", "unresolved": "not distinguishable"}


def score(name: str, x: float) -> str:
    """``x`` of the score ``name``: "97.12 %", "0.348", "12.3 px"."""
    scale, decimals, unit, _ = FORMATS.get(name, (1, 3, "", ""))
    return f"{scale * x:.{decimals}f}{unit}"


def signed(name: str, x: float, unit: bool = True) -> str:
    """A difference of the score ``name``: "+0.31 points", "−0.012"."""
    scale, decimals, _, diff_unit = FORMATS.get(name, (1, 3, "", ""))
    shown = f"{abs(scale * x):.{decimals}f}"
    sign = "−" if x < 0 and float(shown) != 0 else "+"  # never "−0.000"
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


def outcome(comparison: dict) -> str:
    """"better", "worse" or "not distinguishable" (``metrics.compare``'s outcome)."""
    return OUTCOMES[comparison["outcome"]]


def difference(comparison: dict) -> str:
    """The paired difference and its 95 % interval: "+0.31 points (95 % CI +0.12 to +0.50)"."""
    name, c = comparison["score"], comparison
    if not math.isfinite(c["ci_low"]):
        return signed(name, c["difference"])
    return (f"{signed(name, c['difference'])} (95 % CI {signed(name, c['ci_low'], unit=False)} to "
            f"{signed(name, c['ci_high'], unit=False)})")


def p_value(p: float) -> str:
    return "p < 0.001" if p < 0.001 else f"p = {p:.2g}"


def speed(versus: dict) -> str:
    """A paired timing (``timing.versus``: the median speed-up over paired repeats and its sign test):
    "1.33× faster", "1.25× slower" or "about as fast"."""
    s = versus["speedup"]
    if versus["p"] >= 0.05:
        return "about as fast"
    return f"{s:.2f}× faster" if s >= 1 else f"{1 / s:.2f}× slower"


def ms(seconds: float) -> str:
    """Milliseconds to 2 significant digits, whole numbers from 10 on: "0.96", "4.2", "12", "153", "1530"."""
    v = 1000 * seconds
    return f"{v:.0f}" if v >= 9.95 else f"{v:.1f}" if v >= 0.995 else f"{v:.2f}"
