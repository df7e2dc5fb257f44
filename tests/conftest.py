"""The browser tests' shared fixtures: the site built once per test run, served on 127.0.0.1, and Chromium.

Building the site takes minutes, so tests/test_site.py (every page) and
tests/test_slide_decks_in_chromium.py (the teaching decks) share one build: the fixtures are
session-scoped. Chromium is Debian's, driven by playwright (never `playwright install`); without
it the browser tests are skipped, except under CI=true, where they fail.
"""
from __future__ import annotations

import functools
import http.server
import os
import re
import shutil
import subprocess
import threading
from pathlib import Path
from typing import Any, Callable

import pytest

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]
# The theme logs this on every page when no theme mode was stored; it is harmless.
HARMLESS_CONSOLE = [re.compile(r"Got invalid theme mode")]


def _require_browser(chromium: str = CHROMIUM) -> None:
    """Skip (fail when CI=true) unless Debian's chromium and playwright are both installed."""
    missing = []
    if not Path(chromium).exists():
        missing.append(f"{chromium} (apt-get install -y chromium)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        missing.append("playwright (pip install -r requirements.txt)")
    if missing:
        message = "the browser test needs " + " and ".join(missing)
        if os.environ.get("CI") == "true":
            pytest.fail(message + "; CI must run it (.ci/run installs chromium)")
        pytest.skip(message)


@pytest.fixture
def require_browser() -> Callable[[str], None]:
    """Return the check that skips a browser test without Chromium and playwright (fails under CI=true)."""
    return _require_browser


@pytest.fixture(scope="session")
def site(tmp_path_factory) -> Path:
    """Build the book with warnings as errors into a temporary folder; return its html/ folder."""
    _require_browser()
    out = tmp_path_factory.mktemp("site")
    build = subprocess.run(
        [shutil.which("jupyter-book") or "jupyter-book", "build", str(ROOT), "-W", "-n", "--keep-going",
         "--path-output", str(out)], capture_output=True, text=True, timeout=900)
    assert build.returncode == 0, f"jupyter-book build failed:\n{build.stdout[-4000:]}\n{build.stderr[-4000:]}"
    return out / "_build" / "html"


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


@pytest.fixture(scope="session")
def server(site):
    """Serve the built site on 127.0.0.1 (a free port); yield its base URL."""
    handler = functools.partial(_QuietHandler, directory=str(site))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(scope="session")
def browser(server):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        yield chromium
        chromium.close()


@pytest.fixture
def watched_page(browser, server) -> Callable[[], tuple[Any, list[str]]]:
    """Return a function that opens a page whose requests off the site are blocked, and the list its
    problems (console errors, page errors, failed or blocked requests) go to."""

    def open_page() -> tuple[Any, list[str]]:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        problems: list[str] = []
        page.on("console", lambda msg: msg.type == "error" and not any(
            p.search(msg.text) for p in HARMLESS_CONSOLE) and problems.append(f"console: {msg.text}"))
        page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
        page.on("requestfailed", lambda req: problems.append(f"request failed: {req.url}"))

        def only_local(route):
            if route.request.url.startswith(server):
                route.continue_()
            else:
                problems.append(f"left the site: {route.request.url}")
                route.abort()

        page.route("**/*", only_local)
        return page, problems

    return open_page
