"""Sphinx extension: drop repeated <script> tags from every page.

With Sphinx 7.4, sphinx-thebe's inline configuration script (``const THEBE_JS_URL = ...``)
lands twice in each page's head (once registered with filename None, once with ''), and the
browser reports "Identifier 'THEBE_JS_URL' has already been declared". Keeping the first of
each identical script removes that console error.
"""
from __future__ import annotations

from typing import Any


def _drop_repeated_scripts(app, pagename: str, templatename: str, context: dict, doctree) -> None:
    seen: set[tuple[str, str]] = set()
    unique = []
    for script in context.get("script_files", []):
        attributes = getattr(script, "attributes", {})
        key = (str(getattr(script, "filename", script) or ""), repr(sorted(attributes.items())))
        if key not in seen:
            seen.add(key)
            unique.append(script)
    context["script_files"] = unique


def setup(app) -> dict[str, Any]:
    """Register the page hook; safe for parallel builds."""
    app.connect("html-page-context", _drop_repeated_scripts, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
