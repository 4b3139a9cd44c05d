"""The command line every exercise script shares, the device it runs on, and what follows parsing.

Everything a user can get wrong on the command line ends in :func:`setup` with a one-line parser
error (exit status 2) before any data is read or any network trained; bad data ends a script with
one line naming the file (:func:`run`).
"""
from __future__ import annotations

import argparse
import math
import os
import platform
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from threadpoolctl import threadpool_limits

from . import text
from .data import REPO_ROOT, DataError, cache_dir, shown_path

DATA_DIR_ENV = "DLIA_DATA_DIR"
DEVICE_CHOICES = ("auto", "cpu", "cuda", "mps")
REPORT_DIR = REPO_ROOT / "report"  # the committed results; --quick never writes into it
QUICK_OUT_DIR = REPO_ROOT / "scratch" / "quick"
QUICK_EPOCHS = 1
QUICK_MAX_SEEDS = 2
MAX_SEED = 2**32 - 1  # NumPy's seeds are 32-bit: every seed of a run must fit
LOG_EVERY_S = 15.0  # without a terminal: a progress line at most this often, and one per finished run
EXIT_INTERRUPTED = 130  # 128 + SIGINT, what a shell reports for a program stopped by Ctrl-C


def positive_float(text: str) -> float:
    """An ``argparse`` type: a finite number above 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"must be a finite number above 0, got {text!r}")
    return value


def make_parser(doc: str | None, *, epochs: int, batch_size: int, lr: float, num_seeds: int) -> argparse.ArgumentParser:
    """The shared flags with the script's defaults; a script adds its own flags to the result."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="auto", choices=DEVICE_CHOICES,
                        help="where to train: auto picks cuda, then mps, then cpu (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="first seed; run k uses seed+k, and the first also draws the validation split "
                                                                     "(default: %(default)s)")
    parser.add_argument("--num-seeds", type=int, default=num_seeds, help="runs per configuration (default: %(default)s)")
    parser.add_argument("--epochs", type=int, default=epochs, help="training epochs (default: %(default)s)")
    parser.add_argument("--batch-size", type=int, default=batch_size, help="mini-batch size (default: %(default)s)")
    parser.add_argument("--lr", type=positive_float, default=lr, help="learning rate (default: %(default)s)")
    parser.add_argument("--data-dir", type=Path, default=None,
                        help=f"data folder (default: ${DATA_DIR_ENV}, else data/ in the repository)")
    parser.add_argument("--out-dir", type=Path, default=None,
                        help="where results/ and figures/ go (default: report/, or scratch/quick/ with --quick)")
    parser.add_argument("--quick", action="store_true",
                        help=f"smoke test: small data subsets, {QUICK_EPOCHS} epoch, at most {QUICK_MAX_SEEDS} seeds")
    parser.add_argument("--no-cache", action="store_true",
                        help="retrain even if an identical run is cached, e.g. to re-measure timings (s/epoch "
                             "and the speed ratios otherwise come from the cached runs)")
    parser.add_argument("--no-progress", action="store_true", help="no progress output while training")
    parser.add_argument("--figures-only", action="store_true",
                        help="redraw the figures from the results file in --out-dir (default report/): no data, "
                             "no training (make figures)")
    return parser


@dataclass
class Context:
    """What a script needs after parsing: its arguments, device, seeds and folders."""

    args: argparse.Namespace
    argv: list[str]
    script: Path
    device: torch.device
    data_dir: Path
    out_dir: Path
    seeds: list[int]
    started: float

    @property
    def quick(self) -> bool:
        return self.args.quick

    @property
    def seed(self) -> int:
        """The first seed; it also draws the validation split."""
        return self.seeds[0]

    @property
    def figures_dir(self) -> Path:
        return self.out_dir / "figures"

    @property
    def results_dir(self) -> Path:
        return self.out_dir / "results"

    @property
    def use_cache(self) -> bool:
        return not self.args.no_cache

    @property
    def show_progress(self) -> bool:
        return not self.args.no_progress


