"""The Makefile, run with `make` on a copy: the choice of data folder, the submission warning and the
disk-space check before creating the environment."""
import os
import shutil
import subprocess

import pytest

from common.data import REPO_ROOT

pytestmark = pytest.mark.skipif(shutil.which("make") is None or shutil.which("git") is None,
                                reason="needs make and git")


def _data_dir(folder, *, environment: str | None = None, command_line: str | None = None) -> str:
    """DLIA_DATA_DIR as the Makefile exports it, in ``folder`` holding a copy of it (``make -n``: nothing runs)."""
    shutil.copy(REPO_ROOT / "Makefile", folder / "Makefile")
    (folder / "show.mk").write_text("include Makefile\n$(info DLIA_DATA_DIR=$(DLIA_DATA_DIR))\n")
    env = {k: v for k, v in os.environ.items() if k not in ("DLIA_DATA_DIR", "DATA_DIR", "MAKEFLAGS")}
    if environment is not None:
        env["DLIA_DATA_DIR"] = environment
    args = ["make", "-s", "-n", "-f", "show.mk", "clean"] + ([f"DATA_DIR={command_line}"] if command_line else [])
    out = subprocess.run(args, cwd=folder, env=env, capture_output=True, text=True, check=True).stdout
    return out.splitlines()[0].removeprefix("DLIA_DATA_DIR=")


@pytest.mark.parametrize("files,chosen", [
    ([], "../shared/data"),
    (["data/README.md", "data/WARWICK/", "data/MNIST/"], "../shared/data"),  # empty folders are no data set
    (["data/MNIST/raw/train-images-idx3-ubyte.gz"], "data"),
    (["data/train-images-idx3-ubyte"], "data"),  # IDX files directly in data/
    (["data/MNIST/Train/0/"], "data"),
    (["data/WARWICK/Train/image_01.png"], "data"),
    (["data/WARWICK.zip"], "data"),
])
def test_data_folder_is_used_only_when_it_holds_a_data_set(tmp_path, files, chosen):
    for name in files:  # a trailing "/" makes a folder, else an empty file
        path = tmp_path / name
        folder = path if name.endswith("/") else path.parent
        folder.mkdir(parents=True, exist_ok=True)
        if folder != path:
            path.write_bytes(b"")
    assert _data_dir(tmp_path) == chosen


def test_data_dir_on_the_command_line_beats_the_environment(tmp_path):
    assert _data_dir(tmp_path, environment="/from/env") == "/from/env"
    assert _data_dir(tmp_path, environment="/from/env", command_line="/from/make") == "/from/make"


def test_submission_warns_about_uncommitted_changes(tmp_path):
    shutil.copy(REPO_ROOT / "Makefile", tmp_path / "Makefile")
    (tmp_path / "report").mkdir()
    (tmp_path / "report" / "report.pdf").write_text("pdf")
    git = ["git", "-c", "user.name=test", "-c", "user.email=test@example.com"]
    for command in (["init", "-q"], ["add", "."], ["commit", "-q", "-m", "all"]):
        subprocess.run(git + command, cwd=tmp_path, check=True)
    make = ["make", "-s", "submission"]
    clean = subprocess.run(make, cwd=tmp_path, capture_output=True, text=True, check=True).stdout
    (tmp_path / "report" / "report.pdf").write_text("changed")
    dirty = subprocess.run(make, cwd=tmp_path, capture_output=True, text=True, check=True).stdout
    assert "warning" not in clean and dirty.startswith("warning: the working tree has uncommitted changes")
    assert "report/report.pdf" in dirty


@pytest.mark.parametrize("needed_gib,warns", [(0, False), (10**9, True)])
def test_venv_creation_warns_when_the_disk_is_nearly_full(tmp_path, needed_gib, warns):
    shutil.copy(REPO_ROOT / "Makefile", tmp_path / "Makefile")
    out = subprocess.run(["make", "-s", "disk-space", f"VENV_GIB={needed_gib}"], cwd=tmp_path,
                         capture_output=True, text=True, check=True).stdout
    assert out.startswith("WARNING: ") == warns and (f"needs about {needed_gib} GiB" in out) == warns


def test_report_without_latex_stops_at_once_with_the_install_line(tmp_path):
    """No latexmk on the PATH: make report stops before any training (or creating .venv), naming the
    install line and PDF=no; with PDF=no it goes on."""
    shutil.copy(REPO_ROOT / "Makefile", tmp_path / "Makefile")
    (tmp_path / "requirements.txt").write_text("")
    env = {"PATH": str(tmp_path / "empty-bin"), "HOME": str(tmp_path)}  # no latexmk anywhere on it
    (tmp_path / "empty-bin").mkdir()
    make = shutil.which("make")
    result = subprocess.run([make, "report"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=30)
    assert result.returncode != 0 and not (tmp_path / ".venv").exists()
    assert "needs LaTeX" in result.stdout and "apt-get install -y --no-install-recommends latexmk" in result.stdout
    assert "make report PDF=no" in result.stdout
    dry = subprocess.run([make, "-n", "report", "PDF=no"], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=30)
    assert dry.returncode == 0 and "common.report readme" in dry.stdout  # on to the results and the README's table


def test_the_longest_chain_of_scripts_starts_first():
    """Ex 2.4 trains longest and waits for Ex 2.1 and 2.2: make starts that chain before the others."""
    dry = subprocess.run(["make", "-n", "results", "FORCE=1", "OUT=zz"], cwd=REPO_ROOT, capture_output=True,
                         text=True).stdout
    order = [word for line in dry.splitlines() for word in line.split() if word.startswith("ex") and word.endswith(".py")]
    assert order[:3] == ["ex2_1_segnet.py", "ex2_2_regularization.py", "ex2_4_residual.py"]
    assert sorted(order) == sorted(p.name for p in REPO_ROOT.glob("ex[0-9]_[0-9]_*.py"))  # every script, once


def test_a_script_waits_for_the_script_that_trains_the_runs_it_reuses():
    """Under make -j, a script that loads shared runs from the cache must not train them alongside the
    script that trains them: its results file depends on the other's."""
    database = subprocess.run(["make", "-pnq", "OUT=zz", "zz/results/ex2_4_residual.json"], cwd=REPO_ROOT,
                              capture_output=True, text=True).stdout
    needs = {line.split(":")[0]: line for line in database.splitlines() if line.startswith("zz/results/")}
    reuse = {"ex1_3_pool_order": ["ex1_2_cnn"], "ex1_4_adam": ["ex1_2_cnn"], "ex1_5_variants": ["ex1_2_cnn", "ex1_3_pool_order"],
             "ex2_2_regularization": ["ex2_1_segnet"], "ex2_3_skip": ["ex2_1_segnet"],
             "ex2_4_residual": ["ex2_1_segnet", "ex2_2_regularization"]}  # Ex 2.4's depth-1 no-BN runs are Ex 2.2's
    for script, trained_by in reuse.items():
        assert all(f"zz/results/{other}.json" in needs[f"zz/results/{script}.json"] for other in trained_by), script
