"""Sphinx extension: export the suite's trained models to ONNX for the "Try it in your browser" page.

At the end of an HTML build, the rows of ``metaformer_mini.export.PAGE_ROWS`` that have a
checkpoint in ``results/checkpoints/`` are exported into ``_static/tryit/models/`` beside a
``manifest.json``, which the page reads. New checkpoints reach the page by rebuilding the site,
with no other change.
"""
from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any, Optional

from sphinx.util import logging
from sphinx.util.display import status_iterator

logger = logging.getLogger(__name__)


def _export_models(app, exception: Optional[Exception]) -> None:
    if exception is not None or app.builder.format != "html":
        return
    from metaformer_mini.export import export_checkpoint, page_checkpoints, write_manifest

    out = Path(app.outdir) / "_static" / "tryit" / "models"
    shutil.rmtree(out, ignore_errors=True)  # no model of an earlier build lingers
    checkpoints = page_checkpoints(Path(app.srcdir) / "results" / "checkpoints")
    entries = [export_checkpoint(path, out / f"{path.stem}.onnx") for path in status_iterator(
        checkpoints, "exporting the trained models to ONNX... ", "darkgreen", len(checkpoints),
        app.verbosity, stringify_func=lambda path: path.name)]
    manifest = write_manifest(out, entries)
    total = sum(entry["bytes"] for entry in entries)
    logger.info(f"{manifest.relative_to(app.outdir)}: {len(entries)} models, {total / 1e6:.1f} MB")


def setup(app) -> dict[str, Any]:
    """Register the export at the end of the build; safe for parallel builds."""
    app.connect("build-finished", _export_models)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
