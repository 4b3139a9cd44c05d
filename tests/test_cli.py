"""common.cli: the shared command line; every mistake is a one-line parser error (exit status 2) before
any data is read or network trained; bad data and Ctrl-C end a script with one line."""
import io
import sys

import pytest
import torch

from common import cli, text
from common.cli import resolve_device
from common.data import REPO_ROOT, DataError


def _setup(*argv):
    parser = cli.make_parser("test", epochs=3, batch_size=8, lr=0.1, num_seeds=3)
    return cli.setup(parser, list(argv), __file__)


def test_defaults_and_seeds():
    ctx = _setup("--device", "cpu", "--seed", "7")
    assert ctx.args.epochs == 3 and ctx.args.batch_size == 8 and ctx.args.lr == 0.1 and ctx.seeds == [7, 8, 9]
    assert ctx.seed == 7 and ctx.out_dir == cli.REPORT_DIR and ctx.device == torch.device("cpu")
    assert ctx.figures_dir == cli.REPORT_DIR / "figures" and ctx.results_dir == cli.REPORT_DIR / "results"
    assert ctx.use_cache and ctx.show_progress and not ctx.quick and not ctx.args.figures_only
    assert torch.get_num_threads() == 1  # one thread per process: the numbers do not depend on the cores
    from threadpoolctl import threadpool_info

    # NumPy's BLAS too (Ex 1.1's NumPy network), every BLAS library loaded (SciPy may bring its own)
    blas = {i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"}
    assert blas <= {1} and (blas or sys.platform == "darwin")  # Accelerate (macOS) is not seen by threadpoolctl
    flags = _setup("--device", "cpu", "--no-cache", "--no-progress")
    assert not flags.use_cache and not flags.show_progress


def test_setup_prints_what_runs_where_at_once(capsys):
    ctx = _setup("--device", "cpu", "--seed", "4", "--num-seeds", "2")
    out = capsys.readouterr().out
    assert out == (f"{ctx.script.name}: {cli.device_name(ctx.device)}, data {ctx.data_dir}, output {ctx.out_dir}, "
                   "seeds [4, 5]\n")
    _setup("--device", "cpu", "--quick")
    assert capsys.readouterr().out.endswith(" [quick]\n")


def test_there_is_no_workers_option(capsys):
    """Runs train one at a time in a script; `make -j` runs scripts side by side instead."""
    with pytest.raises(SystemExit) as exit_info:
        _setup("--device", "cpu", "--workers", "2")
    assert exit_info.value.code == 2 and "unrecognized arguments: --workers 2" in capsys.readouterr().err


def test_quick_shrinks_the_run_and_never_writes_into_report():
    ctx = _setup("--device", "cpu", "--quick")
    assert ctx.args.epochs == cli.QUICK_EPOCHS and len(ctx.seeds) == cli.QUICK_MAX_SEEDS and ctx.quick
    assert ctx.out_dir == cli.QUICK_OUT_DIR
    assert _setup("--device", "cpu", "--quick", "--num-seeds", "1").seeds == [0]  # fewer seeds are kept


def test_data_dir_from_environment(monkeypatch, tmp_path):
    monkeypatch.setenv(cli.DATA_DIR_ENV, str(tmp_path))
    assert _setup("--device", "cpu").data_dir == tmp_path
    assert _setup("--device", "cpu", "--data-dir", "elsewhere").data_dir.name == "elsewhere"


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is present")
def test_cuda_without_a_gpu_is_a_clear_error(capsys):
    with pytest.raises(SystemExit) as exit_info:
        _setup("--device", "cuda")
    assert exit_info.value.code == 2
    assert "torch.cuda.is_available() is False" in capsys.readouterr().err


def test_unknown_device_is_rejected(capsys):
    with pytest.raises(SystemExit):
        _setup("--device", "tpu")
    assert "invalid choice: 'tpu'" in capsys.readouterr().err
    with pytest.raises(ValueError, match="'tpu'"):
        resolve_device("tpu")


@pytest.mark.parametrize("flag,value", [("--epochs", "0"), ("--batch-size", "-1"), ("--lr", "0"), ("--num-seeds", "0")])
def test_nonsense_numbers_are_rejected(flag, value, capsys):
    with pytest.raises(SystemExit):
        _setup("--device", "cpu", flag, value)
    assert flag in capsys.readouterr().err


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "-0.5", "abc"])
def test_a_learning_rate_must_be_a_finite_positive_number(value, capsys):
    with pytest.raises(SystemExit) as exit_info:
        _setup("--device", "cpu", f"--lr={value}")  # "=": argparse takes "-inf" alone for an option
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and "argument --lr" in err and repr(value) in err


