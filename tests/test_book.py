"""The book as its users get it: `jupyter-book build -W` from the committed results, opened in a browser."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
import yaml

from hybridir.book import NOTEBOOKS, drop_stale_notebook_cache

ROOT = Path(__file__).resolve().parents[1]
CONFIG = yaml.safe_load((ROOT / "_config.yml").read_text())
REPOSITORY = CONFIG["repository"]
# Each results page and what it must show: headings, and at least this many tables and figures.
EXPECTED = {
    "experiment": (["What we found", "Tables 1–2 of the paper, with our rows", "The paper’s claims, checked",
                    "α sweep", "Hybrid with stratified mono draws", "BEIR after training"], 8, 3),
    "per_language": (["mlqa-r → xquad-r (3 seeds per strategy)", "xquad-r → mlqa-r (1 seed per strategy)"],
                     2 * 8, 0),
    "zero_shot_lareqa": (["XQuAD-R (11 languages", "MLQA-R (7 languages"], 4, 2),
    "zero_shot_scifact": (["Zero-shot multilingual-e5-small on BEIR SciFact"], 1, 0),
    "miracl": (["MIRACL (Tables 12–13)"], 2, 0),
    "preset_run": (["The run this build computed"], 0, 0),
}


def colab_url(notebook: str) -> str:
    owner_and_name = REPOSITORY["url"].removeprefix("https://github.com/")
    return (f"{CONFIG['launch_buttons']['colab_url']}/github/{owner_and_name}/blob/{REPOSITORY['branch']}/"
            f"notebooks/{notebook}.ipynb")


@pytest.mark.parametrize("notebook", NOTEBOOKS)
def test_colab_set_up_clones_the_books_repository(notebook):
    """The launch button opens the notebook alone on Colab; its first code cell fetches the same repository."""
    cell = nbformat.read(ROOT / "notebooks" / f"{notebook}.ipynb", as_version=4).cells[1]
    assert 'if "google.colab" in sys.modules:' in cell.source
    assert f"--branch {REPOSITORY['branch']} {REPOSITORY['url']} " in cell.source


@pytest.mark.parametrize("notebook", NOTEBOOKS)
def test_committed_notebooks_carry_no_outputs_and_no_paths_of_this_machine(notebook):
    text = (ROOT / "notebooks" / f"{notebook}.ipynb").read_text()
    cells = nbformat.reads(text, as_version=4).cells
    assert not [cell for cell in cells if cell.cell_type == "code" and cell.get("outputs")]
    assert str(ROOT) not in text


def test_notebook_cache_is_dropped_when_the_results_change(tmp_path, monkeypatch):
    from hybridir import book

    results, cache = tmp_path / "results", tmp_path / "_build" / ".jupyter_cache"
    results.mkdir()
    (results / "summary.csv").write_text("a\n1\n")
    monkeypatch.setattr(book, "ROOT", tmp_path)
    monkeypatch.setattr(book, "BUILD", tmp_path / "_build")
    monkeypatch.setattr(book, "NOTEBOOK_CACHE", cache)
    monkeypatch.setattr(book, "SPHINX_ENVIRONMENT", tmp_path / "_build" / ".doctrees")
    monkeypatch.setattr(book, "NOTEBOOK_INPUTS", (results,))
    assert drop_stale_notebook_cache()  # no stamp yet
    cache.mkdir(parents=True)
    (tmp_path / "_build" / ".doctrees").mkdir()
    assert not drop_stale_notebook_cache() and cache.is_dir()  # nothing changed: the cache stays
    (results / "summary.csv").write_text("a\n2\n")
    assert drop_stale_notebook_cache() and not cache.exists() and not (tmp_path / "_build" / ".doctrees").exists()


@pytest.fixture(scope="module")
def built_book(tmp_path_factory) -> Path:
    """`jupyter-book build . -W` on the repository as committed, into a temporary folder."""
    output = tmp_path_factory.mktemp("book")
    jupyter_book = Path(sys.executable).parent / "jupyter-book"
    done = subprocess.run([str(jupyter_book), "build", str(ROOT), "--path-output", str(output), "-W", "--keep-going"],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    return output / "_build" / "html"


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is missing: .ci/run installs Debian's chromium")
        pytest.skip("needs chromium (Debian: apt-get install chromium)")
    return found


@pytest.mark.parametrize("notebook", NOTEBOOKS)
def test_built_page_shows_its_tables_and_figures_in_a_browser(built_book, notebook, tmp_path):
    page = built_book / "notebooks" / f"{notebook}.html"
    browser = [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--window-size=1280,2400"]
    dom = subprocess.run([*browser, "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120).stdout
    subprocess.run([*browser, f"--screenshot={tmp_path / f'{notebook}.png'}", page.as_uri()],
                   capture_output=True, timeout=120)
    assert (tmp_path / f"{notebook}.png").stat().st_size > 10_000  # kept in the test's temp folder
    headings, tables, figures = EXPECTED[notebook]
    main = dom[dom.index('<main'):]
    text = re.sub(r"<[^>]+>", "", main)
    for heading in headings:
        assert heading in text, f"{notebook}: no {heading!r}"
    assert main.count("<table") >= tables, f"{notebook}: {main.count('<table')} tables"
    assert main.count("<img") >= figures, f"{notebook}: {main.count('<img')} figures"
    assert "Traceback" not in text and "NaN" not in text and str(ROOT) not in dom
    assert colab_url(notebook) in dom  # the launch button: this repository, branch and path
