"""Sphinx extension: one reveal.js slide deck per session of the teachers' five-session plan.

``book/slides.yml`` declares the decks: for every session its title and, chapter by chapter,
the cells that become slides (by cell id), each with an optional prose cell as its speaker
notes. Every declared cell carries the cell tag ``slides-session-<n>`` in its notebook, and every
cell with that tag is declared, so a chapter's editor sees which cells a deck uses and a deck
notices when one of its cells disappears: :func:`check_marks` names each mismatch, and the build
stops on one.

A deck is assembled at build time from the stored cells (nothing is copied into the
repository) behind a generated title slide, and exported by nbconvert's reveal.js exporter
through ``slide_deck.html.j2``, which takes reveal.js and MathJax from the built site
(``_static/reveal.js``, ``_static/mathjax``) instead of a CDN. The decks land in
``<html>/slides/session-<n>.html``, beside the pages they link back to.
"""
from __future__ import annotations

import argparse
import copy
import posixpath
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import nbformat
import yaml

DECLARATION = "book/slides.yml"
BIBLIOGRAPHY = "book/references.bib"
PAPER = "yu2022metaformer"  # the bibliography key of the paper every deck presents
OUT = "slides"  # the decks' folder in the built site
TAG_PREFIX = "slides-session-"
SHOW = ("both", "input", "output")
TEMPLATE = Path(__file__).resolve().parent / "slide_deck.html.j2"
# The site's own copies, relative to <html>/slides/ (sphinx-mathjax-offline puts MathJax there).
REVEAL = "../_static/reveal.js"
MATHJAX = "../_static/mathjax/tex-chtml.js"
THEME = "white"  # dist/theme/<THEME>.css, vendored with reveal.js
WIDTH, HEIGHT = 1280, 800  # reveal.js scales this canvas to the screen
WIDGET = "application/vnd.jupyter.widget-view+json"

_ROLE = re.compile(r"\{([\w:-]+)\}`([^`]*)`")
_DIRECTIVE = re.compile(r"^\s*(?:`{3,}|:{3,})\s*\{([\w-]+)\}", re.M)
_LOADS = re.compile(r"""<[a-z]+\b[^>]*?\bsrc\s*=\s*["']?([^"'\s>]+)"""
                    r"""|<link\b[^>]*?\bhref\s*=\s*["']?([^"'\s>]+)"""
                    r"""|url\(\s*["']?([^"')\s]+)"""
                    r"""|@import\s+["']([^"']+)"""
                    r"""|\bimport\b[^;'"]*?\bfrom\s*["']([^"']+)""", re.I)


@dataclass(frozen=True)
class Slide:
    """One slide: a chapter's cell, what of it to show, and optionally a prose cell as speaker notes."""

    chapter: str  # notebook name without .ipynb, e.g. "03_token_mixers"
    cell: str  # cell id
    show: str = "both"  # of a code cell: its "input", its "output" or "both"
    notes: Optional[str] = None  # id of a markdown cell of the same chapter


@dataclass(frozen=True)
class Session:
    """One session of the five-session plan and the slides of its deck."""

    number: int
    title: str
    slides: tuple[Slide, ...]

    @property
    def tag(self) -> str:
        """Return the cell tag that marks this session's cells, e.g. 'slides-session-3'."""
        return f"{TAG_PREFIX}{self.number}"

    @property
    def file_name(self) -> str:
        """Return the deck's file name in the site's slides/ folder."""
        return f"session-{self.number}.html"

    @property
    def chapters(self) -> list[str]:
        """Return the chapters the deck draws on, in the declaration's order."""
        return list(dict.fromkeys(slide.chapter for slide in self.slides))

    def slide_count(self) -> int:
        """Return the number of slides of the deck: the title slide and one per declared cell."""
        return 1 + len(self.slides)


def deck_cell_id(chapter: str, cell_id: str) -> str:
    """Return the id a chapter's cell gets in a deck (cell ids repeat across chapters)."""
    return f"{chapter}-{cell_id}"


