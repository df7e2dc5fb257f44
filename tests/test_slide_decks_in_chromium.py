"""The teaching sessions' slide decks as a teacher opens them: from the built site, in Chromium, offline.

The site is built once by tests/conftest.py's fixtures (shared with tests/test_site.py) and
served on 127.0.0.1; every request that leaves it is blocked and reported. Each deck must show
its declared number of slides, render its math with MathJax, load its images, fit every slide on
reveal.js's canvas in width and height and log no console error. A screenshot of each title
slide goes under the test's tmp_path. The decks' unit tests are tests/test_slide_decks.py.
"""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "book" / "_ext"))
import slide_decks  # noqa: E402

SESSIONS = slide_decks.load_sessions(ROOT / slide_decks.DECLARATION)


@pytest.mark.parametrize("session", SESSIONS, ids=lambda s: s.file_name)
def test_deck_works_offline_in_chromium(session, site, server, watched_page, tmp_path):
    assert (site / slide_decks.OUT / session.file_name).is_file(), "the site build wrote no such deck"
    page, problems = watched_page()
    page.goto(server + f"{slide_decks.OUT}/{session.file_name}", wait_until="networkidle")
    page.wait_for_function("window.Reveal && Reveal.isReady()")
    assert page.evaluate("Reveal.getTotalSlides()") == session.slide_count()

    page.wait_for_function("window.MathJax && MathJax.startup && MathJax.startup.promise")
    page.evaluate("MathJax.startup.promise")
    assert page.locator("mjx-container").count() > 0, "no math rendered"
    assert page.locator("mjx-merror").count() == 0, "MathJax reported an error in a formula"
    text = page.evaluate("document.querySelector('.reveal .slides').textContent")
    assert "$$" not in text and "\\begin{" not in text, "a formula was left as TeX source"

    page.wait_for_function("Array.from(document.images).every(img => img.complete)")
    images = page.eval_on_selector_all("img", "imgs => imgs.map(img => img.naturalWidth)")
    assert images and all(width > 0 for width in images), f"image widths: {images}"

    shot = tmp_path / f"{Path(session.file_name).stem}-title.png"
    page.screenshot(path=str(shot))
    assert shot.stat().st_size > 10_000

    too_big = []
    for index in range(session.slide_count()):
        page.evaluate(f"Reveal.slide({index})")
        width, height = page.evaluate("(s => [s.scrollWidth, s.scrollHeight])(Reveal.getCurrentSlide())")
        if width > slide_decks.WIDTH or height > slide_decks.HEIGHT:
            too_big.append(f"slide {index + 1}: {width} x {height} px")
    page.close()
    assert not too_big, f"larger than the {slide_decks.WIDTH} x {slide_decks.HEIGHT} px canvas: {too_big}"
    assert not problems, "\n".join(problems)


def test_teachers_page_links_every_deck(server, watched_page):
    page, problems = watched_page()
    page.goto(server + "book/teachers.html", wait_until="networkidle")
    links = page.eval_on_selector_all(f'a[href*="{slide_decks.OUT}/session-"]', "links => links.map(a => a.href)")
    assert links == [f"{server}{slide_decks.OUT}/{s.file_name}" for s in SESSIONS]
    for link in links:
        assert page.request.get(link).status == 200, f"{link} does not load"
    page.close()
    assert not problems, "\n".join(problems)
