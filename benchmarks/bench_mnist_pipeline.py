"""Benchmark: one training epoch of the Ex 1.2 CNN (batch 64, plain SGD) on two pipelines.

* textbook: torchvision MNIST dataset + ToTensor + Normalize + DataLoader, contiguous tensors,
  ``loss.item()`` every batch (pytorch/examples mnist/main.py style);
* ours: the normalised training set as one tensor on the device, batches sliced from it
  (common.data.TensorLoader), channels-last memory format, losses collected on the device,
  through the very ``common.train.train_one_epoch`` the exercises use.

Also measured, to show what limits ours: ours without channels-last, ours with one thread, and
the compute bound (forward+backward+step on one fixed, already prepared batch, repeated).

The textbook pipeline reads the IDX files through torchvision's ``MNIST`` class, which wants them
uncompressed in ``<root>/MNIST/raw/``; IDX files in another folder or gzipped are linked or
decompressed into that layout in a temporary folder. The course's PNG folders are read with
``ImageFolder``.

Run:  python benchmarks/bench_mnist_pipeline.py [--device cpu] [--data-dir DIR] [--repeats 3]
"""
from __future__ import annotations

import argparse
import gzip
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
from common.runtime import DEVICE_CHOICES, device_name, resolve_device, synchronize  # noqa: E402
from common.train import TorchLearner, train_one_epoch  # noqa: E402

BATCH_SIZE = 64
LR = 0.1


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


def our_epoch(x: torch.Tensor, y: torch.Tensor, device: torch.device, channels_last: bool = True) -> float:
    model, optimizer, loss_fn = _model(device, channels_last)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    learner = TorchLearner(model, optimizer, loss_fn, device)
    loader = TensorLoader(x, y, BATCH_SIZE, shuffle=True, seed=0)
    return _timed(lambda: train_one_epoch(learner, loader), device)


def compute_bound_epoch(x: torch.Tensor, y: torch.Tensor, device: torch.device) -> float:
    model, optimizer, loss_fn = _model(device, channels_last=True)
    inputs = x[:BATCH_SIZE].contiguous(memory_format=torch.channels_last)
    targets = y[:BATCH_SIZE]
    steps = -(-len(x) // BATCH_SIZE)

    def epoch():
        for _ in range(steps):
            loss = loss_fn(model(inputs), targets)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()

    return _timed(epoch, device)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="auto", choices=DEVICE_CHOICES)
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--repeats", type=int, default=3, help="epochs per pipeline; the median is reported")
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error(f"--repeats must be at least 1, got {args.repeats}")
    try:
        device = resolve_device(args.device)
    except ValueError as exc:
        parser.error(str(exc))
    data_dir = args.data_dir or cli.default_data_dir()
    print(f"device: {device_name(device)}; torch {torch.__version__}; batch {BATCH_SIZE}; "
          f"median of {args.repeats} epoch(s)", flush=True)

    data = mnist.load_mnist(data_dir)["train"]
    x = ((data[0].float() / 255 - 0.1307) / 0.3081).unsqueeze(1).to(device)
    y = data[1].to(device)
    n = len(y)
    threads = torch.get_num_threads()
    rows: list[tuple[str, float]] = []

    def measure(label: str, fn) -> None:
        seconds = statistics.median(fn() for _ in range(args.repeats))
        rows.append((label, seconds))
        print(f"  {label:<40s} {seconds:7.2f} s/epoch {n / seconds:9.0f} images/s", flush=True)

    with tempfile.TemporaryDirectory(prefix="bench_mnist_") as tmp:
        dataset = textbook_dataset(data_dir, Path(tmp))
        measure("textbook (Dataset + DataLoader)", lambda: textbook_epoch(dataset, device))
    measure("ours (tensors on device, channels-last)", lambda: our_epoch(x, y, device))
    measure("ours without channels-last", lambda: our_epoch(x, y, device, channels_last=False))
    if device.type == "cpu" and threads > 1:
        torch.set_num_threads(1)
        measure("ours, 1 thread", lambda: our_epoch(x, y, device))
        torch.set_num_threads(threads)
    measure("compute bound (one fixed batch)", lambda: compute_bound_epoch(x, y, device))
    textbook, ours = rows[0][1], rows[1][1]
    print(f"speed-up of ours over textbook: {textbook / ours:.1f}x; ours is {ours / rows[-1][1]:.2f}x the compute bound")


if __name__ == "__main__":
    cli.run(main)
