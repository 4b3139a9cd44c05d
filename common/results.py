"""Results files: one JSON per exercise under ``<out>/results/``, holding the command, environment,
data, every configuration with its runs (``train.Runs``) and the exercise's findings;
and the saved weights of Exercise 1.5's best model."""
from __future__ import annotations

import datetime
import io
import json
import pickle
import shlex
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from . import metrics
from . import text
from .cli import Context, environment
from .data import DataError, Splits, atomic_write_bytes, atomic_write_json, shown_path
from .train import Runs, options


def summary(runs: Runs) -> dict:
    """Test and final validation score (mean, std, min, max over seeds), time per epoch and each run's
    fit verdict (``metrics.fit_verdict``, from its curves; none for runs that trained on their
    validation images) with the rule's tolerances."""
    s = runs.score
    held_out = all(r.get("validation_held_out", True) for r in runs.records)
    verdicts = [metrics.fit_verdict(r["history"], score=s) if held_out else
                {"verdict": "no hold-out", "why": "the validation images were trained on"} for r in runs.records]
    return {f"test_{s}": metrics.summarize([r["test"][s] for r in runs.records]),
            **({f"final_val_{s}": metrics.summarize([r["history"]["epochs"][-1]["val_score"] for r in runs.records])}
               if held_out else {}),
            "train_time_per_epoch_s": metrics.summarize([r["train_time_per_epoch_s"]["mean"] for r in runs.records]),
            "verdicts": [v["verdict"] for v in verdicts], "verdict_details": verdicts,
            "verdict": metrics.configuration_verdict([v["verdict"] for v in verdicts]),
            # the convergence check: each seed's late gain of its validation score, averaged over the seeds
            **({"late_val_gain": float(np.mean([metrics.late_gain([e["val_score"] for e in r["history"]["epochs"]])
                                                for r in runs.records]))} if held_out else {}),
            "verdict_thresholds": {**metrics.THRESHOLDS[s], "one_class": metrics.ONE_CLASS_SHARE,
                                   "diverged": metrics.DIVERGED_FACTOR}}


def entry(runs: Runs) -> dict:
    """A configuration as the results file holds it."""
    return {"name": runs.name, "label": runs.label, "score_name": runs.score, "num_weights": runs.num_weights,
            "runs": runs.records, "summary": summary(runs)}


def write(ctx: Context, exercise: str, configs: list, splits: Splits, findings: dict | None = None,
          arrays: dict[str, np.ndarray] | None = None, numbers: dict[str, str | int | list] | None = None, table: list[dict] | None = None) -> dict:
    """Write ``<out>/results/<exercise>.json`` (``configs``: ``Runs``, or their results-file form) and,
    if given, the ``arrays`` a figure needs (test images shown, their predictions) beside it as
    ``<exercise>.npz``; print one line per configuration. ``numbers``: what the report's section quotes,
    by names the script chose, as text (``common.text``) or (subject, predicate) pairs that the report words as one
    sentence (``text.grouped``); ``table``: the rows of its comparison table
    (``text.row``). Returns the record written."""
    entries = [entry(c) if isinstance(c, Runs) else c for c in configs]
    record = {
        "exercise": exercise,
        "command": shlex.join(["python", ctx.script.name, *ctx.argv]),
        "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(ctx.args).items()},
        "quick": ctx.quick,
        "seeds": ctx.seeds,
        "environment": environment(ctx.device),
        "data": splits.info,
        "created_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "wall_time_s": time.time() - ctx.started,
        "configs": entries,
        "findings": plain(findings or {}),
        "numbers": plain(numbers or {}),
        "table": table or [],
    }
    path = ctx.results_dir / f"{exercise}.json"
    atomic_write_json(path, record)
    if arrays:
        buffer = io.BytesIO()
        np.savez_compressed(buffer, **arrays)
        atomic_write_bytes(path.with_suffix(".npz"), buffer.getvalue())
    for e in entries:
        print(summary_line(e))
    print(f"results: {path}; figures: {ctx.figures_dir}")
    return record


