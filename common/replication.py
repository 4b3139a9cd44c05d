"""Does every direction the report states survive another set of seeds, or another CPU's rounding?

    python -m common.replication report/results scratch/seed100/results [more folders ...]

Reads the results files of the same scripts run twice (e.g. ``make results OUT=scratch/seed100
SCRIPT_ARGS="--seed 100"``) and lists every outcome in their findings: each comparison of two
configurations (``metrics.compare``: better, worse or not distinguishable; ``evaluation.paired_epochs_to_threshold``:
sooner, later or not distinguishable), each paired timing
(``timing.versus``: faster, slower or about as fast) and each comparison of counts (Fisher's test).
Prints the outcomes that differ, and how many were compared; exits 1 if any differ.

    python -m common.replication report/results scratch/seed100/results --write report/replication.json

also writes, for the report, the seeds of the second folder and the outcome of each row of its comparison
tables; ``common.report`` checks each direction its own tables state (a row's outcome in DIRECTIONS; timings
aside: they do not depend on the seeds) against the same row there, and marks those that did not hold. With
--write it exits 0 (a record, not a gate). ``--other-cpu scratch/other_cpu/results`` adds the table outcomes
of the scripts run with another CPU's kernels (the report's seeds; a results file there may hold only some
rows of its table), which the report checks its directions against too.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Iterator

from . import text
from .data import atomic_write_bytes
from .metrics import ALPHA


def outcomes(findings, path: str = "") -> Iterator[tuple[str, str]]:
    """(where, outcome) of every comparison, timing and count comparison below ``findings``."""
    if isinstance(findings, dict):
        if "outcome" in findings and "difference" in findings:  # a comparison, or epochs to a threshold
            yield path, findings["outcome"]
        elif "speedup" in findings and "p" in findings:
            yield path, text.speed_outcome(findings)
        elif {"a_runs", "b_runs", "p"} <= set(findings):
            yield path, ("a difference" if findings["p"] < ALPHA else "no difference")
        for key, value in findings.items():
            yield from outcomes(value, f"{path}.{key}" if path else str(key))


def read(folder: Path) -> dict[str, str]:
    return {f"{stem}: {where}": o for stem, record in read_records(folder).items()
            for where, o in outcomes(record["findings"])}


DIRECTIONS = ("better", "worse", "sooner", "later", "fewer", "more")  # a table row's outcome that states one


def rerun_outcomes(other: Path) -> dict:
    """What the report needs to check its directions against a rerun: the rerun's seeds, each configuration's
    set of them (five seeds for most, eight for Ex 2.4's networks without batch norm) and the outcome of each
    row of its comparison tables, {"seeds": [...], "seed_sets": [[...], ...], "outcomes": {results stem: {row
    label: outcome}}}, each results file read once. The report compares them with its own rows when it is built
    (``common.report.not_held``), so a mark never goes stale."""
    records = read_records(other)
    sets = {tuple(sorted(run["seed"] for run in config["runs"])) for r in records.values() for config in r["configs"]}
    return {"seeds": sorted({run["seed"] for r in records.values() for config in r["configs"] for run in config["runs"]}),
            "seed_sets": [list(s) for s in sorted(sets, key=lambda s: (len(s), s))],
            "outcomes": table_outcomes(records)}


def cpu_of(record: dict) -> str:
    """The CPU a results file was computed on, as its environment names it: "AMD EPYC" (from "CPU: AMD EPYC (1 torch
    thread, 2 logical cores)"); "" where it names none."""
    return record.get("environment", {}).get("device_name", "").removeprefix("CPU: ").split(" (")[0]


def cpu_name(records: dict[str, dict]) -> str:
    """The one CPU the records were computed on (``cpu_of``); "" for none or several."""
    names = {cpu_of(r) for r in records.values()}
    return names.pop() if len(names) == 1 else ""


def read_records(folder: Path) -> dict[str, dict]:
    """Every results file in ``folder``, by stem, each read once."""
    return {file.stem: json.loads(file.read_text()) for file in sorted(Path(folder).glob("*.json"))}


def row_outcomes(record: dict) -> dict[str, str]:
    """The outcome of each row of a record's comparison table, by label. A record may hold only some of its
    script's rows (a partial rerun)."""
    return {row["row"]: row["outcome"] for row in record.get("table", [])}


def table_outcomes(records: dict[str, dict]) -> dict[str, dict[str, str]]:
    """``row_outcomes`` of each record: {results stem: {row label: outcome}}."""
    return {stem: row_outcomes(r) for stem, r in records.items()}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("reference", type=Path, help="the report's results folder")
    parser.add_argument("others", type=Path, nargs="+", help="the same scripts' results, rerun")
    parser.add_argument("--write", type=Path, help="write the rerun's seeds and table outcomes here (one rerun)")
    parser.add_argument("--other-cpu", type=Path, help="with --write: the same scripts' results with another CPU's "
                        "kernels (the report's seeds), whose table outcomes are written too, as \"other_cpu\"")
    args = parser.parse_args(argv)
    if args.write and len(args.others) != 1:
        parser.error("--write takes one rerun folder")
    if args.other_cpu and not args.write:
        parser.error("--other-cpu goes with --write")
    if args.write:  # a record for the report, not a gate: outcomes that differ are what it is for
        record = rerun_outcomes(args.others[0])
        if args.other_cpu:
            records = read_records(args.other_cpu)
            record["other_cpu"] = {"device": cpu_name(records), "outcomes": table_outcomes(records)}
        atomic_write_bytes(args.write, (json.dumps(record, indent=1, ensure_ascii=False) + "\n").encode())
        print(f"wrote {args.write}")
    reference = read(args.reference)
    changed = 0
    for folder in args.others:
        other = read(folder)
        common = sorted(set(reference) & set(other))
        differ = [k for k in common if reference[k] != other[k]]
        changed += len(differ)
        print(f"{folder}: {len(differ)} of {len(common)} outcomes differ from {args.reference}")
        for k in differ:
            print(f"  {k}: {reference[k]} -> {other[k]}")
    return 1 if changed and not args.write else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
