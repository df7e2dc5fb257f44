"""Tests for book/_ext/slide_decks.py: the teaching sessions' reveal.js decks, built from chapter cells.

The decks are built once into a temporary folder (a few seconds, no Sphinx); the browser test
of the decks inside the built site is tests/test_slide_decks_in_chromium.py.
"""
from __future__ import annotations

import importlib
import re
import shutil
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "book" / "_ext"))
import slide_decks  # noqa: E402
from slide_decks import Session  # noqa: E402

SESSIONS = slide_decks.load_sessions(ROOT / slide_decks.DECLARATION)
CHAPTERS = ROOT / "chapters"
CDN_HOSTS = re.compile(r"unpkg\.com|jsdelivr|cdnjs|googleapis|cloudflare|cdn\.", re.I)


@pytest.fixture(scope="module")
def decks(tmp_path_factory) -> dict[int, str]:
    """Build every deck into a temporary slides/ folder; return session number -> deck HTML."""
    paths = slide_decks.build_decks(ROOT, tmp_path_factory.mktemp("html") / slide_decks.OUT)
    assert [path.name for path in paths] == [session.file_name for session in SESSIONS]
    return {session.number: path.read_text() for session, path in zip(SESSIONS, paths)}


def _tagged_cells() -> dict[str, list[tuple[str, str]]]:
    """Return tag -> [(chapter, cell id)] for every slides-session-<n> tag in the chapters."""
    tagged: dict[str, list[tuple[str, str]]] = {}
    for path in sorted(CHAPTERS.glob("[0-9][0-9]_*.ipynb")):
        for cell in nbformat.read(path, as_version=4).cells:
            for tag in cell.metadata.get("tags", []):
                if tag.startswith(slide_decks.TAG_PREFIX):
                    tagged.setdefault(tag, []).append((path.stem, cell.id))
    return tagged


# --- the declaration and the chapters' tags -----------------------------------------------------

def test_one_deck_per_session_of_the_five_session_plan():
    assert [session.number for session in SESSIONS] == [1, 2, 3, 4, 5]
    teachers = (ROOT / "book" / "teachers.md").read_text()
    five = teachers.split("## Five sessions", 1)[1].split("\n## ", 1)[0]
    for session in SESSIONS:
        assert f"{session.number}. {session.title}" in five, f"teachers.md has no session '{session.title}'"
        assert f"../slides/{session.file_name}" in five, f"teachers.md does not link {session.file_name}"


def test_declared_cells_and_the_chapters_tags_agree():
    problems = slide_decks.check_marks(SESSIONS, CHAPTERS)
    assert not problems, "\n".join(problems)


def _one_chapter(tmp_path: Path, chapter: str) -> tuple[Path, list[Session], nbformat.NotebookNode]:
    """Copy one chapter into tmp_path; return the folder, the sessions restricted to it, its notebook."""
    shutil.copy(CHAPTERS / f"{chapter}.ipynb", tmp_path)
    sessions = [Session(s.number, s.title, tuple(x for x in s.slides if x.chapter == chapter)) for s in SESSIONS]
    return tmp_path, sessions, nbformat.read(tmp_path / f"{chapter}.ipynb", as_version=4)


def test_a_marked_cell_that_disappears_from_its_chapter_is_named(tmp_path):
    folder, sessions, nb = _one_chapter(tmp_path, "05_poolformer")
    gone = sessions[2].slides[0].cell
    nb.cells = [cell for cell in nb.cells if cell.id != gone]
    nbformat.write(nb, folder / "05_poolformer.ipynb")
    assert slide_decks.check_marks(sessions, folder) == [
        f"05_poolformer.ipynb has no cell {gone!r}, which session 3's deck shows as slide: restore the "
        f"cell, or take it out of {slide_decks.DECLARATION}"]