def read(out_dir: Path, exercise: str, needs: tuple[str, ...] = ()) -> tuple[dict, dict[str, np.ndarray]]:
    """What :func:`write` wrote: the record and the arrays (empty if none). A missing results file, or one
    whose findings and arrays lack a name in ``needs``, is a DataError that says which script makes it."""
    path = Path(out_dir) / "results" / f"{exercise}.json"
    if not path.is_file():
        raise DataError(f"{shown_path(path)}: no such results file; python {exercise}.py makes it")
    record = json.loads(path.read_text())
    arrays_path = path.with_suffix(".npz")
    arrays = dict(np.load(arrays_path)) if arrays_path.is_file() else {}
    missing = [name for name in needs if name not in arrays and name not in record.get("findings", {})]
    if missing:
        raise DataError(f"{shown_path(path)} (and .npz): no {', '.join(missing)}, which its figures need (made by "
                        f"an older version of the script?); python {exercise}.py makes them")
    return record, arrays


def plain(value):
    """``value`` with NumPy scalars and arrays as Python numbers and lists, for JSON."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return plain(value.tolist())
    if isinstance(value, np.generic):
        return value.item()
    return value


def summary_line(config: dict) -> str:
    """One line: test score (mean ± std over seeds), weights, time per epoch, fit."""
    s, name = config["summary"], config["score_name"]
    scores = [r["test"][name] for r in config["runs"]]
    return (f"{config['name']}: test {name} {text.mean_std(name, scores)} over {len(scores)} seeds; "
            f"{config['num_weights']:,} weights; {s['train_time_per_epoch_s']['mean']:.2f} s/epoch; {s['verdict']}")


# --- saved models ----------------------------------------------------------------------------

SAVED_KEYS = ("name", "seed", "num_weights", "test_accuracy", "model_options", "state_dict")


def save_model(path: Path, runs: Runs, seed_index: int, splits: Splits) -> None:
    """The weights of one run of ``runs``, with what is needed to rebuild the model and to check it."""
    record = runs.records[seed_index]
    buffer = io.BytesIO()
    torch.save({"name": runs.label, "model_options": options(runs.config["model"]), "seed": record["seed"],
                "num_weights": runs.num_weights, "val_accuracy": record["history"]["epochs"][-1]["val_score"],
                "test_accuracy": record["test"]["accuracy"], "normalisation": splits.info["normalisation"],
                "state_dict": {k: v.cpu().contiguous() for k, v in runs.weights(seed_index).items()}}, buffer)
    atomic_write_bytes(path, buffer.getvalue())
    print(f"weights of {runs.name} seed {record['seed']}: {path}")


def load_model(path: Path, model_class: type[nn.Module]) -> dict:
    """What :func:`save_model` wrote to ``path``, with the rebuilt ``model``. Any other file (missing,
    not a torch file, another model's weights, missing entries) is a DataError naming the file."""
    if not Path(path).is_file():
        raise DataError(f"{shown_path(path)}: no such weights file")
    not_ours = f"{shown_path(path)}: not a weights file written by this project"
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError) as exc:  # torch's own message suggests
        # weights_only=False: wrong for a stray file
        raise DataError(f"{not_ours} (not a file torch.save wrote, or one holding more than tensors and plain "
                        "values)") from exc
    if not isinstance(saved, dict):
        raise DataError(f"{not_ours} (it holds a {type(saved).__name__}, not a dict)")
    missing = [key for key in SAVED_KEYS if key not in saved]
    if missing:
        raise DataError(f"{not_ours} (no {', '.join(missing)})")
    try:
        model = model_class(**saved["model_options"])
        model.load_state_dict(saved["state_dict"])
    except (TypeError, RuntimeError) as exc:  # options or weights of another model class
        reason = (str(exc).strip().splitlines() or [""])[0][:200]
        raise DataError(f"{not_ours} ({type(exc).__name__}: {reason})") from exc
    return {**saved, "model": model}