def _slide(chapter: str, entry: Any, where: str) -> Slide:
    if isinstance(entry, str):
        return Slide(chapter, entry)
    if not isinstance(entry, dict) or "cell" not in entry or set(entry) - {"cell", "show", "notes"}:
        raise ValueError(f"{where}: {entry!r} is not a slide; expected a cell id or "
                         "{cell: <id>, show: both|input|output, notes: <markdown cell id>}")
    slide = Slide(chapter, str(entry["cell"]), entry.get("show", "both"),
                  None if entry.get("notes") is None else str(entry["notes"]))
    if slide.show not in SHOW:
        raise ValueError(f"{where}: show: {slide.show!r} for cell {slide.cell}; expected one of {SHOW}")
    return slide


def load_sessions(path: Path) -> list[Session]:
    """Return the sessions declared in ``book/slides.yml``, numbered from 1 in their order."""
    declared = yaml.safe_load(path.read_text())
    if not isinstance(declared, dict) or not isinstance(declared.get("sessions"), list):
        raise ValueError(f"{path}: expected a mapping with a list of sessions under 'sessions'")
    sessions = []
    for number, entry in enumerate(declared["sessions"], start=1):
        where = f"{path.name}, session {number}"
        if not isinstance(entry, dict) or set(entry) != {"title", "slides"} or not isinstance(entry["slides"], dict):
            raise ValueError(f"{where}: expected 'title' and 'slides' (chapter: [cells]), got {entry!r:.200}")
        slides = tuple(_slide(chapter, cell, f"{where}, {chapter}")
                       for chapter, cells in entry["slides"].items() for cell in cells)
        sessions.append(Session(number, str(entry["title"]), slides))
    return sessions


def check_marks(sessions: list[Session], chapters_dir: Path) -> list[str]:
    """Return one message per disagreement between the declared decks and the notebooks' tags.

    Every declared cell (slide or notes) must exist in its chapter and carry its session's tag,
    notes must be markdown, and every cell tagged ``slides-session-<n>`` must be declared in
    session n's deck.
    """
    notebooks = {path.stem: nbformat.read(path, as_version=4)
                 for path in sorted(chapters_dir.glob("[0-9][0-9]_*.ipynb"))}
    tagged = {(chapter, cell.id, tag) for chapter, nb in notebooks.items() for cell in nb.cells
              for tag in cell.metadata.get("tags", []) if tag.startswith(TAG_PREFIX)}
    problems, declared = [], set()
    for session in sessions:
        for slide in session.slides:
            if slide.chapter not in notebooks:
                problems.append(f"session {session.number}'s deck names chapter {slide.chapter!r}, but "
                                f"{chapters_dir / slide.chapter}.ipynb does not exist")
                continue
            cells = {cell.id: cell for cell in notebooks[slide.chapter].cells}
            for cell_id, role in ((slide.cell, "slide"), (slide.notes, "speaker notes")):
                if cell_id is None:
                    continue
                declared.add((slide.chapter, cell_id, session.tag))
                cell = cells.get(cell_id)
                if cell is None:
                    problems.append(f"{slide.chapter}.ipynb has no cell {cell_id!r}, which session "
                                    f"{session.number}'s deck shows as {role}: restore the cell, or take "
                                    f"it out of {DECLARATION}")
                elif session.tag not in cell.metadata.get("tags", []):
                    problems.append(f"{slide.chapter}.ipynb cell {cell_id!r} is {role} in session "
                                    f"{session.number}'s deck but lacks the cell tag {session.tag!r}")
                elif role == "speaker notes" and cell.cell_type != "markdown":
                    problems.append(f"{slide.chapter}.ipynb cell {cell_id!r}: speaker notes must be a "
                                    f"markdown cell, not a {cell.cell_type} cell")
    for chapter, cell_id, tag in sorted(tagged - declared):
        problems.append(f"{chapter}.ipynb cell {cell_id!r} is tagged {tag!r} but {DECLARATION} does not "
                        "declare it in that session's deck: declare it there, or remove the tag")
    return problems