def test_a_lost_tag_and_an_undeclared_tag_are_named(tmp_path):
    folder, sessions, nb = _one_chapter(tmp_path, "05_poolformer")
    slide = sessions[2].slides[1]
    cells = {cell.id: cell for cell in nb.cells}
    cells[slide.notes].metadata["tags"].remove("slides-session-3")
    untagged = next(cell for cell in nb.cells if not cell.metadata.get("tags"))
    untagged.metadata["tags"] = ["slides-session-3"]
    nbformat.write(nb, folder / "05_poolformer.ipynb")
    problems = slide_decks.check_marks(sessions, folder)
    assert problems == [
        f"05_poolformer.ipynb cell {slide.notes!r} is speaker notes in session 3's deck but lacks the "
        "cell tag 'slides-session-3'",
        f"05_poolformer.ipynb cell {untagged.id!r} is tagged 'slides-session-3' but "
        f"{slide_decks.DECLARATION} does not declare it in that session's deck: declare it there, or "
        "remove the tag"]


def test_build_stops_when_the_decks_and_the_tags_disagree(tmp_path):
    for name in (slide_decks.DECLARATION, slide_decks.BIBLIOGRAPHY, "book/teachers.md"):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        shutil.copy(ROOT / name, tmp_path / name)
    shutil.copytree(CHAPTERS, tmp_path / "chapters")
    path = tmp_path / "chapters" / "01_from_vit_and_mixer.ipynb"
    nb = nbformat.read(path, as_version=4)
    first = SESSIONS[0].slides[1]
    nb.cells = [cell for cell in nb.cells if cell.id != first.cell]
    nbformat.write(nb, path)
    with pytest.raises(ValueError, match=f"disagree:\n- 01_from_vit_and_mixer.ipynb has no cell '{first.cell}'"):
        slide_decks.build_decks(tmp_path, tmp_path / "out")


def test_mark_cells_restores_the_tags_and_touches_nothing_else(tmp_path):
    folder, sessions, nb = _one_chapter(tmp_path, "09_comparing_mixers")
    original = (folder / "09_comparing_mixers.ipynb").read_bytes()
    for cell in nb.cells:
        tags = [tag for tag in cell.metadata.get("tags", []) if not tag.startswith(slide_decks.TAG_PREFIX)]
        cell.metadata.pop("tags", None)
        if tags:
            cell.metadata["tags"] = tags
    nbformat.write(nb, folder / "09_comparing_mixers.ipynb")
    assert slide_decks.check_marks(sessions, folder), "the tags should be missing now"
    assert slide_decks.mark_cells(sessions, folder) == [folder / "09_comparing_mixers.ipynb"]
    assert (folder / "09_comparing_mixers.ipynb").read_bytes() == original
    assert slide_decks.mark_cells(sessions, folder) == []


def test_a_bad_declaration_says_what_was_expected(tmp_path):
    path = tmp_path / "slides.yml"
    path.write_text("sessions:\n  - title: T\n    slides:\n      05_poolformer:\n        - {cell: cell-04, show: code}\n")
    with pytest.raises(ValueError, match=r"show: 'code' for cell cell-04; expected one of \('both', 'input', 'output'\)"):
        slide_decks.load_sessions(path)
    path.write_text("sessions:\n  - title: T\n")
    with pytest.raises(ValueError, match="expected 'title' and 'slides'"):
        slide_decks.load_sessions(path)


# --- MyST prose on a slide ------------------------------------------------------------------------

def test_myst_roles_become_author_year_and_links_into_the_site():
    myst = slide_decks.MystText(ROOT)
    text = myst.to_markdown("as {cite}`yu2022metaformer,wu2018groupnorm` show; see {doc}`03_token_mixers` "
                            "and {doc}`the plan <../book/teachers>`.", "chapters/05_poolformer", "here")
    assert text == ("as (Yu et al., 2022; Wu and He, 2018) show; see [3. Token mixers](../chapters/03_token_mixers.html) "
                    "and [the plan](../book/teachers.html).")
    with pytest.raises(ValueError, match=r"here: the \{numref\} role has no slide form"):
        myst.to_markdown("{numref}`fig-1`", "chapters/05_poolformer", "here")
    with pytest.raises(ValueError, match=r"here: the \{admonition\} directive has no slide form"):
        myst.to_markdown("```{admonition} Solution\nx\n```", "chapters/05_poolformer", "here")


