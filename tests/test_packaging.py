"""The set-up users run: pyproject, environment.yml, README commands, CI script."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]


def pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def test_environment_yml_pip_list_equals_pyproject():
    environment = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip = next(d["pip"] for d in environment["dependencies"] if isinstance(d, dict) and "pip" in d)
    assert "-e ." in pip, "environment.yml must install the package itself"
    listed = [Requirement(line) for line in pip if line != "-e ."]  # raises on an invalid requirement
    project = pyproject()
    expected = [Requirement(r) for r in project["dependencies"]]
    expected += [Requirement(r) for extra in ("book", "test") for r in project["optional-dependencies"][extra]]
    assert {(r.name, str(r.specifier)) for r in listed} == {(r.name, str(r.specifier)) for r in expected}


def test_dev_extra_is_everything_and_torch_admits_colab():
    project = pyproject()
    assert project["optional-dependencies"]["dev"] == ["hybridir[book,test]"]
    torch = next(Requirement(r) for r in project["dependencies"] if r.startswith("torch"))
    assert torch.specifier.contains("2.13.0") and torch.specifier.contains("2.9.0")  # Colab-era releases
    constraints = (ROOT / "constraints" / "cpu.txt").read_text()
    assert re.search(r"^torch==2\.13\.0$", constraints, re.M)


def test_readme_commands_are_makefile_targets_and_ci_runs_the_test_command():
    readme = (ROOT / "README.md").read_text()
    makefile = (ROOT / "Makefile").read_text()
    for target in ("book", "test"):
        assert f"make {target}" in readme
        assert re.search(rf"^{target}:", makefile, re.M)
    ci = (ROOT / ".ci" / "run").read_text()
    assert re.search(r"^make test$", ci, re.M)
    assert "rm -rf .venv" in ci  # a fresh environment every run


def test_book_lists_every_notebook():
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    pages = [chapter["file"] for chapter in toc["chapters"] if chapter["file"].startswith("notebooks/")]
    notebooks = {p.stem for p in (ROOT / "notebooks").glob("*.ipynb")}
    from hybridir.book import NOTEBOOKS

    assert set(NOTEBOOKS) == notebooks and pages == [f"notebooks/{name}" for name in NOTEBOOKS]


def test_every_notebook_runs_from_an_installed_wheel_as_colab_arranges_it(tmp_path):
    """Colab's set-up cell clones the repository, installs it without -e and works from notebooks/. Here: the
    wheel built from this checkout, installed into a fresh virtual environment that borrows the dependencies
    but not the checkout (no editable finder, no repository on sys.path); a copy of the repository's
    notebooks/ and results/ (not hybridir/) as the clone; every notebook executed from its notebooks/ folder."""
    import json
    import os
    import shutil
    import subprocess
    import sys
    import sysconfig

    import nbformat
    from nbclient import NotebookClient

    # Built from a copy of the sources: a build/ or *.egg-info left in the checkout would lend the wheel its files.
    source = tmp_path / "source"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(".git", ".venv", ".cache", "_build", "build",
                                                                "*.egg-info", "results", "notebooks", "tests"))
    wheels = tmp_path / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
                    "--wheel-dir", str(wheels), str(source)], check=True, cwd=tmp_path)
    wheel = next(wheels.glob("hybridir-*.whl"))
    fresh = tmp_path / "fresh"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(fresh)], check=True)
    python = fresh / "bin" / "python"
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               check=True, capture_output=True, text=True).stdout.strip())
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(site),
                    str(wheel)], check=True)
    # The dependencies: the test environment's site-packages as a plain path; its .pth files (the editable
    # hybridir among them) are not processed from there.
    (site / "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")

    clone = tmp_path / "clone"
    for folder in ("notebooks", "results"):
        shutil.copytree(ROOT / folder, clone / folder)
    where = subprocess.run([str(python), "-c", "import hybridir.paper as p; print(p.__file__); "
                            "print(len(p.paper_table('main')))"], check=True, capture_output=True, text=True,
                           cwd=clone / "notebooks", env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"})
    module, rows = where.stdout.split()
    assert Path(module).is_relative_to(site) and int(rows) > 0

    kernels = tmp_path / "jupyter" / "kernels" / "fresh"
    kernels.mkdir(parents=True)
    (kernels / "kernel.json").write_text(json.dumps({
        "argv": [str(python), "-m", "ipykernel_launcher", "-f", "{connection_file}"], "display_name": "fresh",
        "language": "python"}))
    environment = {"JUPYTER_PATH": str(tmp_path / "jupyter"), "PYTHONPATH": ""}
    with pytest.MonkeyPatch.context() as patch:
        for name, value in environment.items():
            patch.setenv(name, value)
        for path in sorted((clone / "notebooks").glob("*.ipynb")):
            notebook = nbformat.read(path, as_version=4)
            NotebookClient(notebook, kernel_name="fresh", timeout=600,
                           resources={"metadata": {"path": str(path.parent)}}).execute()
            errors = [o for cell in notebook.cells for o in cell.get("outputs", []) if o.get("output_type") == "error"]
            assert not errors, f"{path.name}: {errors}"