def mark_cells(sessions: list[Session], chapters_dir: Path) -> list[Path]:
    """Make the notebooks' ``slides-session-<n>`` tags match the declaration; return the notebooks changed.

    Only cell metadata changes (sources and outputs are untouched), and nbformat writes the
    notebooks as it always does, so re-executed chapters get their tags back with one call.
    """
    wanted: dict[tuple[str, str], set[str]] = {}
    for session in sessions:
        for slide in session.slides:
            for cell_id in filter(None, (slide.cell, slide.notes)):
                wanted.setdefault((slide.chapter, cell_id), set()).add(session.tag)
    changed = []
    for path in sorted(chapters_dir.glob("[0-9][0-9]_*.ipynb")):
        nb = nbformat.read(path, as_version=nbformat.NO_CONVERT)
        missing = {cell_id for chapter, cell_id in wanted if chapter == path.stem} - {cell.id for cell in nb.cells}
        if missing:
            raise ValueError(f"{path.name} has no cells {sorted(missing)}, which {DECLARATION} declares")
        touched = False
        for cell in nb.cells:
            tags = cell.metadata.get("tags", [])
            want = sorted(wanted.get((path.stem, cell.id), ()))
            if sorted(tag for tag in tags if tag.startswith(TAG_PREFIX)) == want:
                continue
            touched = True
            tags = [tag for tag in tags if not tag.startswith(TAG_PREFIX)] + want
            if tags:
                cell.metadata["tags"] = tags
            else:
                del cell.metadata["tags"]
        if touched:
            nbformat.write(nb, path)
            changed.append(path)
    return changed


class MystText:
    """Turns the MyST of a chapter's prose into the plain markdown a slide renders.

    ``{cite}`` becomes an author-year text from the bibliography, ``{doc}`` a link to the page in
    the built site (relative to slides/); any other role or directive is refused, naming the cell.
    """

    def __init__(self, root: Path):
        from pybtex.database import parse_file
        from pybtex.richtext import Text

        self._root = root
        self._entries = parse_file(str(root / BIBLIOGRAPHY)).entries
        self._plain = lambda latex: Text.from_latex(latex).render_as("text")

    def author_year(self, key: str) -> str:
        """Return e.g. 'Yu et al., 2022' for a key of the bibliography."""
        if key not in self._entries:
            raise KeyError(f"{key!r} is not a key of {BIBLIOGRAPHY}")
        entry = self._entries[key]
        names = [self._plain(" ".join(person.last_names)) for person in entry.persons["author"]]
        authors = " and ".join(names) if len(names) <= 2 else f"{names[0]} et al."
        return f"{authors}, {entry.fields['year']}"

    def title(self, key: str) -> str:
        """Return the title of a bibliography entry as plain text."""
        return self._plain(self._entries[key].fields["title"])

    def page_title(self, document: str) -> str:
        """Return a page's title, its first '# ' heading, for a document such as 'chapters/03_token_mixers'."""
        notebook, page = self._root / f"{document}.ipynb", self._root / f"{document}.md"
        if notebook.is_file():
            text = nbformat.read(notebook, as_version=4).cells[0].source
        elif page.is_file():
            text = page.read_text()
        else:
            raise FileNotFoundError(f"no page {document} (.ipynb or .md) under {self._root}")
        heading = re.search(r"^# (.+)$", text, re.M)
        if heading is None:
            raise ValueError(f"{document} has no '# Title' heading to name it by")
        return heading.group(1).strip()

    def to_markdown(self, source: str, document: str, where: str) -> str:
        """Return a cell's MyST source as markdown, for the page ``document`` it comes from."""
        directive = _DIRECTIVE.search(source)
        if directive:
            raise ValueError(f"{where}: the {{{directive.group(1)}}} directive has no slide form; "
                             "mark another cell")

        def replace(match: re.Match) -> str:
            role, text = match.groups()
            if role == "cite":
                return "(" + "; ".join(self.author_year(key.strip()) for key in text.split(",")) + ")"
            if role == "doc":
                parts = re.fullmatch(r"\s*(?:(?P<label>.+?)\s*<(?P<target>[^<>]+)>|(?P<bare>[^<>]+?))\s*", text)
                label, target = parts["label"], parts["target"] or parts["bare"]
                name = target.lstrip("/") if target.startswith("/") else posixpath.normpath(
                    posixpath.join(posixpath.dirname(document), target))
                return f"[{label or self.page_title(name)}](../{name}.html)"
            raise ValueError(f"{where}: the {{{role}}} role has no slide form (only {{cite}} and {{doc}})")

        return _ROLE.sub(replace, source)


