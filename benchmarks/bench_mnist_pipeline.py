"""Benchmark: epochs of the Ex 1.2 CNN (batch 64, plain SGD) on the textbook pipeline and on ours,
and the top operations of a profiled training step (where the time goes).

* textbook: torchvision MNIST dataset + ToTensor + Normalize + DataLoader, contiguous tensors,
  ``loss.item()`` every batch (pytorch/examples mnist/main.py style), torch's default threads;
* ours, as the exercises train: the normalised training set as one tensor on the device, batches
  sliced from it (common.data.TensorLoader), channels-last, losses kept on the device, through the
  very ``common.train.train_epoch`` the exercises use, on one thread; and two such runs at once, one
  per process, as ``make report`` trains them (their time per epoch: the wall time over two); and
  one run on torch's default threads;
* the compute bound of one run on torch's default threads: its training steps alone, on one fixed,
  prepared batch, without any data handling; our pipeline on the same threads as fast as that, within
  run-to-run noise, spends next to nothing on its data.

Run:  python benchmarks/bench_mnist_pipeline.py [--device cpu] [--data-dir DIR] [--repeats 3]
"""
from __future__ import annotations

import argparse
import contextlib
import gzip
import math
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from common import cli, mnist, models  # noqa: E402
from common.data import DataError, TensorLoader  # noqa: E402
from common.cli import device_name  # noqa: E402
from common.train import TorchLearner, synchronize, train_epoch  # noqa: E402

BATCH_SIZE = 64
LR = 0.05
TOP_OPERATIONS = 8
MINUTES_PER_REPEAT = 1.5  # a 2-core Intel Xeon, CPU only: 1 to 2 minutes for an epoch of each pipeline
LABEL_WIDTH = 66


def _model(device: torch.device, channels_last: bool):
    torch.manual_seed(0)
    model = models.MnistCNN().to(device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    return model, torch.optim.SGD(model.parameters(), lr=LR), nn.CrossEntropyLoss()


def _timed(fn, device) -> float:
    synchronize(device)
    start = time.perf_counter()
    fn()
    synchronize(device)
    return time.perf_counter() - start


def textbook_dataset(data_dir: Path, tmp: Path) -> torch.utils.data.Dataset:
    """The training set as the textbook reads it: torchvision's ``MNIST`` over the IDX files, or
    ``ImageFolder`` over the course's PNG folders. ``MNIST`` wants the four IDX files uncompressed in
    ``<root>/MNIST/raw/``; they are linked (or, if gzipped, decompressed) into that layout under ``tmp``."""
    from torchvision import datasets, transforms

    transform = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.1307,), (0.3081,))])
    source = mnist.find_mnist(data_dir)
    if source.kind == "png":
        return datasets.ImageFolder(str(source.root / "Train"), transform=transforms.Compose([transforms.Grayscale(),
                                                                                           transform]))
    raw = tmp / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for _, prefix in mnist.SPLITS.values():
        for stem in (f"{prefix}-images-idx3-ubyte", f"{prefix}-labels-idx1-ubyte"):
            path = mnist._idx_path(source.root, stem)  # the file or its .gz, as mnist itself looks
            if path is None:
                raise DataError(f"MNIST IDX file {stem} missing in {cli.shown_path(source.root)}")
            if path.suffix == ".gz":
                (raw / stem).write_bytes(gzip.decompress(path.read_bytes()))
            else:
                (raw / stem).symlink_to(path.resolve())
    return datasets.MNIST(str(tmp), train=True, download=False, transform=transform)


def textbook_epoch(dataset: torch.utils.data.Dataset, device: torch.device) -> float:
    """Seconds for one epoch of the textbook pipeline over ``dataset``."""
    loader = torch.utils.data.DataLoader(dataset, batch_size=BATCH_SIZE, shuffle=True)
    model, optimizer, loss_fn = _model(device, channels_last=False)

    def epoch():
        model.train()
        for inputs, targets in loader:
            inputs, targets = inputs.to(device), targets.to(device)
            optimizer.zero_grad()
            loss = loss_fn(model(inputs), targets)
            loss.backward()
            optimizer.step()
            loss.item()

    return _timed(epoch, device)


def our_epoch(x: torch.Tensor, y: torch.Tensor, device: torch.device) -> float:
    model, optimizer, loss_fn = _model(device, channels_last=True)
    learner = TorchLearner(model, optimizer, loss_fn, device)
    loader = TensorLoader(x.contiguous(memory_format=torch.channels_last), y, BATCH_SIZE, shuffle=True, seed=0)
    return _timed(lambda: train_epoch(learner, loader), device)


def two_at_once(x: torch.Tensor, y: torch.Tensor) -> float:
    """Seconds per epoch of two single-threaded runs trained at once, each in a forked process."""
    def one():
        torch.set_num_threads(1)
        our_epoch(x, y, torch.device("cpu"))

    processes = [multiprocessing.get_context("fork").Process(target=one) for _ in range(2)]
    start = time.perf_counter()
    for p in processes:
        p.start()
    for p in processes:
        p.join()
    return (time.perf_counter() - start) / 2


