"""The command line every exercise script shares, and the set-up that follows parsing."""
from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from .cache import REPO_ROOT, cache_dir
from .data import DataError
from .runtime import DEVICE_CHOICES, environment, resolve_device, seed_everything

DATA_DIR_ENV = "DLIA_DATA_DIR"
QUICK_OUT_DIR = REPO_ROOT / "scratch" / "quick"  # --quick never writes into report/
QUICK_EPOCHS = 1
QUICK_MAX_SEEDS = 2


def default_data_dir() -> Path:
    return Path(os.environ.get(DATA_DIR_ENV, REPO_ROOT / "data"))


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
    parser.add_argument("--lr", type=float, default=lr, help="learning rate (default: %(default)s)")
    parser.add_argument("--data-dir", type=Path, default=None,
                        help=f"data folder (default: ${DATA_DIR_ENV} or data/ in the repository)")
    parser.add_argument("--out-dir", type=Path, default=None,
                        help="where results/ and figures/ go (default: report/, or scratch/quick/ with --quick)")
    parser.add_argument("--quick", action="store_true",
                        help=f"smoke test: small data subsets, {QUICK_EPOCHS} epoch, at most {QUICK_MAX_SEEDS} seeds")
    parser.add_argument("--no-cache", action="store_true", help="retrain even if an identical run is cached")
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

    def run_kwargs(self) -> dict:
        """Keyword arguments for ``common.experiment.run_seeds``."""
        return {"cache_root": self.cache_dir, "use_cache": not self.args.no_cache,
                "show_progress": not self.args.no_progress}


def setup(parser: argparse.ArgumentParser, argv: list[str] | None, script: str) -> Context:
    """Parse ``argv``, validate it, seed everything and pick the device."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(argv)
    for name in ("epochs", "batch_size", "num_seeds"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1, got {getattr(args, name)}")
    if args.lr <= 0:
        parser.error(f"--lr must be positive, got {args.lr}")
    if args.quick:
        args.epochs = QUICK_EPOCHS
        args.num_seeds = min(args.num_seeds, QUICK_MAX_SEEDS)
    seed_everything(args.seed)
    try:
        device = resolve_device(args.device)
    except ValueError as exc:
        parser.error(str(exc))
    out_dir = args.out_dir or (QUICK_OUT_DIR if args.quick else REPO_ROOT / "report")
    ctx = Context(args=args, argv=argv, script=Path(script).resolve(), device=device,
                  data_dir=args.data_dir or default_data_dir(), out_dir=out_dir, cache_dir=cache_dir(),
                  seeds=[args.seed + k for k in range(args.num_seeds)], started=time.time())
    env = environment(device)
    print(f"{ctx.script.name}: device {env['device_name']}, data {ctx.data_dir}, output {ctx.out_dir}, "
          f"seeds {ctx.seeds}" + (" [quick]" if args.quick else ""), flush=True)
    return ctx


def run(main: Callable[[], object]) -> None:
    """Call a script's ``main()``; bad input data ends it with the one-line error
    instead of a traceback (exit status 1), since the message already names the path and what was expected."""
    try:
        main()
    except DataError as error:
        sys.exit(f"error: {error}")