def setup(parser: argparse.ArgumentParser, argv: list[str] | None, script: str) -> Context:
    """Parse and check ``argv``, pick the device and make it deterministic, check the output and
    cache folders can be written."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(argv)
    for name in ("epochs", "batch_size", "num_seeds"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1, got {getattr(args, name)}")
    if args.quick:
        args.epochs, args.num_seeds = QUICK_EPOCHS, min(args.num_seeds, QUICK_MAX_SEEDS)
    highest_first_seed = MAX_SEED - (args.num_seeds - 1)
    if not 0 <= args.seed <= highest_first_seed:
        parser.error(f"--seed must be between 0 and {highest_first_seed} (every seed of the run, --seed + 0.."
                     f"{args.num_seeds - 1}, must lie in 0..{MAX_SEED}), got {args.seed}")
    if args.quick and args.out_dir is not None and is_inside(args.out_dir, REPORT_DIR):
        parser.error(f"--quick results must not go into the committed {shown_path(REPORT_DIR)}; "
                     f"got --out-dir {shown_path(args.out_dir)} (leave it out for {shown_path(QUICK_OUT_DIR)})")
    try:
        device = resolve_device(args.device)
    except ValueError as exc:
        parser.error(str(exc))
    # One thread per process, for PyTorch and NumPy's BLAS alike: a run computes the same numbers on any
    # machine, whatever its number of cores; `make -j` runs scripts side by side instead.
    torch.set_num_threads(1)
    threadpool_limits(1, user_api="blas")
    out_dir = args.out_dir or (QUICK_OUT_DIR if args.quick else REPORT_DIR)
    for folder, what in ((out_dir, "--out-dir"), (cache_dir(), "cache directory ($DLIA_CACHE_DIR or .cache/)")):
        reason = unwritable_reason(folder)
        if reason:
            parser.error(f"cannot write into the {what} {shown_path(folder)}: {reason}")
    ctx = Context(args=args, argv=argv, script=Path(script).resolve(), device=device,
                  data_dir=args.data_dir or Path(os.environ.get(DATA_DIR_ENV, REPO_ROOT / "data")), out_dir=out_dir,
                  seeds=[args.seed + k for k in range(args.num_seeds)], started=time.time())
    print(f"{ctx.script.name}: {device_name(device)}, data {ctx.data_dir}, output {ctx.out_dir}, "
          f"seeds {ctx.seeds}" + (" [quick]" if args.quick else ""), flush=True)
    return ctx


def resolve_device(name: str) -> torch.device:
    """``--device`` -> ``torch.device``: ``auto`` picks CUDA, then Apple MPS, then the CPU; an
    accelerator that is not there is a ValueError, never a silent fall-back to the CPU. On CUDA,
    deterministic algorithms are requested (cuBLAS needs its workspace setting before it starts);
    an operation without one warns instead of failing."""
    if name not in DEVICE_CHOICES:
        raise ValueError(f"unknown device {name!r}; choose one of {', '.join(DEVICE_CHOICES)}")
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "mps" if torch.backends.mps.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"--device cuda was requested but torch.cuda.is_available() is False (torch "
                         f"{torch.__version__}, built for CUDA {torch.version.cuda}); use --device cpu or --device auto")
    if name == "mps" and not torch.backends.mps.is_available():
        raise ValueError("--device mps was requested but torch.backends.mps.is_available() is False")
    if name == "cuda":
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
    return torch.device(name)


def environment(device: torch.device) -> dict:
    """Versions and hardware, recorded with every result."""
    import torchvision

    return {"python": sys.version.split()[0], "torch": torch.__version__, "torchvision": torchvision.__version__,
            "numpy": np.__version__, "platform": platform.platform(), "device": str(device),
            "device_name": device_name(device), "torch_threads": torch.get_num_threads()}


def unwritable_reason(folder: Path) -> str | None:
    """None if files can be written into ``folder`` (created if missing), else why not."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        return exc.strerror or str(exc)
    return None


def is_inside(path: Path, folder: Path) -> bool:
    """Whether ``path`` is ``folder`` or lies below it (both resolved)."""
    path, folder = path.resolve(), folder.resolve()
    return path == folder or folder in path.parents


def device_name(device: torch.device) -> str:
    """A human-readable name of the hardware behind ``device``."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    if device.type == "mps":
        return "Apple MPS"
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            model = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), model)
    except OSError:
        pass
    threads = f"{torch.get_num_threads()} torch thread" + ("" if torch.get_num_threads() == 1 else "s")
    return f"CPU: {model} ({threads}, {os.cpu_count()} logical cores)"


class Progress:
    """A run's progress: a bar on a terminal; otherwise (a log file, or one of several runs training at
    once) a plain line at most every ``LOG_EVERY_S`` seconds and one when the run ends, so that logs
    carry no carriage-return frames. ``score`` names the validation score ("accuracy", "dice")."""

    def __init__(self, desc: str, epochs: int, score: str, enabled: bool = True, stream=None) -> None:
        self.desc, self.epochs, self.score, self.enabled = desc, epochs, score, enabled
        self.stream = stream or sys.stderr
        self.start = self.last = time.perf_counter()
        self.bar = None
        if enabled and self.stream.isatty() and "MAKELEVEL" not in os.environ:  # under make -j scripts share a terminal
            from tqdm import tqdm
            self.bar = tqdm(total=epochs, desc=desc, unit="epoch", leave=False, file=self.stream)

    def __call__(self, record: dict) -> None:
        line = f"loss {record['train_loss']:.4f}, val {self.score} {text.score(self.score, record['val_score'])}"
        if self.bar is not None:
            self.bar.set_postfix_str(line, refresh=False)
            self.bar.update(1)
            if record["epoch"] == self.epochs:
                self.bar.close()
        elif self.enabled and (record["epoch"] == self.epochs or time.perf_counter() - self.last >= LOG_EVERY_S):
            self.last = time.perf_counter()
            print(f"  {self.desc}: epoch {record['epoch']}/{self.epochs}, {line}, {self.last - self.start:.0f} s",
                  file=self.stream, flush=True)


def run(main: Callable[[], object]) -> None:
    """Call a script's ``main()``: bad input data ends it with the one-line error that names the
    file (exit status 1), Ctrl-C with one line (exit status 130), neither with a traceback."""
    try:
        main()
    except DataError as error:
        sys.exit(f"error: {error}")
    except KeyboardInterrupt:
        print("interrupted; finished runs are cached and a rerun (without --no-cache) reuses them; "
              "the run in progress starts over", file=sys.stderr)
        sys.exit(EXIT_INTERRUPTED)
