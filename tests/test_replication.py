"""common.replication: every outcome in the findings of two runs of the scripts (another set of seeds,
another CPU), compared; the exit status says whether any differs. Hand-made findings and results folders."""
import json

import pytest

from common import metrics, replication

A, B = [0.812, 0.804, 0.829, 0.817, 0.801], [0.829, 0.811, 0.842, 0.826, 0.824]  # b higher in every pair


def timed(speedup: float, p: float) -> dict:
    """A paired timing as common.timing.versus records it."""
    return {"reference": "a", "speedup": speedup, "agreeing_repeats": 7, "repeats": 7, "p": p}


def findings(**changes) -> dict:
    """Findings of one script: comparisons (one nested, one with per-seed image tests), timings, counts, and
    values that are no outcome."""
    out = {
        "versus": metrics.compare(A, B, score="dice"),  # better
        "groups": {"depth 3": {"residual_vs_plain": metrics.compare(B, A, score="dice"),  # worse
                               "one_class_runs": metrics.compare_counts(4, 0, 4, 4),  # p = 2/70: a difference
                               "time_residual_vs_plain": timed(0.8, 0.0156)}},  # slower
        "images": metrics.compare(A, [0.83, 0.79, 0.83, 0.81, 0.80], [[0.5, 0.6]] * 5, [[0.6, 0.7]] * 5,
                                  score="dice"),  # unresolved; its per-seed Wilcoxon tests are no outcome
        "step_timing": {"64": {"NumPy": {"per_batch_s": 0.01, "versus": timed(1.33, 0.0156)},  # faster
                               "PyTorch (CPU)": {"per_batch_s": 0.013}}},
        "same_speed": timed(1.6, 0.45),  # about as fast
        "few_runs": metrics.compare_counts(1, 0, 1, 1),  # p = 1: no difference
        "ratio": 2.5, "name": "Test/image_01.png", "per_seed": [0.5, 0.25],
        "reach": {"threshold": 0.75, "per_seed": [{"epoch": 3}]},
    }
    return {**out, **changes}


def test_outcomes_finds_comparisons_timings_and_fisher_counts_at_any_depth():
    assert dict(replication.outcomes(findings())) == {
        "versus": "better",
        "groups.depth 3.residual_vs_plain": "worse",
        "groups.depth 3.one_class_runs": "a difference",
        "groups.depth 3.time_residual_vs_plain": "slower",
        "images": "unresolved",
        "step_timing.64.NumPy.versus": "faster",
        "same_speed": "about as fast",
        "few_runs": "no difference",
    }
    assert list(replication.outcomes({"ratio": 2.5, "nested": {"n": 3}})) == []  # no outcome: nothing


def write_results(folder, **files) -> str:
    """A results folder: one <script>.json per keyword, holding only its findings."""
    folder.mkdir(parents=True)
    for script, found in files.items():
        (folder / f"{script}.json").write_text(json.dumps({"findings": found}))
    return str(folder)


def test_main_exits_0_when_every_outcome_replicates(tmp_path, capsys):
    reference = write_results(tmp_path / "reference", ex9_9=findings(), ex9_8={"versus": metrics.compare(B, A, score="dice")})
    # other numbers, the same outcomes (b still higher in every pair, a timing faster by another ratio)
    other = write_results(tmp_path / "seed100", ex9_9=findings(versus=metrics.compare(A, [b + 0.01 for b in B], score="dice"),
                                                               same_speed=timed(0.7, 0.3)),
                          ex9_8={"versus": metrics.compare(B, A, score="dice")})
    assert replication.main([reference, other]) == 0
    assert capsys.readouterr().out == f"{other}: 0 of 9 outcomes differ from {reference}\n"


