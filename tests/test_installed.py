"""Chapters 8 and 9 from an installed, non-editable copy with no checkout around (Colab's case).

The test builds a wheel from a copy of the package's files, installs it into a temporary folder,
and executes both chapters there: they must find the committed suite results and checkpoints
that the wheel carries (``book.results_dir``), not a ``results/`` folder of this checkout.
"""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from metaformer_mini import book
from metaformer_mini.suite import SUITE

ROOT = Path(__file__).resolve().parent.parent
CHAPTERS = ["08_seeing_pooling.ipynb", "09_comparing_mixers.ipynb"]


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """Return a folder holding metaformer_mini installed from a wheel of this checkout."""
    tmp = tmp_path_factory.mktemp("installed")
    source = tmp / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    for name in ("metaformer_mini", "results"):
        shutil.copytree(ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run(pip + ["wheel", "--no-deps", "--no-build-isolation", "--no-index", "-w",
                          str(tmp / "wheel"), str(source)], check=True, cwd=tmp)
    wheel, = (tmp / "wheel").glob("metaformer_mini-*.whl")
    site = tmp / "site"
    subprocess.run(pip + ["install", "--no-deps", "--no-index", "--target", str(site), str(wheel)],
                   check=True, cwd=tmp)
    return site


def _files(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*")
                  if p.is_file() and "__pycache__" not in p.parts)


def _python(site: Path, code: str, cwd: Path) -> str:
    env = {**os.environ, "PYTHONPATH": str(site)}
    done = subprocess.run([sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True,
                          text=True, check=True)
    return done.stdout


def test_the_wheel_carries_the_committed_results(installed, tmp_path):
    out = _python(installed, "import json; from metaformer_mini import book, experiments as ex; "
                  "print(json.dumps([str(book.repo_root()), str(book.results_dir()), "
                  "[r['name'] for r in ex.load_results()], "
                  "sorted(p.name for p in ex.default_checkpoint_dir().glob('*.pt'))]))", tmp_path)
    root, results, rows, checkpoints = json.loads(out)
    assert root == "None"
    assert Path(results) == installed / "metaformer_mini" / "results"
    assert sorted(rows) == sorted(p.stem for p in (ROOT / "results" / "cifar10-suite").glob("*.json"))
    assert checkpoints == sorted(p.name for p in (ROOT / "results" / "checkpoints").glob("*.pt"))
    # every committed result, in every folder (the 10-epoch suite too), is in the wheel
    assert _files(Path(results)) == _files(ROOT / "results")


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_chapter_runs_from_the_installed_copy(installed, tmp_path, monkeypatch, chapter):
    cifar = book.cifar10_dir()
    if cifar is None:
        pytest.skip("no CIFAR-10 image folder on this machine (chapter 8 reads test images)")
    monkeypatch.setenv("PYTHONPATH", str(installed))
    monkeypatch.setenv("METAFORMER_MODE", "quick")
    monkeypatch.setenv("METAFORMER_CIFAR10", str(cifar))
    notebook = nbformat.read(ROOT / "chapters" / chapter, as_version=4)
    notebook.cells.append(nbformat.v4.new_code_cell(
        "import metaformer_mini; print(metaformer_mini.__file__, metaformer_mini.book.repo_root())"))
    client = NotebookClient(notebook, timeout=600, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}})
    client.execute()
    where = notebook.cells[-1].outputs[0]["text"].split()
    assert where == [str(installed / "metaformer_mini" / "__init__.py"), "None"]
    text = "\n".join(output.get("text", "") for cell in notebook.cells
                     for output in cell.get("outputs", []))
    assert "no checkpoint" not in text  # chapter 8 found every committed model
    if chapter.startswith("09"):
        committed = len(list((ROOT / "results" / "cifar10-suite").glob("*.json")))
        assert f"{committed} of {len(SUITE)} rows have results" in text
