"""Results files: one JSON per exercise under ``<out>/results/`` recording a run completely."""
from __future__ import annotations

import datetime
import json
import shlex
import time
from pathlib import Path

from .cache import atomic_write_json
from .cli import Context
from .runtime import environment


def command_line(ctx: Context) -> str:
    return shlex.join(["python", ctx.script.name, *ctx.argv])


def write_results(ctx: Context, exercise: str, configs: list[dict], data_info: dict,
                  extra: dict | None = None) -> Path:
    """Write ``<out>/results/<exercise>.json`` and return its path.

    ``configs`` are the dicts of ``common.experiment.run_seeds``; ``extra`` holds
    exercise-specific findings (e.g. weight counts compared, timing ratios).
    """
    record = {
        "exercise": exercise,
        "command": command_line(ctx),
        "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(ctx.args).items()},
        "quick": ctx.quick,
        "seeds": ctx.seeds,
        "environment": environment(ctx.device),
        "data": data_info,
        "created_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "wall_time_s": time.time() - ctx.started,
        "configs": [{k: v for k, v in c.items() if not k.startswith("_")} for c in configs],
        **({"findings": extra} if extra else {}),
    }
    path = ctx.results_dir / f"{exercise}.json"
    atomic_write_json(path, record)
    print(f"results: {path}")
    return path


def load_results(path: Path) -> dict:
    return json.loads(Path(path).read_text())


def config_by_name(results: dict, name: str) -> dict:
    for config in results["configs"]:
        if config["name"] == name:
            return config
    raise KeyError(f"no configuration {name!r} in results; have {[c['name'] for c in results['configs']]}")


def without_validation(config: dict, why: str) -> dict:
    """A copy of ``config`` (a ``run_seeds`` result) trained without a hold-out: its summary keeps
    no validation score and no fit verdict (both would compare training data with itself); the
    verdicts read ``why``. The runs stay as recorded, their curves and per-run verdicts included
    (those are computed on the validation images, here training images too)."""
    summary = {k: v for k, v in config["summary"].items() if not k.startswith("final_val_")}
    summary["verdicts"] = [why] * len(config["runs"])
    return {**config, "summary": summary}


def summary_line(config: dict) -> str:
    """One line per configuration: test score (mean ± std over seeds), weights, speed, verdicts."""
    s = config["summary"]
    score = s[f"test_{config['score_name']}"]
    scale, unit = (100, " %") if config["score_name"] == "accuracy" else (1, "")
    return (f"{config['name']}: test {config['score_name']} {score['mean'] * scale:.4g} ± {score['std'] * scale:.2g}{unit} "
            f"over {score['n']} seed(s); {config['num_weights']:,} weights; "
            f"{s['train_time_per_epoch_s']['mean']:.2f} s/epoch; {', '.join(sorted(set(s['verdicts'])))}")
