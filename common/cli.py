"""The command line every exercise script shares, and the set-up that follows parsing."""
from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from .cache import REPO_ROOT, cache_dir
from .data import DataError, shown_path  # shown_path: also for the scripts' own messages
from .runtime import DEVICE_CHOICES, environment, resolve_device, seed_everything

DATA_DIR_ENV = "DLIA_DATA_DIR"
REPORT_DIR = REPO_ROOT / "report"  # the committed results; --quick never writes into it
QUICK_OUT_DIR = REPO_ROOT / "scratch" / "quick"
QUICK_EPOCHS = 1
QUICK_MAX_SEEDS = 2
MAX_SEED = 2**32 - 1  # NumPy's seeds are 32-bit: every seed of a run (seed .. seed+num_seeds-1) must fit
EXIT_INTERRUPTED = 130  # 128 + SIGINT, what a shell reports for a program stopped by Ctrl-C
INTERRUPTED_MESSAGE = ("interrupted; finished runs are cached and a rerun (without --no-cache) reuses them; "
                       "the run in progress starts over")


def default_data_dir() -> Path:
    return Path(os.environ.get(DATA_DIR_ENV, REPO_ROOT / "data"))


def positive_float(text: str) -> float:
    """An ``argparse`` type: a finite number above 0 (``nan``, ``inf``, 0 and negatives are refused)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"must be a finite number above 0, got {text!r}")
    return value


def unwritable_reason(folder: Path) -> str | None:
    """None if files can be written into ``folder`` (created if missing), else why not.

    Checked before any training, so that a bad ``--out-dir`` or cache directory fails at once
    instead of after hours of training."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        return exc.strerror or str(exc)
    return None


def is_inside(path: Path, folder: Path) -> bool:
    """Whether ``path`` is ``folder`` or lies below it (both resolved, symbolic links followed)."""
    path, folder = path.resolve(), folder.resolve()
    return path == folder or folder in path.parents


def make_parser(doc: str | None, *, epochs: int, batch_size: int, lr: float,
                num_seeds: int = 1) -> argparse.ArgumentParser:
    """Shared flags, with the script's own defaults. Scripts add their own flags to the result."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="auto", choices=DEVICE_CHOICES,
                        help="where to train: auto picks cuda, then mps, then cpu (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="first seed; seed k of a run uses seed+k (default: %(default)s)")
    parser.add_argument("--num-seeds", type=int, default=num_seeds, help="independent runs per configuration (default: %(default)s)")
    parser.add_argument("--epochs", type=int, default=epochs, help="training epochs (default: %(default)s)")
    parser.add_argument("--batch-size", type=int, default=batch_size, help="mini-batch size (default: %(default)s)")
    parser.add_argument("--lr", type=positive_float, default=lr, help="learning rate (default: %(default)s)")
    parser.add_argument("--data-dir", type=Path, default=None,
                        help=f"data folder (default: ${DATA_DIR_ENV} or data/ in the repository)")
    parser.add_argument("--out-dir", type=Path, default=None,
                        help="where results/ and figures/ go (default: report/, or scratch/quick/ with --quick)")
    parser.add_argument("--quick", action="store_true",
                        help=f"smoke test: small data subsets, {QUICK_EPOCHS} epoch, at most {QUICK_MAX_SEEDS} seeds")
    parser.add_argument("--no-cache", action="store_true",
                        help="retrain even if an identical run is cached: rerun everything, e.g. to re-measure "
                             "timings (s/epoch and the speed ratios come from the cached runs otherwise)")
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")
    return parser


@dataclass
class Context:
    """Everything a script needs after parsing: resolved paths, device and seeds."""

    args: argparse.Namespace
    argv: list[str]
    script: Path
    device: torch.device
    data_dir: Path
    out_dir: Path
    cache_dir: Path
    seeds: list[int]
    started: float

    @property
    def quick(self) -> bool:
        return self.args.quick

    @property
    def figures_dir(self) -> Path:
        return self.out_dir / "figures"

    @property
    def results_dir(self) -> Path:
        return self.out_dir / "results"

    @property
    def show_progress(self) -> bool:
        """False with ``--no-progress``: no progress bar at all, training or decoding."""
        return not self.args.no_progress

    def run_kwargs(self) -> dict:
        """Keyword arguments for ``common.experiment.run_seeds``."""
        return {"cache_root": self.cache_dir, "use_cache": not self.args.no_cache,
                "show_progress": self.show_progress}


def setup(parser: argparse.ArgumentParser, argv: list[str] | None, script: str) -> Context:
    """Parse ``argv``, validate it, seed everything and pick the device.

    Everything a user can get wrong on the command line ends here with a one-line parser error
    (exit status 2) before any data is read or any network trained: numbers out of range, a
    ``--quick`` run aimed at the committed ``report/``, an output or cache folder that cannot be
    written."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(argv)
    for name in ("epochs", "batch_size", "num_seeds"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1, got {getattr(args, name)}")
    if args.quick:
        args.epochs = QUICK_EPOCHS
        args.num_seeds = min(args.num_seeds, QUICK_MAX_SEEDS)
    highest_first_seed = MAX_SEED - (args.num_seeds - 1)
    if not 0 <= args.seed <= highest_first_seed:
        parser.error(f"--seed must be between 0 and {highest_first_seed} (every seed of the run, --seed + 0.."
                     f"{args.num_seeds - 1}, must lie in 0..{MAX_SEED}), got {args.seed}")
    if args.quick and args.out_dir is not None and is_inside(args.out_dir, REPORT_DIR):
        parser.error(f"--quick results must not go into the committed {shown_path(REPORT_DIR)}; "
                     f"got --out-dir {shown_path(args.out_dir)} (leave it out for {shown_path(QUICK_OUT_DIR)})")
    seed_everything(args.seed)
    try:
        device = resolve_device(args.device)
    except ValueError as exc:
        parser.error(str(exc))
    out_dir = args.out_dir or (QUICK_OUT_DIR if args.quick else REPORT_DIR)
    for folder, what in ((out_dir, "--out-dir"), (cache_dir(), "cache directory ($DLIA_CACHE_DIR or .cache/)")):
        reason = unwritable_reason(folder)
        if reason:
            parser.error(f"cannot write into the {what} {shown_path(folder)}: {reason}")
    ctx = Context(args=args, argv=argv, script=Path(script).resolve(), device=device,
                  data_dir=args.data_dir or default_data_dir(), out_dir=out_dir, cache_dir=cache_dir(),
                  seeds=[args.seed + k for k in range(args.num_seeds)], started=time.time())
    env = environment(device)
    print(f"{ctx.script.name}: device {env['device_name']}, data {ctx.data_dir}, output {ctx.out_dir}, "
          f"seeds {ctx.seeds}" + (" [quick]" if args.quick else ""), flush=True)
    return ctx


def run(main: Callable[[], object]) -> None:
    """Call a script's ``main()``; bad input data ends it with the one-line error
    instead of a traceback (exit status 1), since the message already names the path and what was expected;
    Ctrl-C ends it with one line (exit status 130) instead of the traceback of wherever it was."""
    try:
        main()
    except DataError as error:
        sys.exit(f"error: {error}")
    except KeyboardInterrupt:
        print(INTERRUPTED_MESSAGE, file=sys.stderr)
        sys.exit(EXIT_INTERRUPTED)