def compute_bound_epoch(x: torch.Tensor, y: torch.Tensor, device: torch.device) -> float:
    model, optimizer, loss_fn = _model(device, channels_last=True)
    inputs, targets = x[:BATCH_SIZE].contiguous(memory_format=torch.channels_last), y[:BATCH_SIZE]

    def epoch():
        for _ in range(math.ceil(len(x) / BATCH_SIZE)):
            loss = loss_fn(model(inputs), targets)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()

    return _timed(epoch, device)


def profile_step(x: torch.Tensor, y: torch.Tensor, device: torch.device, steps: int = 30) -> str:
    """The top operations, by their own time, of ``steps`` training steps as the exercises take them."""
    from torch.profiler import ProfilerActivity, profile

    model, optimizer, loss_fn = _model(device, channels_last=True)
    learner = TorchLearner(model, optimizer, loss_fn, device)
    batches = list(TensorLoader(x.contiguous(memory_format=torch.channels_last), y, BATCH_SIZE, shuffle=True))[:steps]
    train_epoch(learner, batches[:5])
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with native_stderr_silenced():
        with profile(activities=activities) as prof:
            train_epoch(learner, batches)
        key = "self_cuda_time_total" if device.type == "cuda" else "self_cpu_time_total"
        return prof.key_averages().table(sort_by=key, row_limit=TOP_OPERATIONS, max_name_column_width=40)


@contextlib.contextmanager
def native_stderr_silenced():
    """Standard error, file descriptor 2, into a temporary file for the block: the profiler's C++ side
    (Kineto) writes its start and stop markers there, and on a machine without a GPU an "ERROR ...
    gpuGetDeviceCount failed" that is none. If the block fails, what was written is shown after all."""
    sys.stderr.flush()
    saved, finished = os.dup(2), False
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield
            finished = True
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            if not finished:
                sink.seek(0)
                sys.stderr.write(sink.read().decode(errors="replace"))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="auto", choices=cli.DEVICE_CHOICES)
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--repeats", type=int, default=3, help="epochs per pipeline; the median is reported")
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error(f"--repeats must be at least 1, got {args.repeats}")
    try:
        device = cli.resolve_device(args.device)
    except ValueError as exc:
        parser.error(str(exc))
    data_dir = args.data_dir or Path(os.environ.get(cli.DATA_DIR_ENV, cli.REPO_ROOT / "data"))
    threads = torch.get_num_threads()
    print(f"device: {device_name(device)}; torch {torch.__version__}; batch {BATCH_SIZE}; median of {args.repeats} "
          "epoch(s) per line", flush=True)
    print(f"this takes roughly {MINUTES_PER_REPEAT * args.repeats + 0.5:.0f} min on a 2-core CPU (--repeats "
          f"{args.repeats}: about {MINUTES_PER_REPEAT:g} min each), less on a GPU", flush=True)
    print("each line: seconds per epoch of the 60,000 training images, and images per second", flush=True)
    data = mnist.load_mnist(data_dir)["train"]
    x = ((data[0].float() / 255 - 0.1307) / 0.3081).unsqueeze(1).to(device)
    y = data[1].to(device)
    rows: dict[str, float] = {}

    def measure(label: str, fn) -> None:
        rows[label] = statistics.median(fn() for _ in range(args.repeats))
        print(f"  {label:<{LABEL_WIDTH}s} {rows[label]:6.2f} s/epoch {len(y) / rows[label]:8.0f} images/s", flush=True)

    on_threads = f"{threads} thread" + ("" if threads == 1 else "s")
    with tempfile.TemporaryDirectory(prefix="bench_mnist_") as tmp:
        dataset = textbook_dataset(data_dir, Path(tmp))
        measure(f"textbook: Dataset + DataLoader, one run on {on_threads}", lambda: textbook_epoch(dataset, device))
    if device.type == "cpu":
        torch.set_num_threads(1)
        measure("ours: one run on 1 thread (how every exercise run trains)", lambda: our_epoch(x, y, device))
        measure("ours: two runs at once, 1 thread each (make report): wall time / 2", lambda: two_at_once(x, y))
        torch.set_num_threads(threads)
    measure(f"ours: one run on {on_threads}", lambda: our_epoch(x, y, device))
    measure(f"compute bound: one run on {on_threads}, one fixed batch, no data",
            lambda: compute_bound_epoch(x, y, device))
    print("  (compute bound: the training steps alone, without slicing or shuffling batches; where the line above\n"
          "  is as fast, within run-to-run noise, our data handling costs next to nothing)", flush=True)
    textbook = next(iter(rows.values()))
    print("speed-up over the textbook pipeline:")
    for label, seconds in list(rows.items())[1:-1]:  # our pipelines, not the compute bound
        print(f"  {label:<{LABEL_WIDTH}s} {textbook / seconds:6.1f}x")
    torch.set_num_threads(1 if device.type == "cpu" else threads)
    print(f"top operations of a training step ({'one thread' if device.type == 'cpu' else device.type}):")
    print(profile_step(x, y, device))


if __name__ == "__main__":
    cli.run(main)
