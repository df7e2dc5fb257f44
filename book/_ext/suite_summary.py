"""Sphinx extension: what the CIFAR-10 suite shows so far, as the MyST substitution ``{{ suite_summary }}``.

book/teachers.md tells a group leader what chapter 9's suite shows before the group discusses
it. The text is ``analysis.verdicts.format_summary`` of the committed results, computed when the
site is built, so it follows the results whenever rows are added or re-run.
"""
from __future__ import annotations

from typing import Any


def _add_summary(app, config) -> None:
    from metaformer_mini.analysis.verdicts import format_summary
    from metaformer_mini.experiments import load_results

    config.myst_substitutions = {**config.myst_substitutions,
                                 "suite_summary": format_summary(load_results())}


def setup(app) -> dict[str, Any]:
    """Add the substitution once the configuration is read; safe for parallel builds."""
    app.connect("config-inited", _add_summary)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