def test_a_widget_cannot_be_a_slide():
    nb = nbformat.read(CHAPTERS / "02_input_embedding.ipynb", as_version=4)
    widget = next(cell for cell in nb.cells if cell.cell_type == "code" and any(
        slide_decks.WIDGET in out.get("data", {}) for out in cell.outputs))
    with pytest.raises(ValueError, match="interactive widget, which a deck cannot run"):
        slide_decks._shown(widget, "output", "02_input_embedding.ipynb cell")
    assert slide_decks._shown(widget, "input", "").outputs == []


# --- the built decks ----------------------------------------------------------------------------

@pytest.mark.parametrize("session", SESSIONS, ids=lambda s: s.file_name)
def test_deck_has_a_title_slide_and_one_slide_per_declared_cell(session, decks):
    html = decks[session.number]
    sections = re.findall(r"<section\b", html)
    assert len(sections) == 2 * session.slide_count(), (  # nbconvert nests each slide in two sections
        f"{session.file_name}: {len(sections) // 2} slides, declared {session.slide_count()}")
    title = html.split("</section>", 1)[0]
    assert "<h1" in title and session.title in title
    for chapter in session.chapters:
        assert f'href="../chapters/{chapter}.html"' in title, f"the title slide does not name {chapter}"


@pytest.mark.parametrize("session", SESSIONS, ids=lambda s: s.file_name)
def test_every_marked_cell_is_in_its_deck(session, decks):
    html = decks[session.number]
    tagged = _tagged_cells()[session.tag]
    assert tagged, f"no cell is tagged {session.tag}"
    for chapter, cell_id in tagged:
        anchor = f'id="cell-id={slide_decks.deck_cell_id(chapter, cell_id)}"'
        assert anchor in html, f"{chapter} cell {cell_id!r} is tagged {session.tag} but is not in {session.file_name}"
    notes = re.findall(r'<aside class="notes">\s*<div[^>]*id="cell-id=([^"]+)"', html)
    assert notes == [slide_decks.deck_cell_id(s.chapter, s.notes) for s in session.slides if s.notes]


@pytest.mark.parametrize("session", SESSIONS, ids=lambda s: s.file_name)
def test_deck_loads_nothing_from_outside_the_site(session, decks):
    html = decks[session.number]
    assert slide_decks.external_loads(html) == []
    assert not CDN_HOSTS.search(html), f"a CDN address in {session.file_name}: {CDN_HOSTS.search(html)[0]}"
    mathjax = Path(importlib.import_module("sphinx-mathjax-offline").__file__).parent / "static"
    local = [url for url in slide_decks.page_loads(html) if not url.startswith("data:")]
    assert "../_static/mathjax/tex-chtml.js" in local and "../_static/reveal.js/dist/reveal.js" in local
    for url in local:  # every file the deck loads is one the site serves
        name = url.removeprefix("../_static/")
        assert (ROOT / "book" / "_static" / name).is_file() or (mathjax / name).is_file(), f"{url} is not in the site"


def test_external_loads_finds_what_a_page_would_fetch_from_elsewhere():
    html = """<script src="https://unpkg.com/reveal.js@4/dist/reveal.js"></script>
    <link rel="stylesheet" href="//cdn.example/x.css"><style>@import "https://fonts.example/f.css";
    .a { background: url(https://img.example/b.png) }</style><script type="module">import m from 'https://x.example/m.js';</script>
    <a href="https://arxiv.org/abs/2111.11418">paper</a><img src="data:image/png;base64,AAAA">
    <script src="../_static/reveal.js/dist/reveal.js"></script>"""
    assert slide_decks.external_loads(html) == [
        "https://unpkg.com/reveal.js@4/dist/reveal.js", "//cdn.example/x.css", "https://fonts.example/f.css",
        "https://img.example/b.png", "https://x.example/m.js"]