def _shown(cell: Any, show: str, where: str) -> Any:
    """Return a copy of a code cell with only what the slide shows (input, output or both)."""
    cell = copy.deepcopy(cell)
    if cell.cell_type != "code":
        if show != "both":
            raise ValueError(f"{where}: show: {show} applies to code cells, this is a {cell.cell_type} cell")
        return cell
    if any(WIDGET in output.get("data", {}) for output in cell.outputs) and show != "input":
        raise ValueError(f"{where}: its output is an interactive widget, which a deck cannot run; "
                         "mark the cell that draws the figure instead")
    if show == "input":
        cell.outputs = []
    elif show == "output":
        cell.metadata["transient"] = {"remove_source": True}
    return cell


def section_heading(cells: list[Any], index: int) -> Optional[str]:
    """Return the last markdown heading above cells[index] in its chapter, or None if there is none."""
    for cell in reversed(cells[:index]):
        headings = re.findall(r"^#{1,6} (.+)$", cell.source, re.M) if cell.cell_type == "markdown" else []
        if headings:
            return headings[-1].strip()
    return None


def deck_notebook(session: Session, root: Path, myst: MystText, sessions: int) -> Any:
    """Return the in-memory notebook of a session's deck: a title slide, then the declared cells.

    Each slide opens with its chapter's title, linked to the chapter's page; a code cell's slide
    also gets the heading of the chapter's section it sits in.
    """
    chapters = " · ".join(f"[{myst.page_title(f'chapters/{c}')}](../chapters/{c}.html)"
                          for c in session.chapters)
    cells = [nbformat.v4.new_markdown_cell(
        f"# {session.title}\n\n"
        f"Session {session.number} of {sessions} · *{myst.title(PAPER)}* ({myst.author_year(PAPER)})\n\n"
        f"Chapters: {chapters}\n\n"
        f"<p class=\"deck-plan\">Reading, live runs, questions and exercises: "
        f"<a href=\"../book/teachers.html\">{myst.page_title('book/teachers')}</a></p>",
        id="title", metadata={"slideshow": {"slide_type": "slide"}})]
    chapter_cells: dict[str, list[Any]] = {}
    for slide in session.slides:
        if slide.chapter not in chapter_cells:
            chapter_cells[slide.chapter] = nbformat.read(
                root / "chapters" / f"{slide.chapter}.ipynb", as_version=4).cells
        in_chapter = chapter_cells[slide.chapter]
        index = {cell.id: i for i, cell in enumerate(in_chapter)}
        document = f"chapters/{slide.chapter}"
        where = f"{slide.chapter}.ipynb cell {slide.cell!r}"
        cell = _shown(in_chapter[index[slide.cell]], slide.show, where)
        opening = f"<p class=\"deck-source\"><a href=\"../{document}.html\">{myst.page_title(document)}</a></p>"
        heading = section_heading(in_chapter, index[slide.cell]) if cell.cell_type == "code" else None
        if heading is not None:
            opening += f"\n\n## {heading}"
        cells.append(nbformat.v4.new_markdown_cell(
            myst.to_markdown(opening, document, where), id=f"{deck_cell_id(slide.chapter, slide.cell)}-opening",
            metadata={"slideshow": {"slide_type": "slide"}}))
        if cell.cell_type == "markdown":
            cell.source = myst.to_markdown(cell.source, document, where)
        cell.id = deck_cell_id(slide.chapter, slide.cell)
        cells.append(cell)
        if slide.notes is not None:
            notes = copy.deepcopy(in_chapter[index[slide.notes]])
            notes.source = myst.to_markdown(notes.source, document, f"{slide.chapter}.ipynb cell {slide.notes!r}")
            notes.id = deck_cell_id(slide.chapter, slide.notes)
            notes.metadata["slideshow"] = {"slide_type": "notes"}
            cells.append(notes)
    return nbformat.v4.new_notebook(cells=cells, metadata={
        "title": f"Session {session.number}: {session.title}",
        "language_info": {"name": "python", "pygments_lexer": "ipython3"}})


