"""The book as a reader gets it: committed notebooks are clean, and the built site works offline.

The browser test builds the site into a temporary folder, serves it on 127.0.0.1 and opens
every page in headless Debian Chromium through playwright, with every request that leaves the
local server blocked: so it also proves the site needs no internet (MathJax and the widget
scripts are served locally). The build, the server and the browser are tests/conftest.py's
fixtures, shared with the slide decks' browser test. Screenshots go under each test's tmp_path.
"""
from __future__ import annotations

import hashlib
import html
import json
import re
import sys
from pathlib import Path

import nbformat
import numpy as np
import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent


def toc_files() -> list[str]:
    """Return the documents of _toc.yml in reading order, e.g. ['book/index', 'chapters/00_preface']."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [toc["root"]]
    for part in toc.get("parts", []):
        files += [entry["file"] for entry in part["chapters"]]
    return files


CHAPTERS = [f for f in toc_files() if f.startswith("chapters/")]


# --- the committed notebooks ------------------------------------------------------------------

def test_every_chapter_notebook_is_in_the_toc():
    on_disk = {f"chapters/{path.stem}" for path in (ROOT / "chapters").glob("*.ipynb")}
    assert on_disk <= set(CHAPTERS), f"not listed in _toc.yml: {sorted(on_disk - set(CHAPTERS))}"


@pytest.mark.parametrize("doc", CHAPTERS)
def test_chapter_is_committed_executed_in_order_without_errors(doc):
    path = ROOT / f"{doc}.ipynb"
    assert path.is_file(), f"_toc.yml lists {doc} but {path.name} is missing"
    nb = nbformat.read(path, as_version=4)
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    counts = [cell.execution_count for cell in code]
    assert counts == list(range(1, len(code) + 1)), (
        f"{path.name}: execution counts {counts} are not 1..{len(code)}; re-run it top to bottom "
        "(README: regenerate the stored outputs)")
    for i, cell in enumerate(code):
        errors = [out for out in cell.outputs if out.output_type == "error"]
        assert not errors, f"{path.name}, code cell {i + 1} stored an error: {errors[0].get('ename')}"


@pytest.mark.parametrize("doc", CHAPTERS)
def test_chapter_follows_the_conventions(doc):
    nb = nbformat.read(ROOT / f"{doc}.ipynb", as_version=4)
    assert nb.metadata.kernelspec.name == "python3"
    code = [cell.source for cell in nb.cells if cell.cell_type == "code"]
    assert 'if "google.colab" in sys.modules:' in code[0], "first code cell must be the Colab set-up"
    assert "book.describe()" in code[1], "second code cell must call book.describe()"
    text = "\n".join(cell.source for cell in nb.cells if cell.cell_type == "markdown")
    number = int(Path(doc).name[:2])
    assert re.match(rf"# {number}\. ", nb.cells[0].source), "a chapter opens with '# N. Title'"
    for heading in ("## Objectives", "## Summary", "## Exercises"):
        assert heading in text, f"{doc} has no '{heading}' section"
    assert "{cite}`yu2022metaformer`" in text, f"{doc} does not cite the paper"
    exercises = text.split("## Exercises", 1)[1]
    assert exercises.count("{admonition} Solution") >= 3, f"{doc}: fewer than 3 solved exercises"


def test_every_citation_is_in_the_bibliography():
    bib = (ROOT / "book" / "references.bib").read_text()
    keys = set(re.findall(r"^@\w+\{([^,]+),", bib, flags=re.M))
    cited = set()
    for doc in toc_files():
        path = next(p for p in (ROOT / f"{doc}.ipynb", ROOT / f"{doc}.md") if p.exists())
        for group in re.findall(r"\{cite(?::\w+)?\}`([^`]+)`", path.read_text()):
            cited |= {key.strip() for key in group.split(",")}
    assert cited <= keys, f"cited but not in book/references.bib: {sorted(cited - keys)}"


# --- the site in a browser ----------------------------------------------------------------------

def test_missing_browser_skips_locally_but_fails_in_ci(monkeypatch, require_browser):
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="apt-get install -y chromium"):
        require_browser("/nonexistent/chromium")
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI must run it"):
        require_browser("/nonexistent/chromium")


def _colab_url(doc: str) -> str:
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    repo = config["repository"]["url"].removeprefix("https://github.com/")
    colab = config["launch_buttons"]["colab_url"].rstrip("/")
    return f"{colab}/github/{repo}/blob/{config['repository'].get('branch', 'master')}/{doc}.ipynb"


@pytest.mark.parametrize("doc", toc_files())
def test_page_works_offline_in_chromium(doc, server, watched_page, tmp_path):
    page, problems = watched_page()
    page.goto(server + f"{doc}.html", wait_until="networkidle")
    page.wait_for_function("Array.from(document.images).every(img => img.complete)")

    images = page.eval_on_selector_all(
        "img", "imgs => imgs.map(img => [img.getAttribute('src'), img.naturalWidth])")
    assert all(width > 0 for _, width in images), f"images that did not load: {images}"

    if page.locator(".math").count():
        page.wait_for_function("window.MathJax && MathJax.startup && MathJax.startup.promise")
        page.evaluate("MathJax.startup.promise")
        assert page.locator("mjx-container").count() > 0, "math on this page did not render"
        assert page.locator("mjx-merror").count() == 0, "MathJax reported an error in a formula"

    if page.locator('script[type="application/vnd.jupyter.widget-state+json"]').count():
        page.wait_for_selector(".jupyter-widgets", timeout=15_000)

    if doc.startswith("chapters/"):
        links = page.eval_on_selector_all(
            'a[href*="colab.research.google.com"]', "links => links.map(a => a.href)")
        assert _colab_url(doc) in links, f"no Colab launch link to {doc}.ipynb among {links}"

    shot = tmp_path / f"{doc.replace('/', '_')}.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    page.close()
    assert not problems, "\n".join(problems)


def test_teachers_page_shows_each_chapters_stored_run_time(site):
    sys.path.insert(0, str(ROOT / "book" / "_ext"))
    from run_times import format_seconds

    from metaformer_mini.book import stored_run_seconds

    html = (site / "book" / "teachers.html").read_text()
    assert "{{" not in html, "book/teachers.md has a substitution that the build did not resolve"
    for doc in CHAPTERS:
        cited = re.findall(rf"\{{\{{ run_time_{Path(doc).name[:2]} \}}\}}", (ROOT / "book" / "teachers.md").read_text())
        shown = html.count(f"({format_seconds(stored_run_seconds(ROOT / f'{doc}.ipynb'))})")
        assert shown >= len(cited), f"{doc}: its run time is cited {len(cited)} times but shown {shown}"


def test_teachers_page_says_what_the_committed_suite_shows(site):
    from metaformer_mini.analysis.verdicts import format_summary
    from metaformer_mini.experiments import load_results

    text = html.unescape(re.sub(r"<[^>]+>", "", (site / "book" / "teachers.html").read_text()))
    for paragraph in format_summary(load_results()).split("\n\n"):
        assert paragraph.replace("*", "") in " ".join(text.split()), paragraph


def test_site_serves_mathjax_and_widget_scripts_locally(site):
    html = (site / "chapters" / f"{Path(CHAPTERS[0]).name}.html").read_text()
    assert 'src="../_static/mathjax/tex-chtml.js"' in html
    assert (site / "_static" / "widgets" / "embed-amd.js").is_file()
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    scripts = config["sphinx"]["config"]["nb_ipywidgets_js"]
    assert all("://" not in src and (ROOT / "book" / "_static" / src).is_file() for src in scripts), (
        json.dumps(scripts))


# --- the "Try it in your browser" page ----------------------------------------------------------

TRYIT = "book/try_in_browser"
# npm packages the site serves itself, each with a SOURCE.txt that records every file's sha256
VENDORED = [ROOT / "book" / "_static" / name for name in ("onnxruntime-web", "reveal.js")]


@pytest.mark.parametrize("folder", VENDORED, ids=lambda folder: folder.name)
def test_vendored_files_match_their_recorded_hashes(folder):
    recorded = dict(line.split()[::-1] for line in (folder / "SOURCE.txt").read_text().splitlines()
                    if re.fullmatch(r"[0-9a-f]{64}  \S+", line))
    on_disk = {path.relative_to(folder).as_posix() for path in folder.rglob("*")
               if path.is_file() and path.name != "SOURCE.txt"}
    assert set(recorded) == on_disk, f"SOURCE.txt lists {sorted(recorded)}, the folder holds {sorted(on_disk)}"
    for name, digest in recorded.items():
        assert hashlib.sha256((folder / name).read_bytes()).hexdigest() == digest, f"{name} changed"


def _onnxruntime_probs(site: Path, row: str, image: np.ndarray) -> np.ndarray:
    """Return the softmax of Python onnxruntime's logits for one (32, 32, 3) uint8 image."""
    import onnxruntime

    session = onnxruntime.InferenceSession(str(site / "_static" / "tryit" / "models" / f"{row}.onnx"))
    x = image.transpose(2, 0, 1)[None].astype(np.float32) / 255
    logits = session.run(["logits"], {"image": x})[0][0].astype(np.float64)
    e = np.exp(logits - logits.max())
    return e / e.sum()


