import pytest
import torch

from common import cli
from common.cache import REPO_ROOT
from common.data import DataError
from common.runtime import resolve_device


def _setup(*argv):
    parser = cli.make_parser("test", epochs=3, batch_size=8, lr=0.1, num_seeds=3)
    return cli.setup(parser, list(argv), __file__)


def test_defaults_and_seeds():
    ctx = _setup("--device", "cpu", "--seed", "7")
    assert ctx.args.epochs == 3 and ctx.args.batch_size == 8 and ctx.seeds == [7, 8, 9]
    assert ctx.out_dir.name == "report" and ctx.device == torch.device("cpu")


def test_quick_shrinks_the_run_and_never_writes_into_report():
    ctx = _setup("--device", "cpu", "--quick")
    assert ctx.args.epochs == cli.QUICK_EPOCHS and len(ctx.seeds) == cli.QUICK_MAX_SEEDS
    assert ctx.out_dir == cli.QUICK_OUT_DIR


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
    parser = cli.make_parser("test", epochs=3, batch_size=8, lr=0.1)
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
