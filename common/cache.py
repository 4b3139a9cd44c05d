"""A small on-disk cache: decoded data sets and finished training runs.

Entries are written to a temporary name and renamed into place, so an interrupted
program never leaves a half-written entry behind; the next run recomputes it.
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent


def cache_dir() -> Path:
    """``$DLIA_CACHE_DIR`` if set, otherwise ``.cache/`` in the repository."""
    return Path(os.environ.get("DLIA_CACHE_DIR", REPO_ROOT / ".cache"))


def stable_hash(obj: Any, length: int = 16) -> str:
    """A hex digest of a JSON-serialisable object that does not depend on dict order."""
    text = json.dumps(obj, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def files_hash(paths: list[Path], length: int = 16) -> str:
    """A digest of the contents of ``paths`` (used to notice code changes)."""
    digest = hashlib.sha256()
    for path in sorted(paths):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:length]


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the whole new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=1, default=str) + "\n").encode())
