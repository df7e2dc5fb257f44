"""Helpers for what the package and its benchmarks write: files that a kill never leaves half-written, JSON, plain data."""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import IO, Any, Callable


def atomic_write(path: str | os.PathLike, write: Callable[[IO[bytes]], Any]) -> None:
    """Write ``path`` through ``write(file)`` atomically: a temp file in the same folder, fsync, rename.

    A kill at any moment leaves either the old file or the new one, never half of one.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_json(path: str | os.PathLike, data: Any, indent: int = 2) -> Path:
    """Write ``data`` as indented JSON with a final newline to ``path`` (atomically); return the path."""
    atomic_write(path, lambda f: f.write((json.dumps(data, indent=indent) + "\n").encode()))
    return Path(path)


def plain(value: Any) -> Any:
    """Return ``value`` as JSON gives it back: tuples become lists, at every depth."""
    return json.loads(json.dumps(value))