NUMPY_MAX_SEED = 2**32 - 1


@pytest.mark.parametrize("seed,num_seeds", [(-1, 1), (NUMPY_MAX_SEED, 2)])
def test_seeds_numpy_cannot_take_are_a_parser_error(seed, num_seeds, capsys):
    with pytest.raises(SystemExit) as exit_info:
        _setup("--device", "cpu", "--seed", str(seed), "--num-seeds", str(num_seeds))
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and f"--seed must be between 0 and {NUMPY_MAX_SEED - num_seeds + 1}" in err
    assert f"got {seed}" in err
    assert _setup("--device", "cpu", "--seed", str(NUMPY_MAX_SEED), "--num-seeds", "1").seeds == [NUMPY_MAX_SEED]


@pytest.mark.parametrize("out_dir", ["report", "report/cuda", "scratch/../report/results"])
def test_quick_refuses_to_write_into_the_committed_report(out_dir, capsys, monkeypatch, tmp_path):
    monkeypatch.chdir(REPO_ROOT)  # a relative --out-dir, as typed in the repository
    with pytest.raises(SystemExit) as exit_info:
        _setup("--device", "cpu", "--quick", "--out-dir", out_dir)
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and "--quick results must not go into" in err
    assert str((REPO_ROOT / out_dir).resolve()) in err
    assert _setup("--device", "cpu", "--quick", "--out-dir", str(tmp_path)).out_dir == tmp_path


def test_an_unwritable_output_or_cache_folder_is_refused_before_any_work(tmp_path, monkeypatch, capsys):
    blocker = tmp_path / "a_file"
    blocker.write_text("folders cannot be made inside a file")
    with pytest.raises(SystemExit) as exit_info:
        _setup("--device", "cpu", "--out-dir", str(blocker / "out"))
    assert exit_info.value.code == 2 and f"--out-dir {blocker / 'out'}" in capsys.readouterr().err
    monkeypatch.setenv("DLIA_CACHE_DIR", str(blocker / "cache"))
    with pytest.raises(SystemExit) as exit_info:
        _setup("--device", "cpu", "--out-dir", str(tmp_path / "out"))
    assert exit_info.value.code == 2 and f"cache directory ($DLIA_CACHE_DIR or .cache/) {blocker / 'cache'}" in \
        capsys.readouterr().err


def test_no_cache_help_says_that_timings_come_from_the_cache():
    parser = cli.make_parser("test", epochs=3, batch_size=8, lr=0.1, num_seeds=3)
    assert "re-measure timings" in " ".join(parser.format_help().split())


def _exit_code(main) -> object:
    """The exit code of ``cli.run(main)``; a KeyboardInterrupt that escapes is reported, not raised
    (it would end the test session)."""
    try:
        cli.run(main)
    except SystemExit as exc:
        return exc.code
    except KeyboardInterrupt:
        return "KeyboardInterrupt escaped"
    return None


def test_run_ends_bad_data_and_ctrl_c_with_one_line(capsys):
    def bad_data():
        raise DataError("/data/MNIST: broken")

    def interrupted():
        raise KeyboardInterrupt

    assert _exit_code(bad_data) == "error: /data/MNIST: broken"
    assert _exit_code(interrupted) == 130
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("interrupted; finished runs are cached") and "Traceback" not in err


def test_resolve_device_picks_the_cpu_without_an_accelerator():
    expected = "cuda" if torch.cuda.is_available() else "mps" if torch.backends.mps.is_available() else "cpu"
    assert resolve_device("auto").type == expected and resolve_device("cpu") == torch.device("cpu")


@pytest.mark.skipif(torch.backends.mps.is_available(), reason="Apple MPS is present")
def test_mps_without_apple_silicon_is_a_clear_error():
    with pytest.raises(ValueError, match="torch.backends.mps.is_available\\(\\) is False"):
        resolve_device("mps")


def test_environment_names_versions_and_hardware():
    env = cli.environment(torch.device("cpu"))
    assert env["torch"] == torch.__version__ and env["device"] == "cpu" and env["device_name"].startswith("CPU")
    assert {"python", "torchvision", "numpy", "platform", "torch_threads"} <= set(env)


def test_positive_float():
    assert cli.positive_float("1e-3") == 0.001
    for bad in ("0", "-1", "nan", "x"):
        with pytest.raises(cli.argparse.ArgumentTypeError):
            cli.positive_float(bad)


