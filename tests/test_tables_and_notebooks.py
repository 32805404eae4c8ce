"""Book-facing code: tables beside the paper's, and the notebooks run on the committed results."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import nbformat
import papermill
import pytest

from hybridir.book import NOTEBOOKS, PRESETS, RESULTS
from hybridir.paper import paper_summary
from hybridir.tables import compare_means, headline, load_run, side_by_side

ROOT = Path(__file__).resolve().parents[1]
COMMITTED = RESULTS / "zero-shot"


def test_side_by_side_interleaves_ours_and_the_papers():
    paper = paper_summary("LaBSE", "xquad-r", "Hybrid")
    ours = paper.loc[["en", "de", "Mean"]] * 0.5
    table = side_by_side(ours, paper, "paper")
    assert list(table.columns[:4]) == [("mono", "map", "ours"), ("mono", "map", "paper"),
                                       ("mono", "recall@1", "ours"), ("mono", "recall@1", "paper")]
    assert table.loc["de", ("mono", "map", "paper")] == pytest.approx(0.8222)
    assert table.loc["de", ("mono", "map", "ours")] == pytest.approx(0.4111)


def test_load_run_needs_a_finished_run(tmp_path):
    (tmp_path / "tidy.csv").write_text("dataset\n")
    with pytest.raises(FileNotFoundError, match="summary.csv, provenance.json"):
        load_run(tmp_path)


@pytest.mark.parametrize("name", PRESETS["full"])
def test_committed_results_are_complete_with_provenance(name):
    run = load_run(COMMITTED / name)
    assert run.provenance["config"] == asdict(PRESETS["full"][name]) | {"model_spec": run.provenance["config"]["model_spec"]}
    assert len(run.provenance["data_checksum"]) >= 64
    assert {"date", "hardware", "versions", "model_fingerprint"} <= set(run.provenance)
    assert run.tidy.value.notna().any()


def test_committed_xquad_r_table_is_the_full_protocol():
    run = load_run(COMMITTED / "xquad-r")
    maps = run.tidy[run.tidy.metric == "map"]
    assert maps.setting.value_counts().to_dict() == {"cross": 110, "mono": 11, "multi": 11}
    assert (run.tidy.n_queries == 1190).all()


@pytest.mark.parametrize("notebook", NOTEBOOKS)
def test_notebook_runs_on_the_committed_results(notebook, tmp_path):
    output = tmp_path / f"{notebook}.ipynb"
    papermill.execute_notebook(ROOT / "notebooks" / f"{notebook}.ipynb", output, kernel_name="python3",
                               parameters={"results_dir": str(COMMITTED), "run_dir": str(COMMITTED),
                                           "preset": "full"},
                               cwd=str(ROOT / "notebooks"), progress_bar=False)
    executed = nbformat.read(output, as_version=4)
    assert executed.cells[1].metadata.get("tags") == ["parameters"]
    errors = [o for c in executed.cells if c.cell_type == "code" for o in c.get("outputs", [])
              if o.output_type == "error"]
    assert not errors
    shown = [o for c in executed.cells if c.cell_type == "code" for o in c.get("outputs", [])
             if "text/html" in o.get("data", {})]
    assert shown, "the notebook displayed no table"


def test_headline_quotes_both_means():
    paper = paper_summary("XLM-R", "mlqa-r", "X-Y")
    ours = paper.copy()
    ours.loc["Mean", ("multi", "map")] = 0.25
    text = headline(ours, paper, "XLM-R X-Y")
    assert "Mul. mAP 0.250 (paper 0.508)" in text and "rank distance 227 (paper 227)" in text


def test_compare_means_lines_up_runs():
    table = compare_means({"X-X-mono": paper_summary("LaBSE", "xquad-r", "X-X-mono"),
                           "Hybrid": paper_summary("LaBSE", "xquad-r", "Hybrid")})
    assert list(table.columns) == ["X-X-mono", "Hybrid"]
    assert table.loc[("multi", "rank_distance"), "Hybrid"] == pytest.approx(221.1)
    assert table.loc[("mono", "map"), "X-X-mono"] == pytest.approx(0.8083)
