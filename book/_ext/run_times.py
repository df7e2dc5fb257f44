"""Sphinx extension: every chapter's quick-mode run time as a MyST substitution, read from its stored run.

``{{ run_time_06 }}`` in a page (book/teachers.md plans the live runs of a session with them)
becomes e.g. "49 s": the time of chapter 6's stored run, first cell's start to last cell's end,
the same measurement chapter 0 prints. The number comes from the notebook at build time, so it
follows the chapter whenever its outputs are regenerated.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Optional


def format_seconds(seconds: Optional[float]) -> str:
    """Return a run time for prose: '49 s' under two minutes, '3.5 min' above, 'no stored run' for None."""
    if seconds is None:
        return "no stored run"
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


def _add_run_times(app, config) -> None:
    from metaformer_mini.book import stored_run_seconds

    chapters = sorted((Path(app.srcdir) / "chapters").glob("[0-9][0-9]_*.ipynb"))
    times = {f"run_time_{path.name[:2]}": format_seconds(stored_run_seconds(path)) for path in chapters}
    config.myst_substitutions = {**config.myst_substitutions, **times}


def setup(app) -> dict[str, Any]:
    """Add the substitutions once the configuration is read; safe for parallel builds."""
    app.connect("config-inited", _add_run_times)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