def test_is_inside(tmp_path):
    assert cli.is_inside(tmp_path / "a" / ".." / "a" / "b", tmp_path / "a") and cli.is_inside(tmp_path, tmp_path)
    assert not cli.is_inside(tmp_path / "ab", tmp_path / "a")


# --- progress --------------------------------------------------------------------------------

class Clock:
    """A stand-in for time.perf_counter that moves only when told."""

    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def _record(k: int) -> dict:
    return {"epoch": k, "train_loss": 0.5, "val_score": 0.9}


def test_progress_in_a_log_file_is_plain_lines_at_most_every_log_every_s(monkeypatch):
    clock = Clock()
    monkeypatch.setattr(cli.time, "perf_counter", clock)
    stream = io.StringIO()  # not a terminal
    progress = cli.Progress("toy seed 0", 10, "accuracy", stream=stream)
    for k, seconds in enumerate([5, 16, 20, 30, 31, 40, 44, 45, 46, 47], start=1):
        clock.now = 1000.0 + seconds
        progress(_record(k))
    lines = stream.getvalue().splitlines()
    # a line at 16 s, at 31 s (15 s later), at 46 s, and one for the last epoch at 47 s
    assert [line.split(",")[0] for line in lines] == ["  toy seed 0: epoch 2/10", "  toy seed 0: epoch 5/10",
                                                      "  toy seed 0: epoch 9/10", "  toy seed 0: epoch 10/10"]
    assert "\r" not in stream.getvalue() and lines[-1].endswith("loss 0.5000, val accuracy 90.00 %, 47 s")


def test_scores_print_at_the_reports_precision_and_progress_names_its_score():
    """Progress prints the validation score as common.text does (tests/test_text.py checks the formats)."""
    assert text.score("accuracy", 0.97123) == "97.12 %" and text.score("dice", 0.348) == "0.348"
    stream = io.StringIO()
    cli.Progress("x", 1, "dice", stream=stream)(_record(1))
    assert "loss 0.5000, val dice 0.900, " in stream.getvalue()
    stream = io.StringIO()
    cli.Progress("x", 1, "accuracy", stream=stream)(_record(1))
    assert "loss 0.5000, val accuracy 90.00 %, " in stream.getvalue()


def test_progress_interval_follows_log_every_s(monkeypatch):
    clock = Clock()
    monkeypatch.setattr(cli.time, "perf_counter", clock)
    monkeypatch.setattr(cli, "LOG_EVERY_S", 0.0)
    stream = io.StringIO()
    progress = cli.Progress("x", 3, "dice", stream=stream)
    for k in (1, 2, 3):
        clock.now += 0.001
        progress(_record(k))
    assert len(stream.getvalue().splitlines()) == 3  # every epoch


def test_progress_off_writes_nothing_and_a_terminal_gets_a_bar(monkeypatch):
    monkeypatch.delenv("MAKELEVEL", raising=False)  # not under make
    quiet = io.StringIO()
    progress = cli.Progress("x", 2, "dice", enabled=False, stream=quiet)
    progress(_record(1))
    progress(_record(2))
    assert quiet.getvalue() == ""

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    terminal = Terminal()
    bar = cli.Progress("x", 2, "dice", stream=terminal)
    bar(_record(1))
    bar(_record(2))
    assert bar.bar is not None and "\r" in terminal.getvalue()  # tqdm redraws in place


def test_under_make_a_terminal_gets_lines_not_a_bar(monkeypatch):
    """make -j runs several scripts on one terminal: bars would overwrite each other."""
    monkeypatch.setenv("MAKELEVEL", "1")

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    terminal = Terminal()
    progress = cli.Progress("toy seed 0", 2, "dice", stream=terminal)
    progress(_record(1))
    progress(_record(2))
    assert progress.bar is None and "\r" not in terminal.getvalue()
    assert terminal.getvalue().splitlines()[-1].startswith("  toy seed 0: epoch 2/2, loss 0.5000, val dice 0.900")


def test_device_name_describes_the_cpu(monkeypatch):
    monkeypatch.setattr(torch, "get_num_threads", lambda: 1)
    name = cli.device_name(torch.device("cpu"))
    assert name.startswith("CPU: ") and "(1 torch thread, " in name
    monkeypatch.setattr(torch, "get_num_threads", lambda: 4)
    assert "(4 torch threads, " in cli.device_name(torch.device("cpu"))
