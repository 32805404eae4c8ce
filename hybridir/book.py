"""The companion end to end: evaluate a preset, execute the notebooks, build the Jupyter Book.

Notebooks in ``notebooks/`` are thin papermill templates; each is executed with parameters
naming the run folders it reads and written to ``book/generated/``, which ``_toc.yml`` lists.
Jupyter Book then renders them without executing anything again (``execute_notebooks: off``),
so the expensive work stays in the package and its on-disk caches.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace
from pathlib import Path

from hybridir.evaluation.run import EvaluationConfig, run_evaluation

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "results"
GENERATED = ROOT / "book" / "generated"

# smoke: a small real subset that runs in minutes on a laptop CPU (the main job's default);
# full: every zero-shot table committed under results/ (about an hour on 2 CPU cores).
PRESETS: dict[str, dict[str, EvaluationConfig]] = {
    "smoke": {
        "xquad-r": EvaluationConfig(dataset="xquad-r", max_question_ids=70),
        "mlqa-r": EvaluationConfig(dataset="mlqa-r", max_question_ids=70),
    },
    # fp32: the committed zero-shot reference numbers, reproducible to the last digit on any machine.
    "full": {
        "xquad-r": EvaluationConfig(dataset="xquad-r", precision="fp32"),
        "xquad-r-context": EvaluationConfig(dataset="xquad-r", candidate_text="sentence+context", precision="fp32"),
        "mlqa-r": EvaluationConfig(dataset="mlqa-r", precision="fp32"),
        "scifact": EvaluationConfig(dataset="scifact", precision="fp32"),
    },
}
# executed in this order; each reads results_dir (committed full results) and run_dir (this preset's runs),
# the experiment page experiment_dir
NOTEBOOKS = ("experiment", "zero_shot_lareqa", "zero_shot_scifact", "preset_run")
EXPERIMENT = RESULTS / "cpu"  # the committed results of `hybridir reproduce --preset cpu`


def preset_root(preset: str) -> Path:
    """Where a preset's runs go: the committed results for ``full``, the build folder otherwise."""
    return RESULTS / "zero-shot" if preset == "full" else ROOT / "_build" / "runs" / preset


def run_preset(preset: str, model: str = "offline") -> Path:
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
    root = preset_root(preset)
    for name, config in PRESETS[preset].items():
        run_evaluation(replace(config, model=model), root / name)
    return root


def execute_notebooks(preset: str) -> list[Path]:
    import papermill

    GENERATED.mkdir(parents=True, exist_ok=True)
    parameters = {"results_dir": str(RESULTS / "zero-shot"), "run_dir": str(preset_root(preset)),
                  "preset": preset, "experiment_dir": str(EXPERIMENT)}
    written = []
    for name in NOTEBOOKS:
        target = GENERATED / f"{name}.ipynb"
        template = ROOT / "notebooks" / f"{name}.ipynb"
        declared = papermill.inspect_notebook(template)  # each notebook gets the parameters it declares
        papermill.execute_notebook(template, target, cwd=str(ROOT / "notebooks"), kernel_name="python3",
                                   parameters={k: v for k, v in parameters.items() if k in declared},
                                   progress_bar=False)
        _hide_parameter_cells(target)
        written.append(target)
    return written


def _hide_parameter_cells(path: Path) -> None:
    """Machine paths belong in the provenance notes, not on the page: drop the parameter cells."""
    import nbformat

    notebook = nbformat.read(path, as_version=4)
    for cell in notebook.cells:
        tags = cell.metadata.get("tags", [])
        if {"parameters", "injected-parameters"} & set(tags):
            cell.metadata["tags"] = [*tags, "remove-cell"]
    nbformat.write(notebook, path)


def build_book(preset: str = "smoke", build: bool = True) -> Path:
    run_preset(preset)
    execute_notebooks(preset)
    html = ROOT / "_build" / "html"
    if build:
        jupyter_book = Path(sys.executable).parent / "jupyter-book"
        subprocess.run([str(jupyter_book), "build", str(ROOT), "--path-output", str(ROOT)], check=True)
        print(f"book: {html / 'index.html'}")
    return html