def _wait_for_run(page, runs: int, model: str) -> dict:
    page.wait_for_function(f"window.tryit && window.tryit.runs >= {runs} && "
                           f"window.tryit.last.model === {json.dumps(model)}", timeout=120_000)
    return page.evaluate("window.tryit.last")


def test_try_it_page_runs_the_models_in_chromium_as_onnxruntime_does(site, server, watched_page, tmp_path):
    from PIL import Image

    manifest = json.loads((site / "_static" / "tryit" / "models" / "manifest.json").read_text())
    rows = [entry["row"] for entry in manifest["models"]]
    assert rows[:2] == ["pooling", "identity"], f"the page's models: {rows}"
    assert sum(entry["bytes"] for entry in manifest["models"]) <= 8_000_000
    page, problems = watched_page()
    page.goto(server + f"{TRYIT}.html")
    _wait_for_run(page, 1, "pooling")

    sample = "cat_0000.png"
    image = np.asarray(Image.open(site / "_static" / "tryit" / "samples" / sample).convert("RGB"))
    page.click(f'.tryit-gallery button[data-file="{sample}"]')
    _wait_for_run(page, 2, "pooling")
    seen = np.array(page.evaluate("Array.from(document.getElementById('tryit-seen').getContext('2d')"
                                  ".getImageData(0, 0, 32, 32).data)"), dtype=np.uint8)
    assert np.array_equal(seen.reshape(32, 32, 4)[..., :3], image), "the page did not see the image's pixels"
    runs = 2

    expected = {}
    for row in rows:  # every model on the same picture, switched as a reader switches
        if row != "pooling":
            page.check(f'input[name="tryit-model"][value="{row}"]')
        last = _wait_for_run(page, runs, row)
        runs += 1
        assert last["file"] == sample
        expected[row] = _onnxruntime_probs(site, row, image)
        got = np.array(last["probs"])
        assert got.argmax() == expected[row].argmax(), f"{row}: top-1 differs from onnxruntime's"
        assert np.abs(got - expected[row]).max() < 1e-3, f"{row}: probabilities differ from onnxruntime's"
    # switching the mixer changes the output as Python says it does
    assert np.abs(expected["pooling"] - expected["identity"]).max() > 1e-3

    texts = page.locator(".tryit-bar").all_inner_texts()
    assert len(texts) == 5 and manifest["classes"][int(expected[rows[-1]].argmax())] in texts[0]
    assert page.locator("#tryit-mixer-out").evaluate("c => c.width") == 16

    picture = tmp_path / "wide.png"  # a reader's picture: not square, not 32x32
    Image.fromarray(np.tile(np.linspace(0, 255, 96, dtype=np.uint8)[None, :, None], (64, 1, 3))).save(picture)
    page.set_input_files("#tryit-file", str(picture))
    page.wait_for_function(f"window.tryit.runs >= {runs} && window.tryit.last.file === null", timeout=60_000)
    assert "wide.png" in page.locator("#tryit-caption").inner_text()

    page.screenshot(path=str(tmp_path / "try_in_browser.png"), full_page=True)
    page.close()
    assert not problems, "\n".join(problems)
