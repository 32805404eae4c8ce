"""The set-up users run: pyproject, environment.yml, README commands, CI script."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

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