def test_main_exits_1_and_names_each_outcome_that_differs(tmp_path, capsys):
    reference = write_results(tmp_path / "reference", ex9_9=findings())
    same = write_results(tmp_path / "same", ex9_9=findings())
    changed = findings(versus=metrics.compare(A, [0.83, 0.79, 0.83, 0.81, 0.80], score="dice"),  # now unresolved
                       same_speed=timed(1.6, 0.01))  # now faster
    changed["groups"]["depth 3"]["one_class_runs"] = metrics.compare_counts(1, 0, 4, 4)  # p = 1
    other = write_results(tmp_path / "avx2", ex9_9=changed)
    assert replication.main([reference, same, other]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out == [f"{same}: 0 of 8 outcomes differ from {reference}",
                   f"{other}: 3 of 8 outcomes differ from {reference}",
                   "  ex9_9: groups.depth 3.one_class_runs: a difference -> no difference",
                   "  ex9_9: same_speed: about as fast -> faster",
                   "  ex9_9: versus: better -> unresolved"]  # sorted by where


def test_only_outcomes_both_runs_hold_are_compared(tmp_path, capsys):
    reference = write_results(tmp_path / "reference", ex9_9={"versus": metrics.compare(A, B, score="dice")})
    other = write_results(tmp_path / "other", ex9_9={"versus": metrics.compare(A, B, score="dice"),
                                                      "new": metrics.compare(B, A, score="dice")},
                          ex9_7={"versus": metrics.compare(B, A, score="dice")})  # a script the reference lacks
    assert replication.main([reference, other]) == 0
    assert capsys.readouterr().out == f"{other}: 0 of 1 outcomes differ from {reference}\n"


def test_main_without_two_folders_prints_its_usage(capsys):
    with pytest.raises(SystemExit) as stopped:
        replication.main(["report/results"])
    assert stopped.value.code == 2 and "usage:" in capsys.readouterr().err


def tables(folder, seeds: list[int], **files) -> str:
    """A results folder: one <script>.json per keyword, holding its comparison table rows (label -> outcome) and
    one configuration trained with ``seeds``."""
    folder.mkdir(parents=True)
    for script, rows in files.items():
        record = {"findings": {}, "configs": [{"runs": [{"seed": s} for s in seeds]}],
                  "table": [{"row": label, "outcome": outcome} for label, outcome in rows.items()]}
        (folder / f"{script}.json").write_text(json.dumps(record))
    return str(folder)


def test_written_record_holds_the_reruns_seeds_and_table_outcomes_and_exits_0(tmp_path, capsys):
    reference = tables(tmp_path / "reference", [0, 1, 2], ex9_9={"batch norm": "better", "epochs": "sooner"})
    reference_findings = json.loads((tmp_path / "reference" / "ex9_9.json").read_text())
    (tmp_path / "reference" / "ex9_9.json").write_text(json.dumps({**reference_findings, "findings": {
        "versus": metrics.compare(A, B, score="dice")}}))  # better
    other = tables(tmp_path / "seed100", [100, 101, 102], ex9_9={"batch norm": "better", "epochs": "not distinguishable"})
    other_findings = json.loads((tmp_path / "seed100" / "ex9_9.json").read_text())
    (tmp_path / "seed100" / "ex9_9.json").write_text(json.dumps({**other_findings, "findings": {
        "versus": metrics.compare(A, [0.83, 0.79, 0.83, 0.81, 0.80], score="dice")}}))  # unresolved
    out = tmp_path / "replication.json"
    assert replication.main([reference, other]) == 1  # a gate: an outcome differs
    assert replication.main([reference, other, "--write", str(out)]) == 0  # a record for the report
    assert json.loads(out.read_text()) == {"seeds": [100, 101, 102], "seed_sets": [[100, 101, 102]], "outcomes": {
        "ex9_9": {"batch norm": "better", "epochs": "not distinguishable"}}}
    for wrong in ([reference, "--write"], [reference, other, other, "--write", str(out)]):  # no path; two reruns
        with pytest.raises(SystemExit) as stopped:
            replication.main(wrong)
        assert stopped.value.code == 2


def test_written_record_holds_the_other_cpus_table_outcomes_too(tmp_path, capsys):
    reference = tables(tmp_path / "reference", [0, 1, 2], ex9_9={"batch norm": "better"})
    other = tables(tmp_path / "seed100", [100, 101, 102], ex9_9={"batch norm": "better"})
    cpu = tmp_path / "other_cpu"
    cpu.mkdir()  # a partial rerun: one row of its script's table
    (cpu / "ex9_9.json").write_text(json.dumps({"table": [{"row": "batch norm", "outcome": "not distinguishable"}]}))
    out = tmp_path / "replication.json"
    assert replication.main([reference, other, "--write", str(out), "--other-cpu", str(cpu)]) == 0
    assert json.loads(out.read_text())["other_cpu"] == {"device": "", "outcomes": {"ex9_9": {"batch norm": "not distinguishable"}}}
    # the other CPU by the name its results record, for the report to say which; several names: none
    amd = {"environment": {"device_name": "CPU: AMD EPYC (1 torch thread, 2 logical cores)"}}
    assert replication.cpu_name({"ex9_9": amd, "ex9_8": amd}) == "AMD EPYC"
    assert replication.cpu_name({"ex9_9": amd, "ex9_8": {"environment": {"device_name": "CPU: Intel(R) Xeon(R) Processor"}}}) == ""
    with pytest.raises(SystemExit) as stopped:  # --other-cpu only goes into the record
        replication.main([reference, other, "--other-cpu", str(cpu)])
    assert stopped.value.code == 2
