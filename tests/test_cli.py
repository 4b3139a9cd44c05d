import pytest
import torch

from common import cli
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
