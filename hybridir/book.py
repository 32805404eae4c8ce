"""The companion end to end: evaluate a small real preset, then build the Jupyter Book.

The notebooks in ``notebooks/`` are thin: they read committed results (``results/``) and the paper's
numbers (``hybridir/data/paper/``). Jupyter Book executes them itself and caches their outputs
(``_config.yml``), so ``jupyter-book build .`` alone builds the whole book on a fresh clone.
``hybridir book`` first evaluates a preset into ``_build/runs/`` (the page "The run this build
computed" shows it), drops the notebook cache when the results, the paper's numbers, the package or
those runs changed since the last build (jupyter-cache keys on the notebooks' code only), and builds
with warnings as errors. Papermill reruns one notebook with other parameters.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

from hybridir.evaluation.run import run_evaluation
from hybridir.presets import preset_part

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "results"
BUILD = ROOT / "_build"
NOTEBOOK_CACHE = BUILD / ".jupyter_cache"
SPHINX_ENVIRONMENT = BUILD / ".doctrees"  # without it Sphinx rereads every page, so the notebooks run again
# What the notebooks' outputs depend on besides their own code (the build's own runs included).
NOTEBOOK_INPUTS = (RESULTS, ROOT / "hybridir", BUILD / "runs")  # the paper's numbers are in hybridir/

# The book's notebook pages, in _toc.yml's order.
NOTEBOOKS = ("experiment", "per_language", "zero_shot_lareqa", "zero_shot_scifact", "miracl", "preset_run")


def preset_root(preset: str) -> Path:
    """Where a preset's runs go: the committed results for ``full``, the build folder otherwise."""
    return RESULTS / "zero-shot" if preset == "full" else BUILD / "runs" / preset


def run_preset(preset: str, model: str = "offline") -> Path:
    """Evaluate ``preset``'s zero-shot runs (:mod:`hybridir.presets`) into :func:`preset_root`."""
    evaluations = preset_part(preset, "zero_shot")
    root = preset_root(preset)
    for name, config in evaluations.items():
        run_evaluation(replace(config, model=model), root / name)
    return root


def build_book(preset: str = "smoke", build: bool = True) -> Path:
    """Evaluate ``preset``, then (``build``) build the book with warnings as errors; the html folder."""
    run_preset(preset)
    html = BUILD / "html"
    if build:
        drop_stale_notebook_cache()
        jupyter_book = Path(sys.executable).parent / "jupyter-book"
        subprocess.run([str(jupyter_book), "build", str(ROOT), "--path-output", str(ROOT), "-W", "--keep-going"],
                       check=True)
        print(f"book: {html / 'index.html'}")
    return html


def drop_stale_notebook_cache() -> bool:
    """Delete the executed notebooks' cache and Sphinx's saved environment when what the notebooks read
    changed since the last build (Sphinx rereads only changed sources); True if dropped."""
    digest = hashlib.sha256()
    for folder in NOTEBOOK_INPUTS:
        files = folder.rglob("*") if folder.is_dir() else ()
        for path in sorted(p for p in files if p.is_file() and "__pycache__" not in p.parts):
            digest.update(str(path.relative_to(ROOT)).encode() + b"\0" + path.read_bytes())
    stamp = BUILD / "notebook-inputs.sha256"
    stale = not stamp.is_file() or stamp.read_text() != digest.hexdigest()
    if stale:
        shutil.rmtree(NOTEBOOK_CACHE, ignore_errors=True)
        shutil.rmtree(SPHINX_ENVIRONMENT, ignore_errors=True)
        BUILD.mkdir(exist_ok=True)
        stamp.write_text(digest.hexdigest())
    return stale