def page_loads(html: str) -> list[str]:
    """Return every address a page loads: src= of any element, stylesheets, CSS url() and @import, ES imports."""
    return [next(group for group in match.groups() if group) for match in _LOADS.finditer(html)]


def external_loads(html: str) -> list[str]:
    """Return the addresses a page would load from outside its own site (CDNs and the like)."""
    return [url for url in page_loads(html) if re.match(r"(?:[a-z][a-z0-9+.-]*:)?//", url, re.I)]


def render_deck(nb: Any) -> str:
    """Return a deck notebook as a reveal.js page that loads everything from the built site."""
    from nbconvert import SlidesExporter

    exporter = SlidesExporter(template_file=str(TEMPLATE), reveal_url_prefix=REVEAL, reveal_theme=THEME,
                              reveal_width=str(WIDTH), reveal_height=str(HEIGHT), mathjax_url=MATHJAX,
                              exclude_input_prompt=True, exclude_output_prompt=True,
                              exclude_anchor_links=True)
    html, _ = exporter.from_notebook_node(nb)
    outside = external_loads(html)
    if outside:
        raise ValueError(f"the deck {nb.metadata.title!r} would load from outside the site: {outside}")
    return html


def build_decks(root: Path, out: Path) -> list[Path]:
    """Write one deck per declared session into ``out`` (the site's slides/ folder); return their paths."""
    sessions = load_sessions(root / DECLARATION)
    problems = check_marks(sessions, root / "chapters")
    if problems:
        raise ValueError("the slide decks and the chapters' cell tags disagree:\n- " + "\n- ".join(problems))
    myst = MystText(root)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for session in sessions:
        path = out / session.file_name
        path.write_text(render_deck(deck_notebook(session, root, myst, len(sessions))))
        paths.append(path)
    return paths


def _build_decks(app, exception: Optional[Exception]) -> None:
    if exception is not None or app.builder.format != "html":
        return
    from sphinx.util import logging

    start = time.perf_counter()
    paths = build_decks(Path(app.srcdir), Path(app.outdir) / OUT)
    logging.getLogger(__name__).info(
        f"{OUT}/: {len(paths)} slide decks in {time.perf_counter() - start:.1f} s")


def setup(app) -> dict[str, Any]:
    """Register the decks' build at the end of an HTML build; safe for parallel builds."""
    app.connect("build-finished", _build_decks)
    return {"parallel_read_safe": True, "parallel_write_safe": True}


def main(argv: Optional[list[str]] = None) -> None:
    """Command line: ``mark`` gives the chapters' cells the tags book/slides.yml declares; ``build``
    writes the decks into an already built site without rebuilding it."""
    parser = argparse.ArgumentParser(prog="python book/_ext/slide_decks.py", description=main.__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("mark", help="tag the declared cells slides-session-<n> (cell metadata only)")
    build = commands.add_parser("build", help="write <html>/slides/session-<n>.html")
    build.add_argument("html", type=Path, help="the built site, e.g. _build/html")
    args = parser.parse_args(argv)
    root = Path(__file__).resolve().parents[2]
    if args.command == "mark":
        changed = mark_cells(load_sessions(root / DECLARATION), root / "chapters")
        print("\n".join(f"tagged: {path.relative_to(root)}" for path in changed) or "every tag is in place")
    else:
        for path in build_decks(root, args.html / OUT):
            print(path)


if __name__ == "__main__":
    main()
