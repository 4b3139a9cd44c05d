"""What imports what, read from the source with ``ast``: every exercise script stands alone on common/
(no script imports another: each writes its configuration out in full), tuning/ imports no exercise
script (tuning/sweep.py restates ex2_5_best.py's configuration; tests/test_tuning.py checks they agree),
and common/ imports neither."""
import ast
import re
from pathlib import Path

import pytest

from common.data import REPO_ROOT

SCRIPTS = sorted(REPO_ROOT.glob("ex[0-9]_[0-9]_*.py"))
SCRIPT_NAMES = {p.stem for p in SCRIPTS}
# the repository's own top-level modules and packages: what an import may find here rather than installed
LOCAL = SCRIPT_NAMES | {p.stem for p in REPO_ROOT.glob("*.py")} | {
    p.name for p in REPO_ROOT.iterdir() if p.is_dir() and not p.name.startswith(".") and (
        (p / "__init__.py").is_file() or any(p.glob("*.py")))}


def imported(path: Path) -> set[str]:
    """The top-level module of every import in ``path`` ("." for a relative one), those made with
    importlib.import_module or __import__ on a literal name included."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            names.add("." if node.level else node.module.split(".")[0])
        elif isinstance(node, ast.Call) and (getattr(node.func, "attr", None) == "import_module" or
                                             getattr(node.func, "id", None) in ("__import__", "import_module")):
            arg = node.args[0] if node.args else None
            names.add(arg.value.split(".")[0] if isinstance(arg, ast.Constant) else "<computed>")
    return names


def test_the_scripts_and_the_local_modules_are_found():
    assert len(SCRIPTS) == 10 and {"common", "tuning"} <= LOCAL and "ex2_5_best" in SCRIPT_NAMES


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.stem)
def test_an_exercise_script_imports_only_common(script):
    local = imported(script) & (LOCAL | {".", "<computed>"})
    assert local <= {"common"}, f"{script.name} imports {sorted(local - {'common'})}: it must stand alone on common/"


@pytest.mark.parametrize("module", sorted((REPO_ROOT / "tuning").glob("*.py")), ids=lambda p: p.stem)
def test_tuning_imports_no_exercise_script(module):
    names = imported(module)
    assert not names & SCRIPT_NAMES and "<computed>" not in names, sorted(names & (SCRIPT_NAMES | {"<computed>"}))
    assert not re.search(r"^\s*(import|from)\s+ex\d_\d_", module.read_text(), flags=re.MULTILINE)


@pytest.mark.parametrize("module", sorted((REPO_ROOT / "common").glob("*.py")), ids=lambda p: p.stem)
def test_common_imports_no_script_and_nothing_of_tuning(module):
    local = imported(module) & (LOCAL | {"<computed>"})
    assert local <= {"common"}, f"common/{module.name} imports {sorted(local - {'common'})}"


def test_the_numpy_network_does_not_depend_on_the_training_loop():
    """common/numpy_mlp.py is Ex 1.1's network on its own; common.timing pairs it with PyTorch."""
    tree = ast.parse((REPO_ROOT / "common" / "numpy_mlp.py").read_text())
    relative = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.level}
    assert "train" not in relative and not imported(REPO_ROOT / "common" / "numpy_mlp.py") & LOCAL
